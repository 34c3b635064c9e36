/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/rpc-payload.json (binary node
 * RPC payloads, src/shared/wire/rpc-payload.ts) if it does not exist yet; an
 * existing file is never overwritten, for the reason test/vectors/generate.ts
 * gives. test/shared/rpc-payload.test.ts never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-rpc-payload.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-rpc-payload.ts --print   # print it, write nothing
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex } from "../../src/shared/hex.ts";
import { encodeRpcPayload } from "../../src/shared/wire/rpc-payload.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  'Frozen: written once by test/vectors/generate-rpc-payload.ts and never regenerated. Add cases; never edit one. Byte strings are written {"hex": ...}.';

const cases: [string, unknown][] = [
  [
    "a phase-2 step call with two messages and a share-state statement",
    {
      op: "step",
      args: {
        sessionId: FIXED.sessionId,
        phase: 2,
        messages: [fixedBytes(5, 0x10), fixedBytes(3, 0x20)],
        shareStates: [fixedBytes(4, 0x30)],
      },
      from: "node-1",
    },
  ],
  [
    "a successful reply with a signature",
    { ok: true, result: { messages: [], generation: 0, signature: fixedBytes(65, 0x40) } },
  ],
  [
    "a refusal naming a party",
    { ok: false, error: { code: "bad_request", message: "step.phase must be 2..4", party: 2 } },
  ],
  [
    "every scalar kind: null, booleans, u32 bounds, f64 beyond u32, negative, fraction, strings",
    [null, true, false, 0, 4294967295, 4294967296, -1, 0.5, "", "é€𝄞"],
  ],
  // JSON.parse, not a literal: a literal's __proto__ sets the prototype instead of a key.
  ["a __proto__ key is data", JSON.parse('{"__proto__":{"polluted":1}}')],
];

const file: Json = {
  format: "binary node RPC payload, version 1",
  source: "src/shared/wire/rpc-payload.ts",
  note: NOTE,
  cases: cases.map(([description, value]) => ({
    description,
    fields: toJson(value),
    hex: toHex(encodeRpcPayload(value)),
  })),
};

const path = join(import.meta.dirname, "rpc-payload.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept rpc-payload.json (frozen)");
else writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
