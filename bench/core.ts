/**
 * npm run bench:core — per-party compute time of DKG, signing and refresh
 * (3-of-5), per phase and per ceremony, in three builds of the same crate
 * (crates/dkls23-wasm) on the same shares and digests:
 *   wasm           the enclave's build, under Bun;
 *   native fork    bench-native on x86-64, on the repository's DKLs23 fork,
 *                  one thread (`--threads 1`, as in the single-threaded wasm);
 *   native fork, parallel  the same binary with the fork's per-counterparty
 *                  DKG/refresh set-up on one thread per CPU (`--threads 0`;
 *                  DKG and refresh rows only, signing does not use it);
 *   native upstream  bench-native built with `--features upstream`, on
 *                  upstream dkls23-secp256k1 =0.6.2 (the baseline the fork is
 *                  measured against).
 * Writes bench/results/core.json (machine, commit, command, every median),
 * prints a table and updates BENCHMARKS.md between its core markers.
 *
 * Options: --sign-runs N (default 20), --dkg-runs N and --refresh-runs N
 * (default 4: each run yields 5 per-party samples, so 20 samples);
 * --wasm-only: wasm medians only, printed, nothing written (for comparing
 * wasm build variants quickly); --wasm FILE: that dkls23_bg.wasm instead of
 * the enclave's build (the same wasm-bindgen glue must fit it, e.g. a build
 * of an earlier commit, for before/after runs under the same load).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { createHash } from "node:crypto";
import { Dkg, Refresh, Signing, KeyShare, loadDkls } from "../src/enclave/dkls23/binding.ts";
import { encodeList, inboxFor } from "../src/shared/wire/protocol-message.ts";
import { asParty, type PhasedParty } from "../src/dev/in-process.ts";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log("usage: bun run bench/core.ts [--sign-runs N] [--dkg-runs N] [--refresh-runs N]");
  process.exit(0);
}
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
};
const SIGN_RUNS = opt("--sign-runs", 20);
const DKG_RUNS = opt("--dkg-runs", 4);
const REFRESH_RUNS = opt("--refresh-runs", 4);
const ROOT = new URL("..", import.meta.url).pathname;

type Samples = Record<string, number[]>;
const sha = (s: string) => new Uint8Array(createHash("sha256").update(s).digest());
const push = (o: Samples, k: string, v: number) => (o[k] ??= []).push(v);

/** Runs all parties, timing each party's compute per phase (routing excluded). */
function timed<F>(parties: PhasedParty<F>[]): { finals: F[]; perPhase: number[][] } {
  const perPhase = parties.map(() => [0, 0, 0, 0]);
  const clock = <T>(k: number, ph: number, f: () => T): T => {
    const t = performance.now();
    const r = f();
    perPhase[k]![ph] = performance.now() - t;
    return r;
  };
  let out = parties.flatMap((p, k) => clock(k, 0, () => p.phase1()));
  // Phases 2-4 each consume what the previous phase sent.
  out = parties.flatMap((p, k) => {
    const ib = inboxFor(p.index, out);
    return clock(k, 1, () => p.phase2(ib));
  });
  out = parties.flatMap((p, k) => {
    const ib = inboxFor(p.index, out);
    return clock(k, 2, () => p.phase3(ib));
  });
  const finals = parties.map((p, k) => {
    const ib = inboxFor(p.index, out);
    return clock(k, 3, () => p.phase4(ib));
  });
  return { finals, perPhase };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-party samples: `${name}_phase${n}` for each phase and `total` for their sum. */
function record(o: Samples, name: string, total: string, perPhase: number[][]) {
  for (const p of perPhase) {
    p.forEach((ms, ph) => push(o, `${name}_phase${ph + 1}`, ms));
    push(
      o,
      total,
      p.reduce((a, b) => a + b, 0),
    );
  }
}

function benchWasm(): { wasm: Samples; shares: KeyShare[] } {
  const wasm: Samples = {};
  let shares: KeyShare[] = [];
  for (let run = 0; run < DKG_RUNS; run++) {
    const sessionId = sha(`dkg${run}`);
    const r = timed(
      [1, 2, 3, 4, 5].map((i) =>
        asParty(i, new Dkg({ threshold: 3, parties: 5, index: i, sessionId })),
      ),
    );
    record(wasm, "dkg", "dkg", r.perPhase);
    shares = r.finals;
    process.stderr.write(`  wasm dkg run ${run + 1}/${DKG_RUNS}\n`);
  }
  const signers = [1, 2, 3];
  // One untimed warm-up so JIT tiers settle, as the native side has none to do.
  timed(
    signers.map((i) =>
      asParty(
        i,
        new Signing({
          share: shares[i - 1]!,
          sessionId: sha("warm"),
          parties: signers,
          digest: sha("warm"),
        }),
      ),
    ),
  );
  for (let run = 0; run < SIGN_RUNS; run++) {
    const sessionId = sha(`sign${run}`);
    const digest = sha(`bench${run}`);
    const r = timed(
      signers.map((i) =>
        asParty(i, new Signing({ share: shares[i - 1]!, sessionId, parties: signers, digest })),
      ),
    );
    record(wasm, "sign", "sign_total", r.perPhase);
  }
  for (let run = 0; run < REFRESH_RUNS; run++) {
    const sessionId = sha(`refresh${run}`);
    const r = timed(shares.map((share) => asParty(share.index, new Refresh({ share, sessionId }))));
    record(wasm, "refresh", "refresh", r.perPhase);
    for (const s of r.finals) s.free();
    process.stderr.write(`  wasm refresh run ${run + 1}/${REFRESH_RUNS}\n`);
  }
  return { wasm, shares };
}

/**
 * bench-native on the fork, or with `upstream` on upstream dkls23-secp256k1, in its own target dir.
 * `threads` (fork only): 1 = sequential, 0 = one per CPU; `signRuns` overrides SIGN_RUNS.
 */
function benchNative(
  shares: KeyShare[],
  upstream: boolean,
  threads = 1,
  signRuns = SIGN_RUNS,
): Samples {
  const crate = `${ROOT}crates/dkls23-wasm`;
  const targetDir = `${crate}/target/${upstream ? "debian-native-upstream" : "debian-native"}`;
  const what = upstream ? "upstream dkls23-secp256k1" : "the fork";
  process.stderr.write(
    `  building bench-native on ${what} (release, same Debian rustc as the wasm build)\n`,
  );
  const features = upstream ? ["--features", "upstream"] : [];
  const build = spawnSync(
    "/usr/bin/cargo",
    ["build", "--release", "--locked", "--offline", "--bin", "bench-native", ...features],
    {
      cwd: crate,
      env: {
        ...process.env,
        RUSTC: "/usr/bin/rustc",
        CARGO_TARGET_DIR: targetDir,
        RUSTUP_TOOLCHAIN: "",
      },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  if (build.status !== 0) throw new Error("bench-native build failed");
  process.stderr.write(`  native runs on ${what}${upstream ? "" : `, --threads ${threads}`}\n`);
  const input = encodeList(shares.map((s) => s.toBytes()));
  const run = spawnSync(
    `${targetDir}/release/bench-native`,
    [
      "--sign-runs",
      String(signRuns),
      "--dkg-runs",
      String(DKG_RUNS),
      "--refresh-runs",
      String(REFRESH_RUNS),
      ...(upstream ? [] : ["--threads", String(threads)]),
    ],
    {
      input,
      maxBuffer: 64 << 20,
    },
  );
  input.fill(0);
  if (run.status !== 0) throw new Error(`bench-native failed: ${run.stderr}`);
  return JSON.parse(run.stdout.toString()) as Samples;
}

const git = (...a: string[]) => execFileSync("git", a, { cwd: ROOT }).toString().trim();

function main() {
  const wasmFile = args.indexOf("--wasm");
  loadDkls(wasmFile >= 0 ? readFileSync(args[wasmFile + 1]!) : undefined);
  process.stderr.write(
    `bench:core — 3-of-5, ${SIGN_RUNS} signing runs, ${DKG_RUNS} DKG runs, ${REFRESH_RUNS} refresh runs\n`,
  );
  const { wasm, shares } = benchWasm();
  if (args.includes("--wasm-only")) {
    // Quick comparison of wasm build variants: medians only, nothing written.
    console.log(
      JSON.stringify(
        Object.fromEntries(Object.entries(wasm).map(([k, v]) => [k, +median(v).toFixed(3)])),
      ),
    );
    return;
  }
  const fork = benchNative(shares, false, 1);
  const forkParallel = benchNative(shares, false, 0, 0);
  const upstream = benchNative(shares, true);
  const phases = (c: string) => [1, 2, 3, 4].map((p) => `${c}_phase${p}`);
  const ops = [
    "dkg",
    ...phases("dkg"),
    "sign_total",
    ...phases("sign"),
    "refresh",
    ...phases("refresh"),
    // Natively also each party's CPU time (all its threads): bench-native's `*_cpu`.
    "dkg_cpu",
    "refresh_cpu",
  ];
  const med = (s: Samples, op: string) => (s[op]?.length ? +median(s[op]!).toFixed(3) : null);
  const rows = ops.map((op) => {
    const [w, f, p, u] = [med(wasm, op), med(fork, op), med(forkParallel, op), med(upstream, op)];
    const ratio = (a: number | null, b: number | null) =>
      a !== null && b !== null && b > 0 ? +(a / b).toFixed(2) : null;
    return {
      op,
      samples: (wasm[op] ?? fork[op])!.length,
      wasm_ms: w,
      native_fork_ms: f,
      native_fork_parallel_ms: p,
      native_upstream_ms: u,
      wasm_over_native: ratio(w, f),
      upstream_over_fork: ratio(u, f),
    };
  });
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`;
  const dirty = git("status", "--porcelain", "--", "crates", "bench", "build").length > 0;
  const commit = `${git("rev-parse", "HEAD")}${dirty ? " (with uncommitted changes under crates/, bench/ or build/)" : ""}`;
  const command = `npm run bench:core${args.length ? ` -- ${args.join(" ")}` : ""}`;
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  const result = {
    date: new Date().toISOString(),
    machine,
    clock:
      "wall time of each party's compute (performance.now; std::time::Instant natively); *_cpu rows: process CPU time natively",
    cpus: cpus().length,
    load_average_at_end: load,
    commit,
    command,
    runs: { sign: SIGN_RUNS, dkg: DKG_RUNS, refresh: REFRESH_RUNS },
    rows,
  };
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  writeFileSync(`${ROOT}bench/results/core.json`, JSON.stringify(result, null, 2) + "\n");

  const table = [
    `| operation (per party, 3-of-5) | samples | wasm ms | native fork ms | native fork, ${cpus().length} threads ms | native upstream ms | wasm / native fork | upstream / fork |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.op} | ${r.samples} | ${r.wasm_ms ?? "-"} | ${r.native_fork_ms} | ${r.native_fork_parallel_ms ?? "-"} | ${r.native_upstream_ms} | ${r.wasm_over_native ?? "-"} | ${r.upstream_over_fork ?? "-"} |`,
    ),
  ].join("\n");
  console.log(table);
  const section = `<!-- core:begin -->\nMeasured ${result.date} on ${machine}, commit ${commit}.\nCommand: \`${command}\` (${SIGN_RUNS} signing runs x 3 parties; ${DKG_RUNS} DKG and ${REFRESH_RUNS} refresh runs x 5 parties; medians per party of wall time, \`*_cpu\` rows CPU time; native fork on one thread, as the wasm, and on one per CPU; load average ${load} at the end, the machine being shared).\n\n${table}\n<!-- core:end -->`;
  const path = `${ROOT}BENCHMARKS.md`;
  const doc = existsSync(path)
    ? readFileSync(path, "utf8")
    : "# Benchmarks\n\n## Core (DKLs23 in wasm vs native)\n\n<!-- core:begin -->\n<!-- core:end -->\n";
  writeFileSync(path, doc.replace(/<!-- core:begin -->[\s\S]*<!-- core:end -->/, section));
  process.stderr.write("wrote bench/results/core.json and BENCHMARKS.md\n");
}

main();
