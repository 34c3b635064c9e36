/** Fuzz sample: what the enclave opens (targets in ./targets/enclave.ts). */
import { describe } from "vitest";
import { sampleTargets } from "./sample.ts";
import { enclaveTargets } from "./targets/enclave.ts";

describe("fuzz: enclave decoders and the wasm core's inputs", () => sampleTargets(enclaveTargets));
