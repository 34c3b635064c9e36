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
import { NodeHost, type PendingResolution } from "./node-host.ts";
import { openStore, parseDbLocation } from "./store/index.ts";
import { openWriteProbe, RUNNING_BUSY_TIMEOUT_MS } from "./store/db.ts";
import { DatabaseHealth } from "./database-health.ts";
import { NodeCondition } from "./node-condition.ts";
import { connectBus } from "./mqtt/bus.ts";
import { peerOutcomeSource, serveNodeOps } from "./remote-participant.ts";
import { BusPeerDirectory } from "./peer-directory.ts";
import { RequestHandler } from "./request-handler.ts";
import { ClientLimits } from "./rate-limits.ts";
import { jsonLogger } from "../shared/log.ts";
import { HostMetrics } from "./metrics.ts";
import { serveObservability } from "./health-server.ts";
import { VERSION, versionLine } from "../shared/version.ts";

const HELP = `usage: tss-host [--config FILE] [flags]
       tss-host --version | --help

Runs one signing node's host. It needs its enclave already listening, and
it serves that enclave's KMS relay (kms.relay): the enclave calls KMS itself
over TLS through it; the host never sees a data key.

${CONFIG_HELP}`;

/** A settled pending share as logged: session ids, like everywhere in the logs, as 16 hex digits. */
const loggedPending = (p: PendingResolution) => ({
  walletId: p.walletId,
  session: p.sessionId.slice(0, 16),
  decision: p.decision,
});

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

/**
 * Withdraws this node while its enclave channel is down and brings it back
 * once the enclave is reachable again: "degraded" in presence at once (the
 * host's EnclaveClient fails calls and redials with backoff; NodeHost forgets
 * what was loaded), "online" after the new enclave has answered HEALTH with
 * the same image and produced a fresh attestation document. An enclave that
 * comes back as another image stays degraded. The status is NodeCondition's:
 * a node whose database cannot be written stays degraded after its enclave
 * is back (database-health.ts).
 */
