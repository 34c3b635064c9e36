/**
 * The `npm test` side of the fuzz targets: each target runs its sample case count from the
 * fixed seed (or FUZZ_SEED / FUZZ_RUNS when set). The test files assert on what it found.
 */
import {
  checkTarget,
  DEFAULT_SAMPLE_SEED,
  runsFromEnv,
  seedFromEnv,
  type AnyTarget,
  type FuzzRun,
} from "./harness.ts";

export interface SampleRun extends FuzzRun {
  /** Cases asked for. */
  runs: number;
}

export const sampleSeed = (): number => seedFromEnv() ?? DEFAULT_SAMPLE_SEED;
export const sampleRuns = (t: AnyTarget): number => runsFromEnv() ?? t.runs.sample;
export const sampleName = (t: AnyTarget): string =>
  `${t.name} (${sampleRuns(t)} cases, seed ${sampleSeed()})`;

export async function runSample(t: AnyTarget): Promise<SampleRun> {
  const runs = sampleRuns(t);
  return { runs, ...(await checkTarget(t, runs, sampleSeed())) };
}
