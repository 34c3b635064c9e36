/**
 * npm run bench:cluster — the local cluster (5 nodes, 3-of-5, one Mosquitto):
 * end-to-end sign latency p50/p95/p99 at concurrency 1, sign throughput at
 * concurrency 16 and 64 (each over --window seconds, default 30), DKG and
 * refresh latency, and CPU seconds per signature across every cluster
 * process (hosts, enclaves, broker, KMS stand-in) and this client, in total
 * and by process kind; where a sequential signature's time goes, stage by
 * stage, from the coordinator's progress messages; then, in a separate pass
 * through counting relays (so counting slows none of those figures), the
 * bytes on the wire per DKG, refresh and signature, by kind and direction,
 * and the core's protocol-message bytes within them. Writes
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
import { execFileSync } from "node:child_process";
import { startCluster, type LocalCluster } from "../src/cluster/local-cluster.ts";
import { TssClient } from "../src/client/index.ts";
import { startFaultRelay, type FaultRelay } from "../src/harness/mqtt-fault-relay.ts";
import { watchPresence } from "../src/harness/presence-watch.ts";
import {
  addPacket,
  copyTally,
  diffTally,
  newTally,
  scaleTally,
  summarizeTally,
  TRAFFIC_KINDS,
  type TrafficTally,
} from "../src/harness/mqtt-traffic-meter.ts";

import { CAPACITY_LIMITS, CLK, machineBusySeconds } from "./proc-cpu.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log(
    "usage: bun run bench/cluster.ts [--window SECONDS (default 30)] [--latency-runs N (default 100)] [--byte-sign-runs N (default 20)] [--legacy-node-layer]",
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
/** Sequential signatures of the bytes pass (after 2 uncounted ones). */
const BYTE_SIGN_RUNS = num("--byte-sign-runs", 20);
const ROOT = new URL("..", import.meta.url).pathname;

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

