/**
 * The host executable: one per signing node. Connects to its enclave, its
 * database and the MQTT broker, runs its enclave's KMS relay; announces
 * itself; takes client requests from the shared subscription (coordinating
 * them) and serves the ceremony operations other coordinators ask of it.
 */
import { readFileSync } from "node:fs";
import { CONFIG_HELP, loadConfig } from "./config.ts";
import { EnclaveClient, parseEnclaveAddress } from "./enclave-client.ts";
import { sdkDefaultCredentials, staticCredentials } from "./kms-credentials.ts";
import {
  awsKmsTarget,
  parseRelayListenAddress,
  parseRelayTarget,
  startKmsRelay,
} from "./kms-relay.ts";
import { NodeHost } from "./node-host.ts";
import { openStore, parseDbLocation } from "./store/index.ts";
import { connectBus } from "./mqtt/bus.ts";
import { serveNodeOps } from "./remote-participant.ts";
import { BusPeerDirectory } from "./peer-directory.ts";
import { RequestHandler } from "./request-handler.ts";
import { jsonLogger } from "../shared/log.ts";

const VERSION = "0.1.0";
const HELP = `usage: tss-node [--config FILE] [flags]

Runs one signing node's host. It needs its enclave already listening, and
it serves that enclave's KMS relay (kms.relay): the enclave calls KMS itself
over TLS through it; the host never sees a data key.

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
  const relay = startKmsRelay({
    listen: parseRelayListenAddress(cfg.kms.relay),
    target: cfg.kms.target ? parseRelayTarget(cfg.kms.target) : awsKmsTarget(cfg.kms.region),
    log: nodeLog,
  });
  const credentials =
    cfg.kms.accessKeyId && cfg.kms.secretAccessKey
      ? staticCredentials({
          accessKeyId: cfg.kms.accessKeyId,
          secretAccessKey: cfg.kms.secretAccessKey,
          ...(cfg.kms.sessionToken ? { sessionToken: cfg.kms.sessionToken } : {}),
        })
      : sdkDefaultCredentials(cfg.kms.region);
  const host = new NodeHost({ nodeId: cfg.nodeId, enclave, credentials, db, log: nodeLog });

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
  nodeLog("ready", {
    pcr0: health.pcr0,
    mqtt: redactUrl(cfg.mqtt.url),
    kmsRelay: relay.address,
  });
  console.log(JSON.stringify({ event: "ready", nodeId: cfg.nodeId }));

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await bus.close();
    await relay.close();
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
