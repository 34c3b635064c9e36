/** Fuzz sample: what a host reads from the broker (targets in ./targets/host.ts). */
import { describe } from "vitest";
import { sampleTargets } from "./sample.ts";
import { hostTargets } from "./targets/host.ts";

describe("fuzz: host request and node-RPC parsing", () => sampleTargets(hostTargets));
