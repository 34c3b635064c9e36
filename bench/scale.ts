/**
 * npm run bench:scale — how a node's costs grow with the number of wallets it
 * holds. See HELP below for what is run and measured; results go to
 * bench/results/scale.json (one entry per wallet count, merged with the
 * entries already there, so a size can be run later on its own) and to the
 * scale table in BENCHMARKS.md.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startCluster, type LocalCluster } from "../src/cluster/local-cluster.ts";
import { TssClient } from "../src/client/index.ts";
import { BenchDealer, openDealingWindow } from "../src/dev/bench-dealer.ts";
import { loadDkls } from "../src/enclave/dkls23/binding.ts";
import { devNodePcr4Hex } from "../src/harness/dev-kms.ts";
import { EnclaveClient } from "../src/host/enclave-client.ts";
import { openStore } from "../src/host/store/index.ts";
import type { HealthReply } from "../src/shared/wire/enclave-ops.ts";

const HELP = `usage: npm run bench:scale -- [options]

Starts a local cluster (--nodes nodes as separate host and enclave processes,
one Mosquitto, the KMS stand-in, all on this machine) and, for each wallet
count in --sizes (ascending, per node), stops the hosts, grows every node's
store to that many wallets, starts the hosts again and measures:

  host start-up     process start to its "ready" line, per node, with the store
                    at that size
  first request     the first signature after that start (the hosts have
                    forgotten what their enclaves hold, so each signer loads
                    the share again: one KMS Decrypt)
  cached sign       p50/p99 of --cached-runs signatures of one wallet whose
                    share every signer's enclave holds, each followed by one
                    on a second cluster of the same shape holding 1 wallet
                    (the baseline: both see the same load on a shared machine)
  uncached sign     p50/p99 of --uncached-runs signatures, each of a wallet not
                    signed before in this run (every signer first loads it:
                    one KMS Decrypt and an unseal); not at size 1
  enclave           RSS (/proc) and, from HEALTH, wasm memory, share cache use,
                    budget, evictions and refused loads
  database          each node's libsql file (+ WAL) in bytes

The wallets are made by the benchmark-only dealer (src/dev/bench-dealer.ts):
one t-of-n DKG in this process, then each party's share sealed under every
wallet id in the enclave's sealed-share format (the wallet id and the node's
PCR4 in the associated data, a data key per wallet and node from the KMS
stand-in, which a temporary policy statement lets the dealer take in the
clear), written straight into the stopped hosts' stores. All clones share one
group key. Enclaves load and sign them through the normal attested path.

  --sizes LIST            wallet counts, ascending (default 1,1000,10000,100000)
  --nodes N               nodes; node i holds party i (default 3)
  --threshold T           signers per signature (default 2)
  --share-budget-bytes N  each enclave's --share-budget-bytes (default 8388608,
                          small so that the uncached runs overflow it and evict)
  --cached-runs N         signatures of the cached wallet per size (default 100)
  --uncached-runs N       signatures, each of a wallet not signed before (default 200)
  --out FILE              results file (default bench/results/scale.json); entries
                          for other sizes already in it are kept, so a size can be
                          run later on its own (e.g. --sizes 100000: it deals all
                          100,000 wallets from an empty store)
  --no-doc                do not rewrite the scale table in BENCHMARKS.md
  --help                  this text

Everything lives in a temporary directory, removed at the end. Disk: about
sealed share x 1.03 x wallets x nodes (2-of-3: ~108 KB per wallet and node,
so 100,000 wallets on 3 nodes need ~33 GB); before each size the run stops if
that would leave less than 5 GiB free. Time: the dealer makes one KMS call per
wallet and node; 100,000 wallets on 3 nodes took ~20 minutes of dealing on a
shared 2-core machine.`;

const { values: opt } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,1000,10000,100000" },
    nodes: { type: "string", default: "3" },
    threshold: { type: "string", default: "2" },
    "share-budget-bytes": { type: "string", default: String(8 * 1024 * 1024) },
    "cached-runs": { type: "string", default: "100" },
    "uncached-runs": { type: "string", default: "200" },
    out: { type: "string" },
    "no-doc": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}
const int = (name: string, v: string | undefined, min: number) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
};
const SIZES = opt.sizes!.split(",").map((s) => int("sizes", s.trim(), 1));
if (SIZES.some((s, i) => i > 0 && s <= SIZES[i - 1]!)) throw new Error("--sizes must be ascending");
const NODES = int("nodes", opt.nodes, 2);
const THRESHOLD = int("threshold", opt.threshold, 2);
if (THRESHOLD > NODES) throw new Error("--threshold must not exceed --nodes");
const BUDGET = int("share-budget-bytes", opt["share-budget-bytes"], 65_536);
const CACHED_RUNS = int("cached-runs", opt["cached-runs"], 1);
const UNCACHED_RUNS = int("uncached-runs", opt["uncached-runs"], 1);
const ROOT = new URL("..", import.meta.url).pathname;
const OUT = opt.out ?? join(ROOT, "bench/results/scale.json");
const say = (s: string) => process.stderr.write(`[${new Date().toISOString()}] ${s}\n`);

/** Wallet ids as long as the coordinator's (w_ + 24 hex digits). */
const walletIdOf = (i: number) => `w_${i.toString(16).padStart(24, "0")}`;

