/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/active-proof.json (signed active proofs,
 * src/shared/wire/active-proof.ts) if it does not exist yet; an existing file is never
 * overwritten, for the reason test/vectors/generate.ts gives. test/shared/active-proof.test.ts
 * never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-active-proof.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-active-proof.ts --print   # print it, write nothing
 *
 * Every input is fixed and Ed25519 is deterministic, so the file is reproducible.
 *
 * Rewritten once, before any release: version 1 gained the sharing's parties and public
 * package hash (src/shared/wire/active-proof.ts) while the format was still unreleased, so the
 * file was deleted and written again by this script rather than given a version 2.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeActiveProof,
  encodeSignedActiveProof,
  type ActiveProof,
} from "../../src/shared/wire/active-proof.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written by test/vectors/generate-active-proof.ts; rewritten once before release, when version 1 gained parties and publicPackageHash. Add cases; never edit one.";

/** A test channel key: its secret is published here on purpose. */
const channelSecret = fixedBytes(32, 0x51);

const cases: [string, ActiveProof][] = [
  [
    "party 1, generation 0",
    {
      nonce: fixedBytes(32, 0x60),
      walletId: "w_vector",
      partyIndex: 1,
      generation: 0,
      publicKey: FIXED.publicKey,
      parties: 3,
      publicPackageHash: fixedBytes(32, 0x70),
    },
  ],
  [
    "party 16, generation 4294967295, odd key",
    {
      nonce: fixedBytes(32, 0x61),
      walletId: "wallet.2-of-2:x",
      partyIndex: 16,
      generation: 2 ** 32 - 1,
      publicKey: FIXED.publicKeyOdd,
      parties: 16,
      publicPackageHash: fixedBytes(32, 0x71),
    },
  ],
];

const file: Json = {
  format: "signed active proof, version 1",
  source: "src/shared/wire/active-proof.ts, src/enclave/supersession.ts",
  note: NOTE,
  channelKey: toJson({
    ed25519Secret: channelSecret,
    ed25519Public: ed25519.getPublicKey(channelSecret),
  }),
  proofs: cases.map(([description, p]) => {
    const encoding = encodeActiveProof(p);
    const signature = ed25519.sign(encoding, channelSecret);
    return {
      description,
      fields: toJson(p),
      hex: toHex(encoding),
      signed: toHex(encodeSignedActiveProof(encoding, signature)),
    };
  }),
};

const path = join(import.meta.dirname, "active-proof.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept active-proof.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote active-proof.json");
}