function superviseEnclave(
  enclave: EnclaveClient,
  host: NodeHost,
  condition: NodeCondition,
  pcr0: string,
  log: (event: string, fields: Record<string, unknown>) => void,
): void {
  const publish = (s: "online" | "degraded", why = "its enclave channel is down") =>
    condition.set("enclave", s === "online" ? null : why);
  const reattest = async (attempt: number): Promise<void> => {
    if (!enclave.available) return;
    try {
      await host.attestation();
      log("enclave_restored", { ...enclave.status(), attempt });
      await publish("online");
    } catch (e) {
      log("enclave_reattest_failed", { error: (e as Error).message, attempt });
      // Until it attests or the channel drops again (then the next restore starts over).
      setTimeout(() => void reattest(attempt + 1), Math.min(1_000 * attempt, 30_000));
    }
  };
  enclave.onChannelEvent((e) => {
    if (e.state === "lost") {
      log("enclave_lost", { error: e.error });
      void publish("degraded");
    } else if (e.health.pcr0 !== pcr0) {
      log("enclave_image_changed", { expected: pcr0, got: e.health.pcr0 });
      publish("degraded", "its enclave came back as another image");
    } else void reattest(1);
  });
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(HELP);
    return;
  }
  if (process.argv.includes("--version")) {
    console.log(versionLine("tss-host"));
    return;
  }
  const cfg = loadConfig(process.argv.slice(2));
  const nodeLog = (event: string, fields: Record<string, unknown>) =>
    log(event, { node: cfg.nodeId, ...fields });

  const enclave = await EnclaveClient.connect(parseEnclaveAddress(cfg.enclave));
  // Off unless observability.listen is set (health-server.ts); then this node's own registry.
  const metrics = cfg.observability?.listen ? new HostMetrics(cfg.nodeId) : undefined;
  metrics?.observeEnclave(enclave);
  const health = await enclave.health();
  const dbLocation = parseDbLocation(cfg.database, cfg.databaseAuthToken);
  const { db, migration } = openStore(dbLocation);
  if (migration.applied?.length) nodeLog("schema_migrated", { applied: migration.applied.length });
  // Migrated with the 5 s default; from here a locked write stalls the host far less (db.ts says why).
  db.setBusyTimeout(RUNNING_BUSY_TIMEOUT_MS);
  const writeProbe = openWriteProbe(dbLocation);
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
  const host = new NodeHost({
    nodeId: cfg.nodeId,
    enclave,
    credentials,
    db,
    log: nodeLog,
    maxCeremonies: cfg.limits.maxCeremonies,
    // A ceremony's slot outlives its 4 phase deadlines, then counts no more.
    ceremonySlotMs: 4 * cfg.phaseTimeoutMs + 60_000,
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
    // Reconnects, refused subscriptions and answers nobody took are logged, not dropped.
    log: nodeLog,
  });

  const peers = new BusPeerDirectory(host, bus, {
    phaseTimeoutMs: cfg.phaseTimeoutMs,
    log: nodeLog,
  });
  host.outcomeSource = peerOutcomeSource(cfg.nodeId, peers);
  // A share repair's lost node confirms its replacement from these (share-repair.ts), each
  // answer beside the node asked: one naming another node is not counted as that node's.
  host.holderSource = (walletId) =>
    Promise.all(
      peers
        .liveNodes()
        .filter((n) => n.nodeId !== cfg.nodeId)
        .map((n) =>
          peers.ask(n.nodeId, "walletInfo", { walletId }).then(
            (w) => ({ asked: n.nodeId, answer: w ?? null }),
            () => ({ asked: n.nodeId, answer: null }),
          ),
        ),
    );
  host.proofSource = (nodeId, walletId, nonce) =>
    peers.ask(nodeId, "proveActive", { walletId, nonce }).then((r) => r?.proof ?? null);
  // Once presence has had a moment to arrive: fail this node's cut-off ceremonies, settle pending shares.
  setTimeout(() => {
    host.recover().then(
      (r) =>
        nodeLog("recovered", {
          staleCeremonies: r.staleCeremonies.length,
          pending: r.pending.map(loggedPending),
        }),
      (e: Error) => nodeLog("recovery_failed", { error: e.message }),
    );
  }, 5_000).unref();
  const handler = new RequestHandler(host, peers, {
    metrics,
    phaseTimeoutMs: cfg.phaseTimeoutMs,
    log: nodeLog,
    limits: new ClientLimits({
      requestsPerSecond: cfg.limits.requestsPerSecond,
      burst: cfg.limits.requestBurst,
      maxInFlight: cfg.limits.maxInFlight,
    }),
  });
  // Withdrawn ("degraded") while its enclave is gone or its database cannot be written.
  const condition = new NodeCondition((s) => bus.setStatus(s), nodeLog);
  superviseEnclave(enclave, host, condition, health.pcr0, nodeLog);
  const dbHealth = new DatabaseHealth({
    probe: () => writeProbe.probe(),
    onChange: (problem) => {
      condition.set("database", problem && `its database cannot be written: ${problem}`);
      // Back: record the ceremony ends it could not (ceremony-ends.ts), and settle what a failed
      // write left pending (a commit or rollback it could not record).
      if (problem === null) handler.ceremonyEnds.retry();
      if (problem === null)
        host.resolvePending().then(
          (pending) =>
            pending.length > 0 &&
            nodeLog("pending_settled", { pending: pending.map(loggedPending) }),
          (e: Error) => nodeLog("pending_not_settled", { error: e.message }),
        );
    },
    log: nodeLog,
  });
  db.onWriteFailure = (e) => dbHealth.writeFailed(e);
  // A lost coordinator's sessions here end at once (NodeHost.abortSessionsStartedBy).
  bus.onPresence((e) => {
    if (e.status === "offline")
      host
        .abortSessionsStartedBy(e.nodeId)
        .catch((err: Error) =>
          nodeLog("abort_failed", { coordinator: e.nodeId, error: err.message }),
        );
  });
  // Before serving anyone: an address that cannot be bound ends the process here.
  const observability =
    metrics && (await serveObservability(cfg, metrics, { bus, host, condition }, nodeLog));
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
    dbHealth.stop();
    await observability?.close();
    await bus.close();
    await relay.close();
    enclave.close();
    writeProbe.close();
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
