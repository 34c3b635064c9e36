/**
 * npm run bench:cluster — the local cluster (5 nodes, 3-of-5, one Mosquitto):
 * end-to-end sign latency p50/p95/p99 at concurrency 1, sign throughput at
 * concurrency 16 and 64 (each over --window seconds, default 30), DKG and
 * refresh latency, and CPU seconds per signature across every cluster
 * process (hosts, enclaves, broker, KMS stand-in) and this client, in total
 * and by process kind; where a sequential signature's time goes, stage by
 * stage, from the coordinator's progress messages. Writes
 * bench/results/cluster.json, prints a table, updates BENCHMARKS.md.
 * --legacy-node-layer runs the node layer as before issue 12 item 4 (JSON
 * node RPC, separate prepare and attestation rounds) for a before/after in
 * one sitting, into bench/results/cluster-legacy.json only. For a profile of
 * every process: BUN_OPTIONS="--cpu-prof-md --cpu-prof-dir=DIR".
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir, cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startCluster } from "../src/cluster/local-cluster.ts";
import { TssClient } from "../src/client/index.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log(
    "usage: bun run bench/cluster.ts [--window SECONDS (default 30)] [--latency-runs N (default 100)] [--legacy-node-layer]",
  );
  process.exit(0);
}
const num = (name: string, d: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : d;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
};
const WINDOW_S = num("--window", 30);
/**
 * --legacy-node-layer: the node layer as before issue 12 item 4 (node RPC in base64 JSON, separate
 * prepare and attestation rounds), for a before/after in one sitting. Writes
 * bench/results/cluster-legacy.json and leaves BENCHMARKS.md alone.
 */
const LEGACY = args.includes("--legacy-node-layer");
if (LEGACY) {
  // Inherited by every host process the cluster starts (src/harness/processes.ts).
  process.env.TSS_NODE_RPC_PAYLOAD = "json";
  process.env.TSS_PLANNING_PREPARE = "off";
}
const LAT_RUNS = num("--latency-runs", 100);
const ROOT = new URL("..", import.meta.url).pathname;
const CLK = 100; // USER_HZ on Linux

function pct(v: number[], p: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

type Role = "hosts" | "enclaves" | "broker" | "kms" | "client" | "other";
const ROLES: Role[] = ["hosts", "enclaves", "broker", "kms", "client", "other"];

/** Which part of the cluster a process is, from its command line. */
function roleOf(pid: number): Role {
  if (pid === process.pid) return "client"; // the SDK client of this benchmark
  let cmd = "";
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "other";
  }
  if (cmd.includes("src/host/main.ts")) return "hosts";
  if (cmd.includes("--listen")) return "enclaves";
  if (cmd.includes("mosquitto")) return "broker";
  if (cmd.includes("devkms")) return "kms";
  return "other";
}

/** utime + stime (s) of a pid and all its descendants, in total and by role. */
function cpuByRole(pids: number[]): Record<Role, number> {
  const out = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<Role, number>;
  const seen = new Set<number>();
  const walk = (pid: number) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[roleOf(pid)] += (Number(f[11]) + Number(f[12])) / CLK;
      for (const t of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter(Boolean))
        walk(Number(t));
    } catch {
      // exited
    }
  };
  for (const p of pids) walk(p);
  return out;
}

const sum = (r: Record<Role, number>) => ROLES.reduce((a, k) => a + r[k], 0);

