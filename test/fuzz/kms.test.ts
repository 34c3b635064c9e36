/** Fuzz sample: targets in ./targets/kms.ts. */
import { describe } from "vitest";
import { sampleTargets } from "./sample.ts";
import { kmsTargets } from "./targets/kms.ts";

describe("fuzz: kms", () => sampleTargets(kmsTargets));
