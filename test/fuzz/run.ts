/**
 * `npm run fuzz`: every fuzz target at its full case count (at least 100,000 per decoder; the
 * wasm core's phase inputs and share decoder, slower, a few thousand), from FUZZ_SEED or a fresh
 * seed, printed first so any run can be repeated. Prints per target: cases, accepted, refused,
 * the commonest refusal reasons, the slowest case and the time taken. Exits 1 on the first
 * violated property, with fast-check's seed and path for the failing case.
 *
 *   FUZZ_SEED=123 npm run fuzz          repeat a run
 *   FUZZ_RUNS=5000 npm run fuzz         fewer cases per target
 *   npm run fuzz -- frame cms           only targets whose name contains one of the words
 */
import { randomInt } from "node:crypto";
import { runsFromEnv, runTarget, seedFromEnv, type AnyTarget } from "./harness.ts";
import { attestationTargets } from "./targets/attestation.ts";
import { enclaveTargets } from "./targets/enclave.ts";
import { hostTargets } from "./targets/host.ts";
import { kmsTargets } from "./targets/kms.ts";
import { wireTargets } from "./targets/wire.ts";

const all: AnyTarget[] = [
  ...wireTargets,
  ...hostTargets,
  ...enclaveTargets,
  ...attestationTargets,
  ...kmsTargets,
];
const filters = process.argv.slice(2).map((w) => w.toLowerCase());
const chosen = filters.length
  ? all.filter((t) => filters.some((w) => t.name.toLowerCase().includes(w)))
  : all;
const seed = seedFromEnv() ?? randomInt(2 ** 31);

console.log(`fuzz: ${chosen.length} targets, seed ${seed} (repeat with FUZZ_SEED=${seed})`);
const started = performance.now();
let total = 0;
for (const t of chosen) {
  const runs = runsFromEnv() ?? t.runs.full;
  const t0 = performance.now();
  try {
    const s = await runTarget(t, runs, seed);
    total += s.cases;
    const top = [...s.reasons]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([r, n]) => `${r} ${n}`)
      .join(", ");
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `${t.name}\n  ${s.cases} cases: ${s.accepted} accepted, ${s.refused} refused (${top || "none"}); slowest ${s.slowestMs.toFixed(1)} ms; ${secs} s`,
    );
  } catch (e) {
    console.error(`FAILED ${t.name} (seed ${seed}):\n${(e as Error).message}`);
    process.exit(1);
  }
}
const secs = ((performance.now() - started) / 1000).toFixed(0);
console.log(
  `fuzz: ${total} cases over ${chosen.length} targets in ${secs} s, no violation (seed ${seed})`,
);