function pct(v: readonly number[], p: number): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

function rssBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Free bytes on the file system holding `dir`. */
function freeBytes(dir: string): number {
  const out = execFileSync("df", ["-B1", "--output=avail", dir]).toString().trim().split("\n");
  return Number(out.at(-1));
}

const fileSize = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/** One enclave's HEALTH over its own socket (the enclave serves several connections). */
async function health(cluster: LocalCluster, nodeId: string): Promise<HealthReply> {
  const c = await EnclaveClient.connect({
    kind: "unix",
    path: join(cluster.dataDir, `${nodeId}.enclave.sock`),
  });
  try {
    return await c.health();
  } finally {
    c.close();
  }
}

async function signTimed(client: TssClient, walletId: string): Promise<number> {
  const t = performance.now();
  await client.sign({ walletId, digest: randomBytes(32) });
  return performance.now() - t;
}

/** Distinct wallets from [1, count), spread over the whole range, none already used. */
function freshWallets(count: number, want: number, used: Set<number>): number[] {
  const out: number[] = [];
  for (let tries = 0; out.length < want && tries < want * 20; tries++) {
    const i = 1 + Math.floor(Math.random() * (count - 1));
    if (!used.has(i)) {
      used.add(i);
      out.push(i);
    }
  }
  return out;
}

interface SizeResult {
  wallets: number;
  date: string;
  load_average_1m: number;
  deal_seconds: number;
  sign_cached_ms: { runs: number; p50: number | null; p99: number | null };
  /** The 1-wallet cluster's cached wallet, signed alternately with the measured one. */
  sign_baseline_ms?: { runs: number; p50: number | null; p99: number | null };
  cached_p50_over_baseline?: number;
  sign_uncached_ms: { runs: number; p50: number | null; p99: number | null };
  uncached_extra_p50_ms: number | null;
  first_request_ms: number;
  host_startup_ms: number[];
  database_bytes: number[];
  enclave_rss_bytes: (number | null)[];
  enclave: Pick<
    HealthReply,
    | "wasmMemoryBytes"
    | "shareBudgetBytes"
    | "shareBytesUsed"
    | "shareEvictions"
    | "shareLoadsRefused"
    | "loadedWallets"
  >[];
  errors: string[];
}

function benchCluster(dataDir: string): Promise<LocalCluster> {
  return startCluster({
    nodes: NODES,
    dataDir,
    phaseTimeoutMs: 120_000,
    enclaveShareBudgetBytes: BUDGET,
    progress: say,
    limits: { requestsPerSecond: 10_000, requestBurst: 10_000, maxInFlight: 256 },
  });
}

function clientOf(cluster: LocalCluster): Promise<TssClient> {
  return TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    clientId: "bench-scale",
    timeoutMs: 300_000,
  });
}