async function throughput(
  client: TssClient,
  walletId: string,
  concurrency: number,
  windowS: number,
): Promise<{ sigs: number; rate: number; errors: number; lat: number[] }> {
  const end = performance.now() + windowS * 1000;
  let sigs = 0;
  let errors = 0;
  const lat: number[] = [];
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await client.sign({ walletId, digest: randomBytes(32) });
        sigs++;
        lat.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sigs, errors, rate: sigs / ((performance.now() - t0) / 1000), lat };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "tss-bench-"));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  // The benchmark is one client user measuring capacity: its per-user admission
  // limits (rate-limits.ts, default 10/s and 8 in flight) are raised above what
  // the load needs, so the figures are the cluster's, not the limiter's.
  const cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 120_000,
    limits: {
      requestsPerSecond: 10_000,
      requestBurst: 10_000,
      maxInFlight: 256,
      maxCeremonies: 256,
    },
  });
  const client = await TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    clientId: "bench",
    timeoutMs: 300_000,
  });
  try {
    log("DKG 3-of-5 (x2)");
    const dkg: number[] = [];
    let walletId = "";
    for (let k = 0; k < 2; k++) {
      const t = performance.now();
      walletId = (await client.createWallet({ threshold: 3, parties: 5 })).walletId;
      dkg.push(performance.now() - t);
    }
    log(`warm-up, then ${LAT_RUNS} sequential signatures`);
    for (let k = 0; k < 10; k++) await client.sign({ walletId, digest: randomBytes(32) });
    const lat: number[] = [];
    // Where a sequential signature's time goes, from the coordinator's progress messages as the
    // client receives them (each crosses the broker once, so the gaps between them are the
    // coordinator's). The coordinator reports "prepare" after its planning round and phase 1
    // after the prepare and attestation rounds (none when the planning round prepared).
    const SEGMENTS = [
      "request to coordinator and planning round",
      "prepare and attestation rounds",
      "phase 1 (start)",
      "phase 2",
      "phase 3",
      "phase 4, signature check, records, answer",
    ];
    const segments: number[][] = SEGMENTS.map(() => []);
    for (let k = 0; k < LAT_RUNS; k++) {
      const t = performance.now();
      const marks: number[] = [];
      await client.sign({
        walletId,
        digest: randomBytes(32),
        onProgress: (p) => {
          if (p.stage === "prepare") marks[0] = performance.now();
          else if (p.stage === "sign" && p.phase >= 1 && p.phase <= 4)
            marks[p.phase] = performance.now();
        },
      });
      const end = performance.now();
      lat.push(end - t);
      const at = [t, ...marks, end];
      if (at.length === 7 && at.every((x) => typeof x === "number"))
        for (let i = 0; i < SEGMENTS.length; i++) segments[i]!.push(at[i + 1]! - at[i]!);
    }
    const breakdown = Object.fromEntries(
      SEGMENTS.map((name, i) => [
        name,
        segments[i]!.length ? Math.round(pct(segments[i]!, 50) * 10) / 10 : null,
      ]),
    );
    // Every cluster process (hosts, enclaves, broker, KMS) descends from this one.
    const pids = [process.pid];
    const rows: Record<string, unknown>[] = [];
    const tp: Record<
      number,
      {
        rate: number;
        sigs: number;
        errors: number;
        cpuPerSig: number;
        /** CPU milliseconds per signature by role (hosts, enclaves, broker, KMS, this client). */
        cpuMsPerSigByRole: Record<Role, number>;
        p50: number;
      }
    > = {};
    for (const c of [16, 64]) {
      log(`throughput at concurrency ${c} for ${WINDOW_S} s`);
      const cpu0 = cpuByRole(pids);
      const r = await throughput(client, walletId, c, WINDOW_S);
      const cpu1 = cpuByRole(pids);
      const n = Math.max(1, r.sigs);
      tp[c] = {
        rate: r.rate,
        sigs: r.sigs,
        errors: r.errors,
        cpuPerSig: (sum(cpu1) - sum(cpu0)) / n,
        cpuMsPerSigByRole: Object.fromEntries(
          ROLES.map((k) => [k, Math.round(((cpu1[k] - cpu0[k]) / n) * 10_000) / 10]),
        ) as Record<Role, number>,
        p50: pct(r.lat, 50),
      };
    }
    log("refresh (x1)");
    const t = performance.now();
    await client.refresh({ walletId });
    const refresh = performance.now() - t;

    const result = {
      date: new Date().toISOString(),
      machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`,
      command: `npm run bench:cluster${process.argv.length > 2 ? ` -- ${args.join(" ")}` : ""}`,
      node_layer: LEGACY
        ? "legacy (JSON node RPC, separate prepare and attestation rounds)"
        : "current",
      sign_latency_ms: { runs: LAT_RUNS, p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99) },
      /** Median ms of each stage of a sequential signature (from the coordinator's progress messages). */
      sign_latency_breakdown_p50_ms: breakdown,
      load_average: loadavg(),
      throughput: tp,
      dkg_ms: dkg,
      refresh_ms: refresh,
    };
    rows.push(result);
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    writeFileSync(
      join(ROOT, `bench/results/${LEGACY ? "cluster-legacy" : "cluster"}.json`),
      JSON.stringify(result, null, 2) + "\n",
    );
    const f = (x: number) => x.toFixed(1);
    const table = [
      "| measure | value |",
      "|---|---:|",
      `| sign latency p50 / p95 / p99, concurrency 1 (${LAT_RUNS} runs) | ${f(result.sign_latency_ms.p50)} / ${f(result.sign_latency_ms.p95)} / ${f(result.sign_latency_ms.p99)} ms |`,
      ...[16, 64].map(
        (c) =>
          `| sign throughput, concurrency ${c}, ${WINDOW_S} s | ${f(tp[c]!.rate)} sig/s (${tp[c]!.sigs} ok, ${tp[c]!.errors} errors, p50 ${f(tp[c]!.p50)} ms) |`,
      ),
      ...[16, 64].map(
        (c) =>
          `| CPU seconds per signature, all processes, concurrency ${c} | ${tp[c]!.cpuPerSig.toFixed(3)} s |`,
      ),
      `| CPU ms per signature by process, concurrency 16 | ${ROLES.filter(
        (k) => tp[16]!.cpuMsPerSigByRole[k] > 0,
      )
        .map((k) => `${k} ${tp[16]!.cpuMsPerSigByRole[k].toFixed(1)}`)
        .join(", ")} |`,
      `| where a sequential signature's time goes (p50 of each stage) | ${Object.entries(breakdown)
        .map(([k, v]) => `${k} ${v === null ? "?" : f(v)}`)
        .join("; ")} ms |`,
      `| DKG 3-of-5 latency | ${dkg.map((d) => (d / 1000).toFixed(1)).join(" s, ")} s |`,
      `| refresh latency | ${(refresh / 1000).toFixed(1)} s |`,
    ].join("\n");
    console.log(table);
    const section = `<!-- cluster:begin -->\nMeasured ${result.date} on ${result.machine}; load average at the end ${result.load_average.map((x) => x.toFixed(1)).join(", ")} (other work shares the machine).\nCommand: \`npm run bench:cluster\` (5 nodes as separate host and enclave processes, one Mosquitto, the KMS stand-in, all on this machine).\n\n${table}\n<!-- cluster:end -->`;
    if (LEGACY) return;
    const path = join(ROOT, "BENCHMARKS.md");
    let doc = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
    if (!doc.includes("<!-- cluster:begin -->"))
      doc += "\n## Cluster (5 nodes over MQTT)\n\n<!-- cluster:begin -->\n<!-- cluster:end -->\n";
    writeFileSync(path, doc.replace(/<!-- cluster:begin -->[\s\S]*<!-- cluster:end -->/, section));
  } finally {
    await client.close().catch(() => {});
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench:cluster failed: ${(e as Error).message}`);
  process.exit(1);
});
