/**
 * npm run load — sign requests under load with kills (issue 10 item 8).
 *
 * Starts the local cluster (5 nodes as separate host and enclave processes,
 * one Mosquitto, the KMS stand-in), creates one 3-of-5 wallet and sends
 * --count sign requests (each its own request id and random digest) from one
 * client at --concurrency. Mid-run it kills one node's host with SIGKILL and
 * starts it again after --host-down-ms, and later kills another node's
 * enclave with SIGKILL (the harness restarts it as a service manager would).
 *
 * A failed request is resubmitted with the same request id only where the
 * system says that is safe: `coordinator_lost` (docs/mqtt-api.md "When a
 * node dies"), `rate_limited` (refused before anything ran) and the SDK's own
 * deadline (its message says a repeat with the same id returns the result);
 * a resubmission answered "still running" is asked again 2 s later. Every
 * other failure is final and counted by its code.
 *
 * Checked: every request settles exactly once; every signature verifies
 * against the wallet key; no request id has more than one succeeded sign
 * ceremony in all the nodes' databases; no response topic got two final
 * answers (seen by the broker's test-only observer user). Writes
 * bench/results/load.json and the BENCHMARKS.md section; exits 1 when a
 * check fails.
 */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { startCluster, type ClusterNode } from "../src/cluster/local-cluster.ts";
import { watchPresence } from "../src/harness/presence-watch.ts";
import { TssClient, TssError } from "../src/client/index.ts";
import type { SignResult } from "../src/client/types.ts";
import { openReadOnlyFile } from "../src/host/store/db.ts";
import { fromHex } from "../src/shared/hex.ts";
import { verifySignature } from "../src/shared/signature.ts";

const HELP = `usage: npm run load -- [flags]
       bun run bench/load.ts [flags]

Sends sign requests to a fresh local 5-node cluster (3-of-5 wallet) while one
node's host is killed (SIGKILL) and restarted and another node's enclave is
killed (SIGKILL) and restarted by the harness's supervisor. Writes
bench/results/load.json and the "Load with kills" section of BENCHMARKS.md
(unless --no-write), and exits 1 if a request was not answered exactly once
(or, even after the resubmissions below, not at all), a response topic got
two final answers, a signature did not verify, a request id was signed twice
(two succeeded sign ceremonies in the nodes' databases), or a killed node
never signed again.

  --count N           sign requests to send (default 2000)
  --concurrency N     requests in flight at once (default 32)
  --host-kill-at F    kill node-2's host once this fraction of requests is answered (default 0.25)
  --host-down-ms MS   how long the killed host stays down before it is started again (default 3000)
  --enclave-kill-at F kill node-4's enclave once this fraction is answered (default 0.6)
  --timeout-ms MS     the SDK's deadline per attempt (default 60000)
  --phase-timeout-ms MS  every node's and enclave's phase deadline (default 30000)
  --no-kills          no kills (a baseline)
  --no-write          print the results only
  --help              this text

Resubmitted with the same request id (counted, at most 8 attempts): after
coordinator_lost, rate_limited, or the SDK's own deadline_exceeded (no answer
came); and, after one of those, "is still running" (bad_request), asked again
2 s later. Every other error is final.`;

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log(HELP);
  process.exit(0);
}
const known = new Set([
  "--count",
  "--concurrency",
  "--host-kill-at",
  "--host-down-ms",
  "--enclave-kill-at",
  "--timeout-ms",
  "--phase-timeout-ms",
]);
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (known.has(a)) i++;
  else if (a !== "--no-kills" && a !== "--no-write") {
    console.error(`unknown argument ${a}\n\n${HELP}`);
    process.exit(2);
  }
}
const num = (name: string, d: number, max = Number.MAX_SAFE_INTEGER) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : d;
  if (!Number.isFinite(v) || v <= 0 || v > max)
    throw new Error(`${name} needs a positive number${max < 2 ? " up to 1" : ""}`);
  return v;
};
const COUNT = Math.floor(num("--count", 2000));
const CONCURRENCY = Math.floor(num("--concurrency", 32));
const HOST_KILL_AT = num("--host-kill-at", 0.25, 1);
const HOST_DOWN_MS = num("--host-down-ms", 3000);
const ENCLAVE_KILL_AT = num("--enclave-kill-at", 0.6, 1);
const TIMEOUT_MS = num("--timeout-ms", 60_000);
const PHASE_TIMEOUT_MS = num("--phase-timeout-ms", 30_000);
const KILLS = !args.includes("--no-kills");
const WRITE = !args.includes("--no-write");
/** Attempts per request: resubmissions are for what the system calls safe, not forever. */
const MAX_ATTEMPTS = 8;
const RESUBMIT = new Set(["coordinator_lost", "rate_limited", "sdk_deadline"]);
/** After a lost coordinator, a resubmission may find the id "still running" on a node: asked again after a pause. */
const RESUBMIT_AFTER_LOSS = new Set(["still_running"]);
const HOST_VICTIM = "node-2";
const ENCLAVE_VICTIM = "node-4";
const ROOT = new URL("..", import.meta.url).pathname;

