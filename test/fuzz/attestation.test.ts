/** Fuzz sample: targets in ./targets/attestation.ts. */
import { describe } from "vitest";
import { sampleTargets } from "./sample.ts";
import { attestationTargets } from "./targets/attestation.ts";

describe("fuzz: attestation", () => sampleTargets(attestationTargets));
