/**
 * Node configuration: a JSON file (--config) and/or flags; flags win. Adding a
 * node to a cluster is writing one of these and starting the process.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_CLIENT_LIMITS, DEFAULT_MAX_CEREMONIES } from "./rate-limits.ts";
import { parseListenAddress } from "./health-server.ts";

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
  /** Admission limits (rate-limits.ts), answered with rate_limited at once. */
  limits: {
    /** Per client user, at this node: sustained requests per second. */
    requestsPerSecond: number;
    /** Per client user, at this node: requests accepted at once after being idle. */
    requestBurst: number;
    /** Per client user, at this node: requests taken and not yet answered. */
    maxInFlight: number;
    /** Ceremonies this node takes part in at once (as coordinator's participant or for itself). */
    maxCeremonies: number;
  };
  /** /metrics, /healthz, /readyz (health-server.ts); absent or no `listen`: not served. */
  observability?: { listen?: string; allowNonLoopback?: boolean };
}

export const CONFIG_HELP = `Configuration (JSON file via --config, or flags; flags win):
  nodeId            --node-id ID            unique node name (also its MQTT client id)
  mqtt.url          --mqtt URL              mqtt://host:port or mqtts://host:port
  mqtt.username     --mqtt-username U       (or env TSS_MQTT_USERNAME); default and only
                                            allowed value: nodeId (each node has its own broker
                                            user; the broker binds client id to it)
  mqtt.password     --mqtt-password P       (or env TSS_MQTT_PASSWORD): this node's own
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
  phaseTimeoutMs    --phase-timeout-ms N    default 120000
  limits (each refusal is answered at once with rate_limited; nothing is queued):
  limits.requestsPerSecond --rate-limit N   per client user, requests per second this node
                                            takes (a token bucket); default ${DEFAULT_CLIENT_LIMITS.requestsPerSecond}
  limits.requestBurst --rate-burst N        per client user, requests taken at once after
                                            being idle; default ${DEFAULT_CLIENT_LIMITS.burst}
  limits.maxInFlight --max-in-flight N      per client user, requests this node has taken and
                                            not yet answered; default ${DEFAULT_CLIENT_LIMITS.maxInFlight}
  limits.maxCeremonies --max-ceremonies N   ceremonies this node takes part in at once (a start
                                            beyond it is refused); default ${DEFAULT_MAX_CEREMONIES}
  observability.listen --observability-listen ADDR  (or env TSS_OBSERVABILITY_LISTEN) serves
                                            /metrics (Prometheus), /healthz and /readyz on
                                            PORT (= 127.0.0.1:PORT), HOST:PORT or [IPv6]:PORT;
                                            default: not served
  observability.allowNonLoopback            (or env TSS_OBSERVABILITY_ALLOW_NON_LOOPBACK=1)
                                            needed to listen on a non-loopback address: the
                                            endpoint has no authentication`;

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
    limits: {
      requestsPerSecond: Number(
        flag(argv, "--rate-limit") ??
          base.limits?.requestsPerSecond ??
          DEFAULT_CLIENT_LIMITS.requestsPerSecond,
      ),
      requestBurst: Number(
        flag(argv, "--rate-burst") ?? base.limits?.requestBurst ?? DEFAULT_CLIENT_LIMITS.burst,
      ),
      maxInFlight: Number(
        flag(argv, "--max-in-flight") ??
          base.limits?.maxInFlight ??
          DEFAULT_CLIENT_LIMITS.maxInFlight,
      ),
      maxCeremonies: Number(
        flag(argv, "--max-ceremonies") ?? base.limits?.maxCeremonies ?? DEFAULT_MAX_CEREMONIES,
      ),
    },
  };
  const listen =
    flag(argv, "--observability-listen") ??
    base.observability?.listen ??
    env.TSS_OBSERVABILITY_LISTEN;
  if (listen) {
    const allowNonLoopback =
      base.observability?.allowNonLoopback === true ||
      env.TSS_OBSERVABILITY_ALLOW_NON_LOOPBACK === "1";
    parseListenAddress(listen, allowNonLoopback); // refused here, before anything starts
    cfg.observability = { listen, allowNonLoopback };
  }
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
  // The broker's ACL grants a node its inbox, replies and presence by username
  // (deploy/mosquitto/acl.example), and binds client id to username.
  cfg.mqtt.username ??= cfg.nodeId;
  if (cfg.mqtt.username !== cfg.nodeId)
    throw new Error(
      `mqtt.username must be the node id ${cfg.nodeId}: each node has its own broker user`,
    );
  const l = cfg.limits;
  if (!(Number.isFinite(l.requestsPerSecond) && l.requestsPerSecond > 0))
    throw new Error("limits.requestsPerSecond must be a number > 0");
  for (const [name, v] of [
    ["limits.requestBurst", l.requestBurst],
    ["limits.maxInFlight", l.maxInFlight],
    ["limits.maxCeremonies", l.maxCeremonies],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be an integer >= 1`);
  return cfg;
}
