/**
 * Where the enclaves' and the hosts' CPU per signature goes (issue 12 item 4):
 * the local cluster (5 nodes, 3-of-5, real enclave processes, Mosquitto, the
 * KMS stand-in), one wallet, then --runs signatures; the enclave processes'
 * and the host processes' CPU (utime + stime from /proc, each summed over all
 * five, of which three sign each time) per signature, against three parties'
 * wasm core signing measured in this process in the same run (the same wasm,
 * in-process routing, no node layer). Ratios to that are what to compare
 * across runs and machines' loads: both stretch alike when other work shares
 * the cores.
 *
 *   bun run bench/enclave-sign-profile.ts [--runs N (default 100)] [--concurrency C (default 1)]
 *       [--profile DIR]
 *
 * --profile: Bun's sampling profiler (`--cpu-prof`, 1 ms) in every process the
 * cluster starts; the enclaves' and, apart, the hosts' samples taken while the
 * timed signatures ran (by their wall-clock stamps, so the DKG and warm-up are
 * left out) are summed by module (self time: where the CPU is) and by the
 * project's own functions (inclusive: which stage costs it), printed to stderr. Sampling
 * slows what it measures (~10 %), so take the CPU figures from a run without it.
 *
 * Nothing is written to bench/results: the figures go to stdout as JSON.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { startCluster } from "../src/cluster/local-cluster.ts";
import { TssClient } from "../src/client/index.ts";
import { dkgInProcess, signInProcess } from "../src/dev/in-process.ts";
import { loadDkls } from "../src/enclave/dkls23/binding.ts";

import { CAPACITY_LIMITS, CLK, machineBusySeconds } from "./proc-cpu.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log(
    "usage: bun run bench/enclave-sign-profile.ts [--runs N (default 100)] [--concurrency C (default 1)] [--profile DIR]",
  );
  process.exit(0);
}
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const RUNS = Number(opt("--runs") ?? 100);
const CONCURRENCY = Number(opt("--concurrency") ?? 1);
const PROFILE_DIR = opt("--profile");
if (!(RUNS > 0 && CONCURRENCY > 0)) throw new Error("--runs and --concurrency must be positive");
/** The repository root with a trailing slash: host frames' urls are files under it. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

type Role = "enclave" | "host";

/** What a cluster process is, by its command line: enclaves listen, hosts run the host's main. */
function roleOf(cmd: string): Role | undefined {
  if (cmd.startsWith("unshare")) return undefined;
  if (cmd.includes("--listen")) return "enclave";
  if (cmd.includes("src/host/main.ts")) return "host";
  return undefined;
}

/** Descendants of this process of one role, or every one. */
function descendants(role: Role | "all"): number[] {
  const out: number[] = [];
  const walk = (pid: number) => {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return;
    }
    if (role === "all" || roleOf(cmd) === role) out.push(pid);
    let kids: string[] = [];
    try {
      kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
    } catch {
      return;
    }
    for (const k of kids.filter(Boolean)) walk(Number(k));
  };
  walk(process.pid);
  return out;
}

function cpuSeconds(pids: number[], which: "all" | "system" = "all"): number {
  let s = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      s += ((which === "all" ? Number(f[11]) : 0) + Number(f[12])) / CLK;
    } catch {
      // exited
    }
  }
  return s;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a profile frame's code lives: its module and whether it is the project's own (src/). */
type Classify = (frame: ProfileNode["callFrame"]) => { module: string; own: boolean };

/** Enclave frames: module names from the bundler's `// path` markers in the enclave bundle. */
function bundleClassifier(bundle: string): Classify {
  const lines = readFileSync(bundle, "utf8").split("\n");
  const marks: { line: number; path: string }[] = [];
  lines.forEach((l, i) => {
    if (/^\/\/ [a-z.@]/.test(l)) marks.push({ line: i, path: l.slice(3) });
  });
  const moduleAt = (line: number): string => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "?";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]!.line <= line) {
        found = marks[mid]!.path;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
  return (f) => {
    if (!f.url.includes("enclave-main")) return { module: "", own: false };
    const module = f.lineNumber >= 0 ? moduleAt(f.lineNumber) : "(bundle)";
    return { module, own: module.startsWith("src/") };
  };
}

