/** Fuzz sample: the formats of src/shared/wire (targets in ./targets/wire.ts). */
import { describe } from "vitest";
import { sampleTargets } from "./sample.ts";
import { wireTargets } from "./targets/wire.ts";

describe("fuzz: shared wire formats", () => sampleTargets(wireTargets));