/** HEAD, and whether the code the cluster runs had uncommitted changes (other work in the tree). */
function commitOfTree(): string {
  const git = (...a: string[]) => execFileSync("git", a, { cwd: ROOT }).toString().trim();
  try {
    const dirty = git("status", "--porcelain", "--", "src", "bench", "crates", "build").length > 0;
    return `${git("rev-parse", "HEAD")}${dirty ? " (with uncommitted changes under src/, bench/, crates/ or build/)" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
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

/** Bytes on the wire of one ceremony: totals, and by kind and direction. */
interface CeremonyBytes extends ReturnType<typeof summarizeTally> {
  ceremonies: number;
  byKind: TrafficTally["byKind"];
  protocol: TrafficTally["protocol"];
  distinct: TrafficTally["distinct"];
}

const perCeremony = (t: TrafficTally, n: number): CeremonyBytes => {
  const s = scaleTally(t, n);
  return {
    ceremonies: n,
    ...summarizeTally(s),
    byKind: s.byKind,
    protocol: s.protocol,
    distinct: s.distinct,
  };
};

/**
 * The bytes pass, after the timed ones so that counting never slows a latency
 * figure: every host and this client reach the broker through a counting
 * relay (mqtt-fault-relay.ts feeding mqtt-traffic-meter.ts; the hosts restart
 * onto them), then one DKG 3-of-5, one refresh of its wallet and
 * BYTE_SIGN_RUNS sequential signatures, each tallied from a snapshot before
 * and after it (presence and keep-alives in that window included, by kind).
 */
async function bytesPass(
  cluster: LocalCluster,
  log: (s: string) => void,
  /** The relays started, for the caller to close after the cluster stops. */
  relays: FaultRelay[],
): Promise<{ dkg: CeremonyBytes; refresh: CeremonyBytes; sign: CeremonyBytes }> {
  const tally = newTally();
  const relay = async () => {
    const r = await startFaultRelay({
      brokerPort: cluster.broker.port,
      recordSeen: false,
      onPacket: (d, p, h) => addPacket(tally, d, p, h),
    });
    relays.push(r);
    return r;
  };
  const presence = await watchPresence(cluster.observer);
  let client: TssClient | null = null;
  try {
    log("bytes pass: hosts restart onto counting relays");
    for (const n of cluster.nodes) {
      const r = await relay();
      const cfg = JSON.parse(readFileSync(n.config, "utf8")) as { mqtt: { url: string } };
      cfg.mqtt.url = r.url;
      writeFileSync(n.config, JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
      await n.restartHost();
    }
    const deadline = Date.now() + 60_000;
    while (!cluster.nodes.every((n) => presence.last(n.nodeId) === "online")) {
      if (Date.now() > deadline) throw new Error("bytes pass: hosts not back online");
      await Bun.sleep(100);
    }
    const user = cluster.clients[1]!;
    client = await TssClient.connect({
      url: (await relay()).url,
      username: user.username,
      password: user.password,
      clientId: user.username,
      timeoutMs: 300_000,
    });
    const measure = async (n: number, run: () => Promise<unknown>) => {
      const before = copyTally(tally);
      for (let k = 0; k < n; k++) await run();
      return perCeremony(diffTally(tally, before), n);
    };
    const c = client;
    log("bytes pass: DKG 3-of-5");
    let walletId = "";
    const dkg = await measure(1, async () => {
      walletId = (await c.createWallet({ threshold: 3, parties: 5 })).walletId;
    });
    log("bytes pass: refresh");
    const refresh = await measure(1, () => c.refresh({ walletId }));
    for (let k = 0; k < 2; k++) await c.sign({ walletId, digest: randomBytes(32) });
    log(`bytes pass: ${BYTE_SIGN_RUNS} sequential signatures`);
    const sign = await measure(BYTE_SIGN_RUNS, () => c.sign({ walletId, digest: randomBytes(32) }));
    return { dkg, refresh, sign };
  } finally {
    await client?.close().catch(() => {});
    await presence.close().catch(() => {});
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "tss-bench-"));
  const loadAtStart = loadavg();
  const relays: FaultRelay[] = [];
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 120_000,
    limits: CAPACITY_LIMITS,
  });
  const client = await TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    clientId: "bench",
    timeoutMs: 300_000,
  });
  try {
    // Over the timed runs, the machine's busy CPU less this benchmark's own processes' is other
    // work's: the share of the cores it took says whether the figures shared the CPU.
    const timed0 = {
      at: performance.now(),
      machine: machineBusySeconds(),
      ours: sum(cpuByRole([process.pid])),
    };
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
    const timedS = (performance.now() - timed0.at) / 1000;
    const otherCpuS = Math.max(
      0,
      machineBusySeconds() - timed0.machine - (sum(cpuByRole([process.pid])) - timed0.ours),
    );
    const otherWorkShare = Math.round((otherCpuS / (timedS * cpus().length)) * 1000) / 1000;
    const bytes = await bytesPass(cluster, log, relays);
    const loadAtEnd = loadavg();
    // Other work took more than a tenth of the cores during the timed runs: the figures shared the CPU.
    const cpuShared = otherWorkShare > 0.1;

    const result = {
      date: new Date().toISOString(),
      machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`,
      commit: commitOfTree(),
      command: `npm run bench:cluster${process.argv.length > 2 ? ` -- ${args.join(" ")}` : ""}`,
      node_layer: LEGACY
        ? "legacy (JSON node RPC, separate prepare and attestation rounds)"
        : "current",
      sign_latency_ms: { runs: LAT_RUNS, p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99) },
      /** Median ms of each stage of a sequential signature (from the coordinator's progress messages). */
      sign_latency_breakdown_p50_ms: breakdown,
      load_average: loadAtEnd,
      load_average_at_start: loadAtStart,
      /** Share of all cores that processes outside this benchmark used during the timed runs. */
      other_work_cpu_share: otherWorkShare,
      cpu_shared: cpuShared,
      throughput: tp,
      dkg_ms: dkg,
      refresh_ms: refresh,
      /**
       * Bytes on the wire per ceremony, counted in a separate pass after the timed ones (every
       * host's and the client's broker connection through a counting relay): whole MQTT packets
       * in both directions (to the broker and delivered from it), by kind, and the protocol
       * messages carried in node RPC (peer envelopes, and the core's own bytes within them).
       */
      bytes_on_wire: {
        method:
          "separate pass after the timed runs: hosts and client through counting TCP relays (src/harness/mqtt-traffic-meter.ts); whole MQTT packets, both directions, TCP/IP headers not counted",
        dkg_3_of_5: bytes.dkg,
        refresh: bytes.refresh,
        sign_concurrency_1: bytes.sign,
      },
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
    const kib = (b: number) => (b / 1024).toFixed(1);
    const kindCell = (c: CeremonyBytes, k: (typeof TRAFFIC_KINDS)[number]) =>
      kib(c.byKind[k].to_broker.wireBytes + c.byKind[k].to_client.wireBytes);
    const bytesTable = [
      `| per ceremony (separate pass; signature: mean of ${BYTE_SIGN_RUNS}) | MQTT packets | KiB on the wire (to broker / from broker) | core's messages, each once: KiB (count) | wire bytes per core byte | protocol-message crossings: envelope / core KiB | core crossings' share of the wire | node RPC calls / replies KiB | client requests / responses KiB | presence KiB | MQTT control KiB |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...(
        [
          ["DKG 3-of-5", bytes.dkg],
          ["refresh", bytes.refresh],
          ["one signature, concurrency 1", bytes.sign],
        ] as const
      ).map(([name, c]) => {
        const up = TRAFFIC_KINDS.reduce((a, k) => a + c.byKind[k].to_broker.wireBytes, 0);
        const down = TRAFFIC_KINDS.reduce((a, k) => a + c.byKind[k].to_client.wireBytes, 0);
        return `| ${name} | ${c.packets.toFixed(0)} | ${kib(c.wireBytes)} (${kib(up)} / ${kib(down)}) | ${kib(c.distinctCoreBytes)} (${c.distinctMessages.toFixed(0)}) | ${c.wirePerCoreByte.toFixed(2)} | ${kib(c.protocolEnvelopeBytes)} / ${kib(c.protocolCoreBytes)} | ${(c.coreShare * 100).toFixed(1)} % | ${kindCell(c, "node RPC call")} / ${kindCell(c, "node RPC reply")} | ${kindCell(c, "client request")} / ${kindCell(c, "client response")} | ${kindCell(c, "presence")} | ${kindCell(c, "MQTT control")} |`;
      }),
    ].join("\n");
    console.log(table);
    console.log(bytesTable);
    const section = `<!-- cluster:begin -->\nMeasured ${result.date} on ${result.machine}, commit ${result.commit}; load average at the start ${loadAtStart.map((x) => x.toFixed(1)).join(", ")}, at the end ${loadAtEnd.map((x) => x.toFixed(1)).join(", ")}; other work outside the benchmark used ${(otherWorkShare * 100).toFixed(0)} % of the cores during the timed runs${cpuShared ? " (the CPU was shared: latencies, rates and CPU figures are worse than on an idle machine; the byte counts do not depend on it)" : ""}.\nCommand: \`npm run bench:cluster\` (5 nodes as separate host and enclave processes, one Mosquitto, the KMS stand-in, all on this machine).\n\n${table}\n\nBytes on the wire per ceremony, counted in a separate pass after the timed runs (so counting slows no latency above): every host's and the client's broker connection goes through a counting relay (\`src/harness/mqtt-traffic-meter.ts\`), which tallies whole MQTT packets in both directions (a message published once and delivered once counts on both links; TCP/IP headers not counted), by kind, and the protocol messages inside node RPC: the peer envelopes as carried and the core's own message bytes within them (an envelope less its AEAD nonce and tag or its broadcast signature), each crossing counted, and each message once by its clear header. A message relayed through the coordinator crosses up to four links (up in a reply, down to the coordinator, up in a call, down to the recipient), so "wire bytes per core byte" is the node layer's and MQTT's whole cost per byte the core sends, and the crossings' share shows how little of that is framing.\n\n${bytesTable}\n<!-- cluster:end -->`;
    if (LEGACY) return;
    const path = join(ROOT, "BENCHMARKS.md");
    let doc = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
    if (!doc.includes("<!-- cluster:begin -->"))
      doc += "\n## Cluster (5 nodes over MQTT)\n\n<!-- cluster:begin -->\n<!-- cluster:end -->\n";
    writeFileSync(path, doc.replace(/<!-- cluster:begin -->[\s\S]*<!-- cluster:end -->/, section));
  } finally {
    await client.close().catch(() => {});
    await cluster.stop();
    for (const r of relays) await r.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench:cluster failed: ${(e as Error).message}`);
  process.exit(1);
});
