/**
 * The fuzz sample in `npm test`: every target of ./targets/ at its sample size. Each target: no
 * case violates its property (a value or the decoder's own error, within the time bound), every
 * case was run, and the real encodings it starts from get past the decoder (or, for a target
 * that refuses everything by design, nothing does). `npm run fuzz` runs the full counts.
 */
import { describe, expect, it } from "vitest";
import { runSample, sampleName } from "./sample.ts";
import { attestationTargets } from "./targets/attestation.ts";
import { enclaveTargets } from "./targets/enclave.ts";
import { hostTargets } from "./targets/host.ts";
import { kmsTargets } from "./targets/kms.ts";
import { wireTargets } from "./targets/wire.ts";

const groups = {
  "shared wire formats": wireTargets,
  "host request and node-RPC parsing": hostTargets,
  "enclave decoders and the wasm core's inputs": enclaveTargets,
  attestation: attestationTargets,
  kms: kmsTargets,
};

for (const [group, targets] of Object.entries(groups))
  describe(`fuzz: ${group}`, () => {
    for (const t of targets)
      it(sampleName(t), async () => {
        const { runs, stats, failure } = await runSample(t);
        expect(failure).toBeNull();
        expect(stats.cases).toBe(runs);
        expect(stats.accepted + stats.refused).toBe(stats.cases);
        if (t.refusesEverything) expect(stats.accepted).toBe(0);
        else expect(stats.accepted).toBeGreaterThan(0);
      });
  });
