/**
 * The host executable: one per signing node. Connects to its enclave, its
 * database, KMS and the MQTT broker; announces itself; takes client requests
 * from the shared subscription (coordinating them) and serves the ceremony
 * operations other coordinators ask of it.
 */
import { readFileSync } from "node:fs";
import { KMSClient } from "@aws-sdk/client-kms";
import { CONFIG_HELP, loadConfig } from "./config.ts";
import { EnclaveClient, parseEnclaveAddress } from "./enclave-client.ts";
import { KmsProxy } from "./kms-proxy.ts";
import { NodeHost } from "./node-host.ts";
import { openStore, parseDbLocation } from "./store/index.ts";
import { connectBus } from "./mqtt/bus.ts";
import { serveNodeOps } from "./remote-participant.ts";
import { BusPeerDirectory } from "./peer-directory.ts";
import { RequestHandler } from "./request-handler.ts";
import { jsonLogger } from "../shared/log.ts";

const VERSION = "0.1.0";
const HELP = `usage: tss-node [--config FILE] [flags]

Runs one signing node's host. It needs its enclave already listening.

${CONFIG_HELP}`;

/** A broker URL may carry user:password@; logs get the host and port only. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(unparseable URL)";
  }
}

const log = jsonLogger("host");

async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    console.log(HELP);
    return;
  }
  const cfg = loadConfig(process.argv.slice(2));
  const nodeLog = (event: string, fields: Record<string, unknown>) =>
    log(event, { node: cfg.nodeId, ...fields });

  const enclave = await EnclaveClient.connect(parseEnclaveAddress(cfg.enclave));
  const health = await enclave.health();
  const { db, migration } = openStore(parseDbLocation(cfg.database, cfg.databaseAuthToken));
  if (migration.applied?.length) nodeLog("schema_migrated", { applied: migration.applied.length });
  const kms = new KMSClient({
    region: cfg.kms.region,
    ...(cfg.kms.endpoint ? { endpoint: cfg.kms.endpoint } : {}),
    ...(cfg.kms.accessKeyId && cfg.kms.secretAccessKey
      ? {
          credentials: {
            accessKeyId: cfg.kms.accessKeyId,
            secretAccessKey: cfg.kms.secretAccessKey,
          },
        }
      : {}),
  });
  const host = new NodeHost({
    nodeId: cfg.nodeId,
    enclave,
    kms: new KmsProxy(kms, cfg.kms.keyId),
    db,
    log: nodeLog,
  });

  const bus = await connectBus({
    url: cfg.mqtt.url,
    clientId: cfg.nodeId,
    nodeId: cfg.nodeId,
    username: cfg.mqtt.username,
    password: cfg.mqtt.password,
    tls: cfg.mqtt.caFile ? { ca: readFileSync(cfg.mqtt.caFile, "utf8") } : undefined,
    pcr0: health.pcr0,
    version: VERSION,
  });

  const peers = new BusPeerDirectory(host, bus, {
    phaseTimeoutMs: cfg.phaseTimeoutMs,
    log: nodeLog,
  });
  const handler = new RequestHandler(host, peers, {
    phaseTimeoutMs: cfg.phaseTimeoutMs,
    log: nodeLog,
  });
  bus.serveNodeCalls(serveNodeOps(host));
  bus.serveClientRequests((op, body, reply) => void handler.handle(op, body, reply));
  nodeLog("ready", { pcr0: health.pcr0, mqtt: redactUrl(cfg.mqtt.url) });
  console.log(JSON.stringify({ event: "ready", nodeId: cfg.nodeId }));

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await bus.close();
    enclave.close();
    db.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main().catch((e) => {
  log("fatal", { error: (e as Error).message });
  process.exit(1);
});
