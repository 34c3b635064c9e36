/**
 * npm run bench:core — per-party compute time of DKG, each signing phase and
 * refresh (3-of-5), in wasm under Bun and natively (crates/dkls23-wasm
 * bench-native, same crate, same shares, same digests). Writes
 * bench/results/core.json, prints a table and updates BENCHMARKS.md.
 *
 * Options: --sign-runs N (default 20), --dkg-runs N and --refresh-runs N
 * (default 4: each run yields 5 per-party samples, so 20 samples).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
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
  out = parties.flatMap((p, k) => { const ib = inboxFor(p.index, out); return clock(k, 1, () => p.phase2(ib)); });
  out = parties.flatMap((p, k) => { const ib = inboxFor(p.index, out); return clock(k, 2, () => p.phase3(ib)); });
  const finals = parties.map((p, k) => { const ib = inboxFor(p.index, out); return clock(k, 3, () => p.phase4(ib)); });
  return { finals, perPhase };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function benchWasm(): { wasm: Samples; shares: KeyShare[] } {
  const wasm: Samples = {};
  let shares: KeyShare[] = [];
  for (let run = 0; run < DKG_RUNS; run++) {
    const sessionId = sha(`dkg${run}`);
    const r = timed([1, 2, 3, 4, 5].map((i) => asParty(i, new Dkg({ threshold: 3, parties: 5, index: i, sessionId }))));
    for (const p of r.perPhase) push(wasm, "dkg", p.reduce((a, b) => a + b, 0));
    shares = r.finals;
    process.stderr.write(`  wasm dkg run ${run + 1}/${DKG_RUNS}\n`);
  }
  const signers = [1, 2, 3];
  // One untimed warm-up so JIT tiers settle, as the native side has none to do.
  timed(signers.map((i) => asParty(i, new Signing({ share: shares[i - 1]!, sessionId: sha("warm"), parties: signers, digest: sha("warm") }))));
  for (let run = 0; run < SIGN_RUNS; run++) {
    const sessionId = sha(`sign${run}`);
    const digest = sha(`bench${run}`);
    const r = timed(signers.map((i) => asParty(i, new Signing({ share: shares[i - 1]!, sessionId, parties: signers, digest }))));
    for (const p of r.perPhase) p.forEach((ms, ph) => push(wasm, `sign_phase${ph + 1}`, ms));
  }
  for (let run = 0; run < REFRESH_RUNS; run++) {
    const sessionId = sha(`refresh${run}`);
    const r = timed(shares.map((share) => asParty(share.index, new Refresh({ share, sessionId }))));
    for (const p of r.perPhase) push(wasm, "refresh", p.reduce((a, b) => a + b, 0));
    for (const s of r.finals) s.free();
    process.stderr.write(`  wasm refresh run ${run + 1}/${REFRESH_RUNS}\n`);
  }
  return { wasm, shares };
}

function benchNative(shares: KeyShare[]): Samples {
  const crate = `${ROOT}crates/dkls23-wasm`;
  const targetDir = `${crate}/target/debian-native`;
  process.stderr.write("  building bench-native (release, same Debian rustc as the wasm build)\n");
  const build = spawnSync("/usr/bin/cargo", ["build", "--release", "--locked", "--bin", "bench-native"], {
    cwd: crate,
    env: { ...process.env, RUSTC: "/usr/bin/rustc", CARGO_TARGET_DIR: targetDir, RUSTUP_TOOLCHAIN: "" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (build.status !== 0) throw new Error("bench-native build failed");
  const input = encodeList(shares.map((s) => s.toBytes()));
  const run = spawnSync(`${targetDir}/release/bench-native`, ["--sign-runs", String(SIGN_RUNS), "--dkg-runs", String(DKG_RUNS), "--refresh-runs", String(REFRESH_RUNS)], {
    input,
    maxBuffer: 64 << 20,
  });
  input.fill(0);
  if (run.status !== 0) throw new Error(`bench-native failed: ${run.stderr}`);
  return JSON.parse(run.stdout.toString()) as Samples;
}

function main() {
  loadDkls();
  process.stderr.write(`bench:core — 3-of-5, ${SIGN_RUNS} signing runs, ${DKG_RUNS} DKG runs, ${REFRESH_RUNS} refresh runs\n`);
  const { wasm, shares } = benchWasm();
  const native = benchNative(shares);
  const ops = ["dkg", "sign_phase1", "sign_phase2", "sign_phase3", "sign_phase4", "sign_total", "refresh"];
  const total = (s: Samples) => s.sign_phase1!.map((_, i) => [1, 2, 3, 4].reduce((a, p) => a + s[`sign_phase${p}`]![i]!, 0));
  wasm.sign_total = total(wasm);
  native.sign_total = total(native);
  const rows = ops.map((op) => {
    const w = median(wasm[op]!);
    const n = median(native[op]!);
    return { op, samples: wasm[op]!.length, wasm_ms: +w.toFixed(3), native_ms: +n.toFixed(3), ratio: +(w / n).toFixed(2) };
  });
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`;
  const result = { date: new Date().toISOString(), machine, command: "npm run bench:core", runs: { sign: SIGN_RUNS, dkg: DKG_RUNS, refresh: REFRESH_RUNS }, rows };
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  writeFileSync(`${ROOT}bench/results/core.json`, JSON.stringify(result, null, 2) + "\n");

  const table = [
    "| operation (per party, 3-of-5) | samples | wasm median ms | native median ms | wasm/native |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.op} | ${r.samples} | ${r.wasm_ms} | ${r.native_ms} | ${r.ratio} |`),
  ].join("\n");
  console.log(table);
  const section = `<!-- core:begin -->\nMeasured ${result.date} on ${machine}.\nCommand: \`npm run bench:core\` (${SIGN_RUNS} signing runs x 3 parties; ${DKG_RUNS} DKG and ${REFRESH_RUNS} refresh runs x 5 parties).\n\n${table}\n<!-- core:end -->`;
  const path = `${ROOT}BENCHMARKS.md`;
  const doc = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n\n## Core (DKLs23 in wasm vs native)\n\n<!-- core:begin -->\n<!-- core:end -->\n";
  writeFileSync(path, doc.replace(/<!-- core:begin -->[\s\S]*<!-- core:end -->/, section));
  process.stderr.write("wrote bench/results/core.json and BENCHMARKS.md\n");
}

main();