/** Host frames: the hosts run from source, so the url names the file (a package by its name). */
function sourceClassifier(root: string): Classify {
  return (f) => {
    const url = f.url.startsWith("file://") ? fileURLToPath(f.url) : f.url;
    if (!url.startsWith("/")) return { module: "", own: false };
    const rel = url.startsWith(root) ? url.slice(root.length) : url;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
    if (pkg) return { module: pkg[1]!, own: false };
    return { module: rel, own: rel.startsWith("src/") };
  };
}

/**
 * Samples of the profiles within [fromMs, toMs] (epoch), by module (self) and by the
 * project's own functions (inclusive, each once per sample).
 */
function summarizeProfiles(files: string[], classify: Classify, fromMs: number, toMs: number) {
  const self = new Map<string, number>();
  const selfFn = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const where = (n: ProfileNode): { module: string; fn: string; own: boolean } => {
      const f = n.callFrame;
      const fn = f.functionName || "(anonymous)";
      if (fn.startsWith(".wasm-function") || f.url.includes("wasm"))
        return { module: "DKLs23 core (wasm)", fn, own: false };
      const c = classify(f);
      return c.module ? { ...c, fn } : { module: `native: ${fn}`, fn, own: false };
    };
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i]!;
      const ms = t / 1000;
      if (ms < fromMs || ms > toMs) continue;
      const leaf = byId.get(p.samples[i]!)!;
      const fn0 = leaf.callFrame.functionName;
      if (fn0 === "(idle)" || fn0 === "(program)" || fn0 === "(root)") continue;
      total++;
      const w0 = where(leaf);
      add(self, w0.module);
      // Named by the nearest frame of the project's code, so native and library leaves say who called them.
      let named: ProfileNode | undefined = leaf;
      while (named && !where(named).own) named = byId.get(parent.get(named.id) ?? -1);
      if (w0.module !== "DKLs23 core (wasm)")
        add(
          selfFn,
          `${w0.fn} in ${named ? `${named.callFrame.functionName || "(anonymous)"} (${where(named).module})` : "?"}`,
        );
      const seen = new Set<string>();
      for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
        const w = where(byId.get(id)!);
        if (!w.own) continue;
        const k = `${w.fn} (${w.module})`;
        if (!seen.has(k)) {
          seen.add(k);
          add(inclusive, k);
        }
      }
    }
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => ({ share: Math.round((v / total) * 1000) / 10, samples: v, what: k }));
  return {
    samples: total,
    selfByModule: top(self, 30),
    selfByFunction: top(selfFn, 30),
    inclusiveOwnFunctions: top(inclusive, 40),
  };
}

