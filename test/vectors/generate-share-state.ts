/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/share-state.json (signed
 * share-state statements, src/shared/wire/share-state.ts) if it does not
 * exist yet; an existing file is never overwritten, for the reason
 * test/vectors/generate.ts gives. test/shared/share-state.test.ts never runs
 * this.
 *
 *   node_modules/.bin/bun test/vectors/generate-share-state.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-share-state.ts --print   # print it, write nothing
 *
 * Every input is fixed and Ed25519 is deterministic, so the file is reproducible.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeShareState,
  encodeSignedShareState,
  type ShareState,
} from "../../src/shared/wire/share-state.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-share-state.ts and never regenerated. Add cases; never edit one.";

/** A test channel key: its secret is published here on purpose. */
const channelSecret = fixedBytes(32, 0x31);

const cases: [string, ShareState][] = [
  [
    "sign, party 2, generation 0, with a policy",
    {
      sessionId: FIXED.sessionId,
      ceremony: "sign",
      walletId: "w_vector",
      partyIndex: 2,
      generation: 0,
      publicPackageHash: fixedBytes(32, 0xa0),
      policyHash: fixedBytes(32, 0x90),
    },
  ],
  [
    "refresh, party 16, generation 4294967295, no policy",
    {
      sessionId: fixedBytes(32, 0x01),
      ceremony: "refresh",
      walletId: "wallet.2-of-2:x",
      partyIndex: 16,
      generation: 2 ** 32 - 1,
      publicPackageHash: fixedBytes(32, 0xa1),
      policyHash: null,
    },
  ],
];

const file: Json = {
  format: "signed share-state statement, version 1",
  source: "src/shared/wire/share-state.ts, src/enclave/share-state.ts",
  note: NOTE,
  channelKey: toJson({
    ed25519Secret: channelSecret,
    ed25519Public: ed25519.getPublicKey(channelSecret),
  }),
  statements: cases.map(([description, s]) => {
    const encoding = encodeShareState(s);
    const signature = ed25519.sign(encoding, channelSecret);
    return {
      description,
      fields: toJson(s),
      hex: toHex(encoding),
      signed: toHex(encodeSignedShareState(encoding, signature)),
    };
  }),
};

const path = join(import.meta.dirname, "share-state.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept share-state.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote share-state.json");
}
