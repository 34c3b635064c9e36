/**
 * The `npm test` side of the fuzz targets: each target becomes one vitest test running its
 * sample case count from the fixed seed (or FUZZ_SEED / FUZZ_RUNS when set).
 */
import { expect, it } from "vitest";
import {
  DEFAULT_SAMPLE_SEED,
  runsFromEnv,
  runTarget,
  seedFromEnv,
  type AnyTarget,
} from "./harness.ts";

export function sampleTargets(targets: readonly AnyTarget[]): void {
  const seed = seedFromEnv() ?? DEFAULT_SAMPLE_SEED;
  for (const t of targets) {
    const runs = runsFromEnv() ?? t.runs.sample;
    it(`${t.name} (${runs} cases, seed ${seed})`, async () => {
      const stats = await runTarget(t, runs, seed);
      expect(stats.cases).toBeGreaterThanOrEqual(runs);
    });
  }
}
