/**
 * Node configuration: a JSON file (--config) and/or flags; flags win. Adding a
 * node to a cluster is writing one of these and starting the process.
 */
import { readFileSync } from "node:fs";

export interface NodeConfig {
  nodeId: string;
  mqtt: { url: string; username?: string; password?: string; caFile?: string };
  /** unix:PATH (development) or vsock:CID:PORT (production). */
  enclave: string;
  /** libsql file path, or libsql:// / https:// URL. */
  database: string;
  databaseAuthToken?: string;
  /**
   * The KMS relay: the enclave calls KMS itself (TLS ends inside it) through a
   * byte relay this host runs. The KMS key, endpoint name and CA bundle are
   * the enclave's own configuration, not the host's (src/enclave/main.ts).
   */
  kms: {
    /** Where the relay listens for the enclave: unix:PATH (development) or vsock:PORT (production). */
    relay: string;
    /** HOST:PORT the relay connects to; default kms.<region>.amazonaws.com:443. */
    target?: string;
    region: string;
    /** Static credentials to hand the enclave; otherwise the AWS SDK's default chain. */
    accessKeyId?: string;
    secretAccessKey?: string;
    sessionToken?: string;
  };
  /** Deadline for each ceremony phase, coordinator side. */
  phaseTimeoutMs: number;
}

export const CONFIG_HELP = `Configuration (JSON file via --config, or flags; flags win):
  nodeId            --node-id ID            unique node name (also its MQTT client id)
  mqtt.url          --mqtt URL              mqtt://host:port or mqtts://host:port
  mqtt.username     --mqtt-username U       (or env TSS_MQTT_USERNAME)
  mqtt.password     --mqtt-password P       (or env TSS_MQTT_PASSWORD)
  mqtt.caFile       --mqtt-ca FILE          CA bundle for mqtts://
  enclave           --enclave ADDR          unix:PATH or vsock:CID:PORT
  database          --database PATH|URL     libsql file, or libsql://… / https://… server
  databaseAuthToken                         (or env TSS_DATABASE_AUTH_TOKEN)
  kms.relay         --kms-relay ADDR        where this host's KMS relay listens for its enclave:
                                            unix:PATH (development) or vsock:PORT (production);
                                            the enclave's --kms-relay dials it. The relay only
                                            copies TLS bytes to kms.target; the enclave verifies
                                            KMS's certificate and holds the key id itself.
  kms.target        --kms-target HOST:PORT  what the relay connects to; default
                                            kms.<region>.amazonaws.com:443 (the KMS stand-in's
                                            host:port in development)
  kms.region        --kms-region R          default us-east-1
  kms credentials                           handed to the enclave with each share load/seal:
                                            kms.accessKeyId / kms.secretAccessKey
                                            (/ kms.sessionToken) in the file, else the AWS SDK's
                                            default chain (AWS_ACCESS_KEY_ID, …, instance role)
  phaseTimeoutMs    --phase-timeout-ms N    default 120000`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  return v;
}

export function loadConfig(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): NodeConfig {
  const file = flag(argv, "--config");
  const base = file ? (JSON.parse(readFileSync(file, "utf8")) as Partial<NodeConfig>) : {};
  const cfg: NodeConfig = {
    nodeId: flag(argv, "--node-id") ?? base.nodeId ?? "",
    mqtt: {
      url: flag(argv, "--mqtt") ?? base.mqtt?.url ?? "",
      username: flag(argv, "--mqtt-username") ?? base.mqtt?.username ?? env.TSS_MQTT_USERNAME,
      password: flag(argv, "--mqtt-password") ?? base.mqtt?.password ?? env.TSS_MQTT_PASSWORD,
      caFile: flag(argv, "--mqtt-ca") ?? base.mqtt?.caFile,
    },
    enclave: flag(argv, "--enclave") ?? base.enclave ?? "",
    database: flag(argv, "--database") ?? base.database ?? "",
    databaseAuthToken: base.databaseAuthToken ?? env.TSS_DATABASE_AUTH_TOKEN,
    kms: {
      relay: flag(argv, "--kms-relay") ?? base.kms?.relay ?? "",
      target: flag(argv, "--kms-target") ?? base.kms?.target,
      region: flag(argv, "--kms-region") ?? base.kms?.region ?? "us-east-1",
      accessKeyId: base.kms?.accessKeyId,
      secretAccessKey: base.kms?.secretAccessKey,
      sessionToken: base.kms?.sessionToken,
    },
    phaseTimeoutMs: Number(flag(argv, "--phase-timeout-ms") ?? base.phaseTimeoutMs ?? 120_000),
  };
  const missing = [
    ["nodeId", cfg.nodeId],
    ["mqtt.url", cfg.mqtt.url],
    ["enclave", cfg.enclave],
    ["database", cfg.database],
    ["kms.relay", cfg.kms.relay],
  ].filter(([, v]) => !v);
  if (missing.length)
    throw new Error(`missing configuration: ${missing.map(([k]) => k).join(", ")} (see --help)`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(cfg.nodeId))
    throw new Error("nodeId must be 1-64 characters of [A-Za-z0-9._-]");
  if ((cfg.kms.accessKeyId === undefined) !== (cfg.kms.secretAccessKey === undefined))
    throw new Error("kms.accessKeyId and kms.secretAccessKey go together");
  if (!Number.isInteger(cfg.phaseTimeoutMs) || cfg.phaseTimeoutMs < 1000)
    throw new Error("phaseTimeoutMs must be an integer >= 1000");
  return cfg;
}
