/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/sealed-share-v2.json (sealed
 * key share format version 2: the associated data binds the wallet's
 * approval policy hash, src/shared/wire/sealed-share.ts) if it does not
 * exist yet; an existing file is never overwritten, for the reason
 * test/vectors/generate.ts gives. test/shared/sealed-share-v2.test.ts never
 * runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-sealed-share-v2.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-sealed-share-v2.ts --print   # print it, write nothing
 *
 * Every input is fixed (key, nonce, share, policy), so the file is reproducible.
 */
import { createCipheriv } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy, policyHash } from "../../src/shared/wire/approval.ts";
import {
  encodeAssociatedData,
  encodeSealedShare,
  SEAL_TAG_BYTES,
  SEALED_SHARE_VERSION,
  type SealBinding,
  type SealedShareParts,
} from "../../src/shared/wire/sealed-share.ts";
import { FIXED, fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-sealed-share-v2.ts and never regenerated. Add cases; never edit one.";

/** A 1-of-1 Ed25519 policy from a fixed secret key: its encoding is in the case, its hash in the binding. */
const policy = encodePolicy({
  quorum: 1,
  approvers: [approverKeyOf(KeySigner.fromSecretKey("ed25519", fixedBytes(32, 0x50)))],
});

function sealedCase(
  description: string,
  b: SealBinding,
  dataKey: Uint8Array,
  nonce: Uint8Array,
  share: Uint8Array,
): Json {
  const ad = encodeAssociatedData(b);
  const cipher = createCipheriv("aes-256-gcm", dataKey, nonce, { authTagLength: SEAL_TAG_BYTES });
  cipher.setAAD(ad);
  const ciphertext = cipher.update(share);
  cipher.final();
  const parts: SealedShareParts = {
    version: SEALED_SHARE_VERSION,
    nonce,
    ciphertext,
    tag: cipher.getAuthTag(),
  };
  return {
    description,
    policy: toHex(policy),
    binding: toJson(b),
    dataKey: toHex(dataKey),
    share: toHex(share),
    associatedData: toHex(ad),
    fields: toJson(parts),
    hex: toHex(encodeSealedShare(parts)),
  };
}

const file = {
  format:
    "sealed key share, version 2 (with the wallet's approval policy hash), and its associated data",
  source: "src/shared/wire/sealed-share.ts, src/enclave/seal.ts",
  note: NOTE,
  cases: [
    sealedCase(
      "generation 0, 1-of-1 Ed25519 policy (the share bytes stand in for a real share)",
      {
        walletId: "w_vector",
        nodeId: "node-1",
        partyIndex: 1,
        generation: 0,
        publicKey: FIXED.publicKeyOdd,
        policyHash: policyHash(policy),
      },
      fixedBytes(32, 0xc2),
      fixedBytes(12, 0xe2),
      fixedBytes(64, 0x02),
    ),
  ],
};

const path = join(import.meta.dirname, "sealed-share-v2.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept sealed-share-v2.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote sealed-share-v2.json");
}