/** Deals `ids` into the cluster's stores, hosts stopped (the caller starts them again). */
async function dealInto(cluster: LocalCluster, dealer: BenchDealer, ids: string[]): Promise<void> {
  for (const n of cluster.nodes) await n.host.stop();
  const open = cluster.nodes.map(
    (n) => openStore({ path: join(cluster.dataDir, `${n.nodeId}.db`) }).db,
  );
  const closeWindow = await openDealingWindow(cluster.kms.client, cluster.kms.keyArn);
  try {
    for (let k = 0; k < ids.length; k += 2048) {
      await dealer.deal(ids.slice(k, k + 2048), open);
      if (ids.length > 2048) say(`  dealt ${Math.min(k + 2048, ids.length)} of ${ids.length}`);
    }
  } finally {
    // The enclaves load under the node-bound policy only.
    await closeWindow();
    for (const db of open) {
      db.checkpoint();
      db.close();
    }
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "tss-bench-scale-"));
  say(`data directory ${dir}`);
  loadDkls();
  const cluster = await benchCluster(dir);
  const client = await clientOf(cluster);
  // The baseline: a cluster of the same shape holding one wallet, signed in turn with the
  // measured one, so that both see the same load on this shared machine.
  const base = await benchCluster(join(dir, "baseline"));
  const baseClient = await clientOf(base);
  const results: SizeResult[] = [];
  try {
    say("baseline cluster: one wallet");
    const baseDealer = new BenchDealer({
      kms: base.kms.client,
      kmsKeyArn: base.kms.keyArn,
      threshold: THRESHOLD,
      nodes: base.nodes.map((n) => ({ nodeId: n.nodeId, pcr4Hex: devNodePcr4Hex(n.nodeId) })),
    });
    await dealInto(base, baseDealer, [walletIdOf(0)]);
    baseDealer.close();
    for (const n of base.nodes) await n.restartHost();
    const dbPath = (nodeId: string) => join(dir, `${nodeId}.db`);
    say(`dealer: one ${THRESHOLD}-of-${NODES} DKG`);
    const dealer = new BenchDealer({
      kms: cluster.kms.client,
      kmsKeyArn: cluster.kms.keyArn,
      threshold: THRESHOLD,
      nodes: cluster.nodes.map((n) => ({
        nodeId: n.nodeId,
        pcr4Hex: devNodePcr4Hex(n.nodeId),
      })),
    });
    say(`share lengths ${dealer.shareLengths.join(", ")} bytes`);
    let have = 0;
    const used = new Set<number>([0]);
    for (const size of SIZES) {
      const errors: string[] = [];
      const need = (size - have) * NODES * (Math.max(...dealer.shareLengths) + 4096);
      const free = freeBytes(dir);
      if (free < need + 5 * 2 ** 30) {
        say(
          `${size} wallets: stopping here, ${(need / 2 ** 30).toFixed(1)} GiB more needed and only ${(free / 2 ** 30).toFixed(1)} GiB free (5 GiB kept free)`,
        );
        break;
      }
      say(`${size} wallets: stopping hosts, dealing ${size - have} more`);
      const t0 = performance.now();
      await dealInto(
        cluster,
        dealer,
        Array.from({ length: size - have }, (_, k) => walletIdOf(have + k)),
      );
      const dealSeconds = (performance.now() - t0) / 1000;
      have = size;
      say(`${size} wallets: starting hosts`);
      const startup: number[] = [];
      for (const n of cluster.nodes) {
        const t = performance.now();
        await n.restartHost();
        startup.push(performance.now() - t);
      }
      const hot = walletIdOf(0);
      let first: number;
      try {
        first = await signTimed(client, hot);
      } catch (e) {
        errors.push(`first request: ${(e as Error).message}`);
        await Bun.sleep(1000);
        first = await signTimed(client, hot);
      }
      say(`${size} wallets: cached signing (${CACHED_RUNS} runs)`);
      for (let k = 0; k < 5; k++) {
        await signTimed(client, hot);
        await signTimed(baseClient, hot);
      }
      const cached: number[] = [];
      const baseline: number[] = [];
      for (let k = 0; k < CACHED_RUNS; k++) {
        cached.push(await signTimed(client, hot));
        baseline.push(await signTimed(baseClient, hot));
      }
      const fresh = size > 1 ? freshWallets(size, UNCACHED_RUNS, used) : [];
      say(`${size} wallets: uncached signing (${fresh.length} wallets)`);
      const uncached: number[] = [];
      for (const i of fresh) {
        try {
          uncached.push(await signTimed(client, walletIdOf(i)));
        } catch (e) {
          errors.push(`uncached ${walletIdOf(i)}: ${(e as Error).message}`);
        }
      }
      const reports = await Promise.all(cluster.nodes.map((n) => health(cluster, n.nodeId)));
      const r: SizeResult = {
        wallets: size,
        date: new Date().toISOString(),
        load_average_1m: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
        deal_seconds: dealSeconds,
        sign_cached_ms: { runs: cached.length, p50: pct(cached, 50), p99: pct(cached, 99) },
        sign_baseline_ms: { runs: baseline.length, p50: pct(baseline, 50), p99: pct(baseline, 99) },
        cached_p50_over_baseline: pct(cached, 50)! / pct(baseline, 50)!,
        sign_uncached_ms: { runs: uncached.length, p50: pct(uncached, 50), p99: pct(uncached, 99) },
        uncached_extra_p50_ms: uncached.length > 0 ? pct(uncached, 50)! - pct(cached, 50)! : null,
        first_request_ms: first,
        host_startup_ms: startup,
        database_bytes: cluster.nodes.map(
          (n) => fileSize(dbPath(n.nodeId)) + fileSize(`${dbPath(n.nodeId)}-wal`),
        ),
        enclave_rss_bytes: cluster.nodes.map((n) => rssBytes(n.enclave.proc.pid)),
        enclave: reports.map((h) => ({
          wasmMemoryBytes: h.wasmMemoryBytes,
          shareBudgetBytes: h.shareBudgetBytes,
          shareBytesUsed: h.shareBytesUsed,
          shareEvictions: h.shareEvictions,
          shareLoadsRefused: h.shareLoadsRefused,
          loadedWallets: h.loadedWallets,
        })),
        errors,
      };
      results.push(r);
      say(JSON.stringify(r));
      writeResults(dealer.shareLengths, results);
    }
    dealer.close();
  } finally {
    await client.close().catch(() => {});
    await baseClient.close().catch(() => {});
    await cluster.stop();
    await base.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function git(...a: string[]): string {
  return execFileSync("git", a, { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] })
    .toString()
    .trim();
}

