/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/wallet-statement.json (signed
 * wallet statements, src/shared/wire/wallet-statement.ts) if it does not
 * exist yet; an existing file is never overwritten, for the reason
 * test/vectors/generate.ts gives. test/shared/wallet-statement.test.ts never
 * runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-wallet-statement.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-wallet-statement.ts --print   # print it, write nothing
 *
 * Every input is fixed and Ed25519 is deterministic, so the file is reproducible.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  type WalletStatement,
} from "../../src/shared/wire/wallet-statement.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-wallet-statement.ts and never regenerated. Add cases; never edit one.";

/** A test channel key: its secret is published here on purpose. */
const channelSecret = fixedBytes(32, 0x21);

const cases: [string, WalletStatement][] = [
  [
    "after DKG, 3 of 5, party 1, with a policy",
    {
      walletId: "w_vector",
      threshold: 3,
      parties: 5,
      partyIndex: 1,
      generation: 0,
      publicKey: FIXED.publicKey,
      chainCode: fixedBytes(32, 0xc0),
      publicPackageHash: fixedBytes(32, 0xa0),
      policyHash: fixedBytes(32, 0x90),
    },
  ],
  [
    "after refresh, 2 of 2, party 2, generation 7, odd key, no policy",
    {
      walletId: "wallet.2-of-2:x",
      threshold: 2,
      parties: 2,
      partyIndex: 2,
      generation: 7,
      publicKey: FIXED.publicKeyOdd,
      chainCode: fixedBytes(32, 0xc1),
      publicPackageHash: fixedBytes(32, 0xa1),
      policyHash: null,
    },
  ],
];

const file: Json = {
  format: "signed wallet statement, version 1",
  source: "src/shared/wire/wallet-statement.ts, src/enclave/wallet-statements.ts",
  note: NOTE,
  channelKey: toJson({
    ed25519Secret: channelSecret,
    ed25519Public: ed25519.getPublicKey(channelSecret),
  }),
  statements: cases.map(([description, s]) => {
    const encoding = encodeWalletStatement(s);
    const signature = ed25519.sign(encoding, channelSecret);
    return {
      description,
      fields: toJson(s),
      hex: toHex(encoding),
      signed: toHex(encodeSignedWalletStatement(encoding, signature)),
    };
  }),
};

const path = join(import.meta.dirname, "wallet-statement.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept wallet-statement.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote wallet-statement.json");
}