async function main() {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), "tss-enclave-prof-"));
  log("in-process core: DKG 3-of-5 for the reference shares");
  loadDkls();
  const shares = dkgInProcess(3, 5);
  // Inherited by every process the harness starts (the enclaves' and the hosts' files are read).
  if (PROFILE_DIR) process.env.BUN_OPTIONS = `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}`;
  const cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 120_000,
    limits: CAPACITY_LIMITS,
  });
  delete process.env.BUN_OPTIONS;
  const client = await TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    clientId: "enclave-prof",
    timeoutMs: 300_000,
  });
  let pids: number[] = [];
  let hostPids: number[] = [];
  let window = { from: 0, to: 0 };
  try {
    pids = descendants("enclave");
    hostPids = descendants("host");
    log(
      `enclave pids ${pids.join(", ")}; host pids ${hostPids.join(", ")}; DKG 3-of-5, warm-up, ${RUNS} signatures at concurrency ${CONCURRENCY}`,
    );
    const { walletId } = await client.createWallet({ threshold: 3, parties: 5 });
    for (let k = 0; k < 10; k++) await client.sign({ walletId, digest: randomBytes(32) });
    for (let k = 0; k < 5; k++) signInProcess(shares, [1, 2, 3], randomBytes(32));

    // What the five enclaves spend with nothing to do (timers, presence of the hosts' calls), per second.
    const i0 = cpuSeconds(pids);
    const hi0 = cpuSeconds(hostPids);
    await Bun.sleep(3000);
    const idleMsPerS = ((cpuSeconds(pids) - i0) * 1000) / 3;
    const hostIdleMsPerS = ((cpuSeconds(hostPids) - hi0) * 1000) / 3;
    const load0 = loadavg();
    const every = descendants("all");
    const ours0 = cpuSeconds(every);
    const m0 = machineBusySeconds();
    const t0 = performance.now();
    window.from = Date.now();
    const c0 = cpuSeconds(pids);
    const s0 = cpuSeconds(pids, "system");
    const h0 = cpuSeconds(hostPids);
    const hs0 = cpuSeconds(hostPids, "system");
    let left = RUNS;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (left-- > 0) await client.sign({ walletId, digest: randomBytes(32) });
      }),
    );
    const c1 = cpuSeconds(pids);
    const s1 = cpuSeconds(pids, "system");
    const h1 = cpuSeconds(hostPids);
    const hs1 = cpuSeconds(hostPids, "system");
    window.to = Date.now();
    const m1 = machineBusySeconds();
    const ours1 = cpuSeconds(every);
    const wallS = (performance.now() - t0) / 1000;
    // This process and the whole cluster are ours; whatever else the machine did is other work's.
    const otherShare = (m1 - m0 - (ours1 - ours0)) / (wallS * cpus().length);

    // The core alone: three parties in this process, right after.
    const coreRuns = Math.max(20, Math.round(RUNS / 2));
    const k0 = process.cpuUsage();
    for (let k = 0; k < coreRuns; k++) signInProcess(shares, [1, 2, 3], randomBytes(32));
    const k1 = process.cpuUsage(k0);
    const coreMs = (k1.user + k1.system) / 1000 / coreRuns;
    const enclaveMs = ((c1 - c0) * 1000) / RUNS;
    const r1 = (x: number) => Math.round(x * 10) / 10;
    console.log(
      JSON.stringify(
        {
          date: new Date().toISOString(),
          command: `bun run bench/enclave-sign-profile.ts ${args.join(" ")}`.trim(),
          runs: RUNS,
          concurrency: CONCURRENCY,
          enclave_cpu_ms_per_signature: r1(enclaveMs),
          enclave_kernel_cpu_ms_per_signature: r1(((s1 - s0) * 1000) / RUNS),
          enclave_idle_cpu_ms_per_second: r1(idleMsPerS),
          core_cpu_ms_per_signature_three_parties: r1(coreMs),
          ratio: Math.round((enclaveMs / coreMs) * 100) / 100,
          node_layer_ms_per_signer_per_signature: r1((enclaveMs - coreMs) / 3),
          host_cpu_ms_per_signature: r1(((h1 - h0) * 1000) / RUNS),
          host_kernel_cpu_ms_per_signature: r1(((hs1 - hs0) * 1000) / RUNS),
          host_idle_cpu_ms_per_second: r1(hostIdleMsPerS),
          hosts_to_core_ratio: Math.round((((h1 - h0) * 1000) / RUNS / coreMs) * 100) / 100,
          wall_ms_per_signature: r1((wallS * 1000) / RUNS),
          loadavg_start: load0,
          loadavg_end: loadavg(),
          other_work_cpu_share: Math.round(otherShare * 1000) / 1000,
        },
        null,
        2,
      ),
    );
  } finally {
    await client.close().catch(() => {});
    await cluster.stop();
    // The profiles name lines of this bundle.
    if (PROFILE_DIR)
      copyFileSync(
        join(dir, "enclave-image", "enclave-main.js"),
        join(PROFILE_DIR, "enclave-main.js"),
      );
    rmSync(dir, { recursive: true, force: true });
  }
  if (PROFILE_DIR) {
    const profilesOf = (of: number[]) =>
      readdirSync(PROFILE_DIR)
        .filter((f) => f.endsWith(".cpuprofile") && of.some((p) => f.includes(`.${p}.`)))
        .map((f) => join(PROFILE_DIR, f));
    const groups = [
      {
        who: "enclave",
        files: profilesOf(pids),
        classify: bundleClassifier(join(PROFILE_DIR, "enclave-main.js")),
      },
      { who: "host", files: profilesOf(hostPids), classify: sourceClassifier(ROOT) },
    ];
    for (const g of groups) {
      const summary = summarizeProfiles(g.files, g.classify, window.from, window.to);
      log(
        `${g.who} samples in the timed window: ${summary.samples} (1 ms each) from ${g.files.length} profiles`,
      );
      log(`${g.who} self time by module:`);
      for (const r of summary.selfByModule) log(`  ${r.share.toFixed(1).padStart(5)} %  ${r.what}`);
      log(
        `${g.who} self time outside the core, by function (native and library ones by their caller in src/):`,
      );
      for (const r of summary.selfByFunction)
        log(`  ${r.share.toFixed(1).padStart(5)} %  ${r.what}`);
      log(`${g.who} inclusive, the project's own functions:`);
      for (const r of summary.inclusiveOwnFunctions)
        log(`  ${r.share.toFixed(1).padStart(5)} %  ${r.what}`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