/** The commit measured; outside a git checkout (e.g. a \`git archive\` snapshot) what TSS_BENCH_COMMIT says. */
function commitOf(): string {
  try {
    const dirty = git("status", "--porcelain", "--", "src", "bench", "crates").length > 0;
    return `${git("rev-parse", "HEAD")}${dirty ? " (with uncommitted changes)" : ""}`;
  } catch {
    return process.env.TSS_BENCH_COMMIT ?? "unknown (not a git checkout)";
  }
}

/** Merges this run's sizes into the results file and rewrites the BENCHMARKS.md table. */
function writeResults(shareLengths: number[], sizes: SizeResult[]): void {
  const previous = existsSync(OUT) ? JSON.parse(readFileSync(OUT, "utf8")) : { sizes: [] };
  const setup = `${THRESHOLD}-of-${NODES}`;
  const run = {
    date: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`,
    commit: commitOf(),
    command: `npm run bench:scale -- ${process.argv.slice(2).join(" ")}`.trim(),
    setup: `${setup}, ${NODES} nodes (host + enclave processes each), one Mosquitto, the KMS stand-in; enclave --share-budget-bytes ${BUDGET}`,
    share_bytes: shareLengths,
  };
  const kept = (previous.sizes as (SizeResult & { run?: typeof run })[]).filter(
    (s) => !sizes.some((n) => n.wallets === s.wallets),
  );
  const all = [...kept, ...sizes.map((s) => ({ ...s, run }))].sort((a, b) => a.wallets - b.wallets);
  writeFileSync(OUT, `${JSON.stringify({ sizes: all }, null, 2)}\n`);
  if (opt["no-doc"]) return;
  const f = (x: number | null | undefined, d = 1) =>
    x === null || x === undefined ? "–" : x.toFixed(d);
  const mib = (x: number | null | undefined) => (x == null ? "–" : (x / 2 ** 20).toFixed(0));
  const max = (v: (number | null | undefined)[]) => Math.max(...v.map((x) => x ?? 0));
  const table = [
    "| wallets per node | setup | cached sign p50 / p99 ms | 1-wallet baseline p50 ms, same moment (ratio) | uncached sign p50 / p99 ms (runs) | uncached extra p50 ms | first request ms | host start-up ms (max) | database MiB per node | enclave RSS MiB (max) | wasm memory MiB (max) | cache used / budget MiB, evictions | load (1 min) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ...all.map((s) => {
      const e = s.enclave;
      return `| ${s.wallets.toLocaleString("en-US")} | ${s.run?.setup.split(",")[0] ?? "?"} | ${f(s.sign_cached_ms.p50)} / ${f(s.sign_cached_ms.p99)} | ${s.sign_baseline_ms ? `${f(s.sign_baseline_ms.p50)} (${f(s.cached_p50_over_baseline, 2)})` : "–"} | ${f(s.sign_uncached_ms.p50)} / ${f(s.sign_uncached_ms.p99)} (${s.sign_uncached_ms.runs}) | ${f(s.uncached_extra_p50_ms)} | ${f(s.first_request_ms)} | ${f(max(s.host_startup_ms), 0)} | ${mib(max(s.database_bytes))} | ${mib(max(s.enclave_rss_bytes))} | ${mib(max(e.map((x) => x.wasmMemoryBytes)))} | ${mib(max(e.map((x) => x.shareBytesUsed)))} / ${mib(e[0]?.shareBudgetBytes)}, ${e.map((x) => x.shareEvictions ?? 0).join("+")} | ${f(s.load_average_1m)} |`;
    }),
  ].join("\n");
  const section = `<!-- scale:begin -->\nLatest run ${run.date} on ${run.machine}, commit ${run.commit}.\nCommand: \`${run.command}\`; ${run.setup}. Each row keeps the run that measured it (bench/results/scale.json).\n\n${table}\n<!-- scale:end -->`;
  const path = join(ROOT, "BENCHMARKS.md");
  let doc = readFileSync(path, "utf8");
  if (!doc.includes("<!-- scale:begin -->"))
    doc += "\n## Scale (wallets per node)\n\n<!-- scale:begin -->\n<!-- scale:end -->\n";
  writeFileSync(path, doc.replace(/<!-- scale:begin -->[\s\S]*<!-- scale:end -->/, section));
}

main().catch((e) => {
  console.error(`bench:scale failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
