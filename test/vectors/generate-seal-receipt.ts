/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/seal-receipt.json (signed seal
 * receipts, src/shared/wire/seal-receipt.ts) if it does not exist yet; an
 * existing file is never overwritten, for the reason test/vectors/generate.ts
 * gives. test/shared/seal-receipt.test.ts never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-seal-receipt.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-seal-receipt.ts --print   # print it, write nothing
 *
 * Every input is fixed and Ed25519 is deterministic, so the file is reproducible.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeSealReceipt,
  encodeSignedSealReceipt,
  type SealReceipt,
} from "../../src/shared/wire/seal-receipt.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-seal-receipt.ts and never regenerated. Add cases; never edit one.";

/** A test channel key: its secret is published here on purpose. */
const channelSecret = fixedBytes(32, 0x41);

const cases: [string, SealReceipt][] = [
  [
    "dkg, party 1, generation 0",
    {
      sessionId: FIXED.sessionId,
      ceremony: "dkg",
      walletId: "w_vector",
      partyIndex: 1,
      generation: 0,
      publicPackageHash: fixedBytes(32, 0xb0),
    },
  ],
  [
    "refresh, party 16, generation 4294967295",
    {
      sessionId: fixedBytes(32, 0x02),
      ceremony: "refresh",
      walletId: "wallet.2-of-2:x",
      partyIndex: 16,
      generation: 2 ** 32 - 1,
      publicPackageHash: fixedBytes(32, 0xb1),
    },
  ],
];

const file: Json = {
  format: "signed seal receipt, version 1",
  source: "src/shared/wire/seal-receipt.ts, src/enclave/seal-receipts.ts",
  note: NOTE,
  channelKey: toJson({
    ed25519Secret: channelSecret,
    ed25519Public: ed25519.getPublicKey(channelSecret),
  }),
  receipts: cases.map(([description, r]) => {
    const encoding = encodeSealReceipt(r);
    const signature = ed25519.sign(encoding, channelSecret);
    return {
      description,
      fields: toJson(r),
      hex: toHex(encoding),
      signed: toHex(encodeSignedSealReceipt(encoding, signature)),
    };
  }),
};

const path = join(import.meta.dirname, "seal-receipt.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept seal-receipt.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote seal-receipt.json");
}
