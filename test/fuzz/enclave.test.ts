/**
 * Fuzz sample: what the enclave opens (targets in ./targets/enclave.ts).
 * Each target: no case violates its property (a value or the decoder's own error, within the
 * time bound), every case was run, and the real encodings it starts from get past the decoder.
 */
import { describe, expect, it } from "vitest";
import { runSample, sampleName } from "./sample.ts";
import { enclaveTargets } from "./targets/enclave.ts";

describe("fuzz: enclave decoders and the wasm core's inputs", () => {
  for (const t of enclaveTargets)
    it(sampleName(t), async () => {
      const { runs, stats, failure } = await runSample(t);
      expect(failure).toBeNull();
      expect(stats.cases).toBe(runs);
      expect(stats.accepted + stats.refused).toBe(stats.cases);
      if (t.refusesEverything) expect(stats.accepted).toBe(0);
      else expect(stats.accepted).toBeGreaterThan(0);
    });
});