const log = (s: string) =>
  process.stderr.write(`[load ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(v: number[], p: number): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The SDK's own deadline (no answer came) reads "No final answer …"; a node's deadline_exceeded is an answer. */
function codeOf(e: unknown): string {
  if (!(e instanceof TssError)) return "exception";
  if (e.code === "deadline_exceeded" && e.message.startsWith("No final answer"))
    return "sdk_deadline";
  if (e.code === "bad_request" && /is still running/.test(e.message)) return "still_running";
  return e.code;
}

interface Outcome {
  requestId: string;
  digest: string;
  attempts: number;
  /** Codes of the attempts that were resubmitted. */
  resubmittedAfter: string[];
  startedAt: number;
  endedAt: number;
  /** How many times this request's final outcome was recorded (must be 1). */
  settled: number;
  result?: SignResult;
  failure?: { code: string; node: string | null; message: string };
}

/** A kill and its recovery, in ms since the kill. */
interface KillRecord {
  what: "host" | "enclave";
  node: string;
  at: number;
  answeredBefore: number;
  /** When the node's presence said online again. */
  onlineAfterMs: number | null;
  /** When a request started after the kill was signed with this node among its signers. */
  signingAfterMs: number | null;
}

function gitCommit(): string {
  try {
    const head = execSync("git rev-parse HEAD", { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execSync("git status --porcelain -- src bench", { cwd: ROOT, encoding: "utf8" });
    return dirty.trim() ? `${head} (with uncommitted changes under src/ or bench/)` : head;
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tss-load-"));
  const load0 = loadavg()[0]!;
  // One client user carrying the whole load: its admission limits (rate-limits.ts) are raised
  // as bench/cluster.ts does, so the figures are the cluster's, not the limiter's.
  const cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: PHASE_TIMEOUT_MS,
    limits: {
      requestsPerSecond: 10_000,
      requestBurst: 10_000,
      maxInFlight: 256,
      maxCeremonies: 256,
    },
    progress: log,
  });
  const node = (id: string): ClusterNode => cluster.nodes.find((n) => n.nodeId === id)!;
  // The test-only observer reads every tss/v1 topic: presence, and every final answer.
  const presence = await watchPresence(cluster.observer);
  const observer = presence.client;
  const finals = new Map<string, number>();
  observer.on("message", (topic, payload, packet) => {
    if (!topic.startsWith("tss/v1/responses/")) return;
    let final = false;
    try {
      final = "ok" in (JSON.parse(payload.toString()) as object);
    } catch {
      return;
    }
    const corr = packet.properties?.correlationData;
    if (final && corr) {
      const k = `${topic}/${Buffer.from(corr).toString("hex")}`;
      finals.set(k, (finals.get(k) ?? 0) + 1);
    }
  });
  await observer.subscribeAsync("tss/v1/responses/#", { qos: 1 });
  const client = await TssClient.connect({
    ...cluster.client,
    timeoutMs: TIMEOUT_MS,
  });
  const outcomes: Outcome[] = [];
  const kills: KillRecord[] = [];
  let exitCode = 0;
  try {
    log("DKG 3-of-5");
    const wallet = await client.createWallet({ threshold: 3, parties: 5, timeoutMs: 300_000 });
    const walletKey = fromHex(wallet.publicKey);
    log(`wallet ${wallet.walletId}; warm-up`);
    for (let k = 0; k < 5; k++)
      await client.sign({ walletId: wallet.walletId, digest: randomBytes(32) });

    let answered = 0;
    let next = 0;
    const tag = randomBytes(4).toString("hex");
    const one = async (i: number): Promise<void> => {
      const o: Outcome = {
        requestId: `load-${tag}-${i}`,
        digest: randomBytes(32).toString("hex"),
        attempts: 0,
        resubmittedAfter: [],
        startedAt: Date.now(),
        endedAt: 0,
        settled: 0,
      };
      outcomes.push(o);
      for (;;) {
        o.attempts++;
        try {
          o.result = await client.sign({
            walletId: wallet.walletId,
            digest: o.digest,
            requestId: o.requestId,
          });
          break;
        } catch (e) {
          const code = codeOf(e);
          const afterLoss = o.resubmittedAfter.length > 0 && RESUBMIT_AFTER_LOSS.has(code);
          if ((RESUBMIT.has(code) || afterLoss) && o.attempts < MAX_ATTEMPTS) {
            o.resubmittedAfter.push(code);
            // A refusal at admission asks for a moment, and so does an id still running
            // elsewhere; a lost coordinator's id is taken by another node at once.
            if (code === "rate_limited") await sleep(200);
            if (afterLoss) await sleep(2_000);
            continue;
          }
          const err = e as TssError;
          o.failure = { code, node: err.node ?? null, message: String(err.message).slice(0, 300) };
          break;
        }
      }
      o.endedAt = Date.now();
      o.settled++;
      answered++;
    };
    const worker = async () => {
      while (next < COUNT) await one(next++);
    };

    const recovery = async (k: KillRecord) => {
      const seen = presence.history(k.node).filter((p) => p.at > k.at);
      const online = seen.find((p) => p.status === "online");
      k.onlineAfterMs = online ? online.at - k.at : null;
      const signed = outcomes
        .filter((o) => o.result && o.startedAt > k.at && o.result.signers.includes(k.node))
        .map((o) => o.endedAt)
        .sort((a, b) => a - b)[0];
      k.signingAfterMs = signed === undefined ? null : signed - k.at;
    };
    const killer = async () => {
      if (!KILLS) return;
      while (answered < COUNT * HOST_KILL_AT) await sleep(20);
      const h = node(HOST_VICTIM);
      kills.push({
        what: "host",
        node: HOST_VICTIM,
        at: Date.now(),
        answeredBefore: answered,
        onlineAfterMs: null,
        signingAfterMs: null,
      });
      log(`kill -9 ${HOST_VICTIM}'s host (pid ${h.host.proc.pid}) at ${answered} answered`);
      process.kill(h.host.proc.pid!, "SIGKILL");
      await sleep(HOST_DOWN_MS);
      log(`starting ${HOST_VICTIM}'s host again`);
      await h.restartHost();
      while (answered < COUNT * ENCLAVE_KILL_AT) await sleep(20);
      const e = node(ENCLAVE_VICTIM);
      kills.push({
        what: "enclave",
        node: ENCLAVE_VICTIM,
        at: Date.now(),
        answeredBefore: answered,
        onlineAfterMs: null,
        signingAfterMs: null,
      });
      log(
        `kill -9 ${ENCLAVE_VICTIM}'s enclave (pid ${e.enclave.proc.pid}) at ${answered} answered`,
      );
      process.kill(e.enclave.proc.pid!, "SIGKILL");
      await e.enclave.restarted(1);
      log(`${ENCLAVE_VICTIM}'s enclave restarted by the supervisor`);
    };

    log(`${COUNT} sign requests at concurrency ${CONCURRENCY}${KILLS ? ", with kills" : ""}`);
    const t0 = Date.now();
    const progress = setInterval(() => log(`${answered}/${COUNT} answered`), 10_000);
    await Promise.all([...Array.from({ length: CONCURRENCY }, worker), killer()]);
    clearInterval(progress);
    const wallMs = Date.now() - t0;
    for (const k of kills) await recovery(k);

    // Every node's own record of what it signed: a request id with two succeeded sign ceremonies was signed twice.
    const succeededRows = new Map<string, number>();
    for (const n of cluster.nodes) {
      const db = openReadOnlyFile(join(dir, `${n.nodeId}.db`));
      try {
        for (const r of db.all(
          "SELECT request_id FROM ceremonies WHERE kind = 'sign' AND status = 'succeeded' AND request_id LIKE :p",
          { p: `load-${tag}-%` },
        )) {
          const id = String(r.request_id);
          succeededRows.set(id, (succeededRows.get(id) ?? 0) + 1);
        }
      } finally {
        db.close();
      }
    }

    const signed = outcomes.filter((o) => o.result);
    const badSignatures = signed.filter((o) => {
      const s = o.result!.signature;
      return !(
        o.result!.digest === o.digest &&
        verifySignature(walletKey, fromHex(o.digest), {
          r: fromHex(s.r),
          s: fromHex(s.s),
          recoveryId: s.recoveryId,
        })
      );
    }).length;
    const failedBy: Record<string, number> = {};
    for (const o of outcomes)
      if (o.failure) failedBy[o.failure.code] = (failedBy[o.failure.code] ?? 0) + 1;
    const resubmittedBy: Record<string, number> = {};
    for (const o of outcomes)
      for (const c of o.resubmittedAfter) resubmittedBy[c] = (resubmittedBy[c] ?? 0) + 1;
    const lat = outcomes.map((o) => o.endedAt - o.startedAt);
    const signedLat = signed.map((o) => o.endedAt - o.startedAt);
    const duplicated = [...succeededRows.values()].filter((c) => c > 1).length;
    const answeredTwice = [...finals.values()].filter((c) => c > 1).length;
    // Lost: no answer from the system at all, even after the resubmissions the SDK allows.
    const lost = outcomes.filter((o) => o.failure?.code === "sdk_deadline").length;
    const notOnce = outcomes.filter((o) => o.settled !== 1).length + (COUNT - outcomes.length);
    const blamed: Record<string, number> = {};
    for (const o of outcomes)
      if (o.failure?.node) blamed[o.failure.node] = (blamed[o.failure.node] ?? 0) + 1;
    const load1 = loadavg()[0]!;

    const result = {
      date: new Date().toISOString(),
      machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`,
      commit: gitCommit(),
      command: args.length ? `npm run load -- ${args.join(" ")}` : "npm run load",
      contention: `load average ${load0.toFixed(2)} at start, ${load1.toFixed(2)} at end (${cpus().length} cores, shared with other work)`,
      cluster:
        "5 nodes (separate host and enclave processes), one Mosquitto, the KMS stand-in; one 3-of-5 wallet",
      phase_timeout_ms: PHASE_TIMEOUT_MS,
      sdk_timeout_ms: TIMEOUT_MS,
      requested: COUNT,
      concurrency: CONCURRENCY,
      answered: outcomes.filter((o) => o.settled === 1).length,
      answered_not_exactly_once: notOnce,
      responses_with_two_final_answers: answeredTwice,
      signed: signed.length,
      signatures_not_verifying: badSignatures,
      failed: outcomes.length - signed.length,
      failed_by_reason: failedBy,
      failures_blame: blamed,
      lost,
      duplicated,
      resubmitted: outcomes.filter((o) => o.resubmittedAfter.length > 0).length,
      resubmitted_after: resubmittedBy,
      resubmitted_then_signed: outcomes.filter((o) => o.resubmittedAfter.length > 0 && o.result)
        .length,
      latency_ms: {
        all: { p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100) },
        signed: { p50: pct(signedLat, 50), p99: pct(signedLat, 99) },
      },
      wall_s: wallMs / 1000,
      rate_per_s: signed.length / (wallMs / 1000),
      kills: kills.map((k) => ({
        what: k.what,
        node: k.node,
        at_answered: k.answeredBefore,
        ...(k.what === "host" ? { down_ms: HOST_DOWN_MS } : {}),
        online_again_after_ms: k.onlineAfterMs,
        signing_again_after_ms: k.signingAfterMs,
      })),
      sample_failures: outcomes
        .filter((o) => o.failure)
        .slice(0, 5)
        .map((o) => o.failure),
    };
    const ok =
      notOnce === 0 &&
      answeredTwice === 0 &&
      badSignatures === 0 &&
      duplicated === 0 &&
      lost === 0 &&
      (!KILLS || kills.every((k) => k.signingAfterMs !== null));
    if (!ok) exitCode = 1;
    console.log(JSON.stringify(result, null, 2));
    if (WRITE) writeResults(result, ok);
    log(ok ? "every check held" : "A CHECK FAILED: see the JSON above");
  } finally {
    await client.close().catch(() => {});
    await presence.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

function writeResults(r: Record<string, any>, ok: boolean): void {
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/load.json"),
    JSON.stringify({ ...r, checks_held: ok }, null, 2) + "\n",
  );
  const f = (x: number | null) => (x === null ? "—" : `${(x / 1000).toFixed(1)} s`);
  const codes = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") || "none";
  const table = [
    "| measure | value |",
    "|---|---:|",
    `| requested / answered (exactly once) | ${r.requested} / ${r.answered} |`,
    `| signed (every signature verified) | ${r.signed} (${r.signatures_not_verifying} not verifying) |`,
    `| failed, by reason | ${r.failed} (${codes(r.failed_by_reason)}) |`,
    `| lost (no answer) / duplicated (request id signed twice) | ${r.lost} / ${r.duplicated} |`,
    `| resubmitted with the same request id | ${r.resubmitted} (after ${codes(r.resubmitted_after)}; ${r.resubmitted_then_signed} then signed) |`,
    `| latency p50 / p99, every request | ${f(r.latency_ms.all.p50)} / ${f(r.latency_ms.all.p99)} |`,
    `| signatures per second over the run | ${r.rate_per_s.toFixed(1)} (${r.wall_s.toFixed(0)} s) |`,
    ...r.kills.map(
      (k: Record<string, any>) =>
        `| ${k.what} of ${k.node} killed at ${k.at_answered} answered${k.down_ms ? `, down ${k.down_ms / 1000} s` : ""}: online again / signing again | ${f(k.online_again_after_ms)} / ${f(k.signing_again_after_ms)} after the kill |`,
    ),
  ].join("\n");
  const section = `<!-- load:begin -->\nMeasured ${r.date} on ${r.machine}, commit ${r.commit}; ${r.contention}.\nCommand: \`${r.command}\` (${r.cluster}; phase deadline ${r.phase_timeout_ms / 1000} s, SDK deadline ${r.sdk_timeout_ms / 1000} s per attempt). Checks ${ok ? "held" : "FAILED"}.\n\n${table}\n<!-- load:end -->`;
  const path = join(ROOT, "BENCHMARKS.md");
  let doc = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  if (!doc.includes("<!-- load:begin -->"))
    doc += "\n## Load with kills (`npm run load`)\n\n<!-- load:begin -->\n<!-- load:end -->\n";
  writeFileSync(path, doc.replace(/<!-- load:begin -->[\s\S]*<!-- load:end -->/, section));
}

main().catch((e) => {
  console.error(`load failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
