/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/key-import.json (key import
 * envelopes, src/shared/wire/key-import.ts) if it does not exist yet; an
 * existing file is never overwritten, for the reason test/vectors/generate.ts
 * gives. test/shared/key-import.test.ts never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-key-import.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-key-import.ts --print   # print it, write nothing
 *
 * Every input is fixed, the sender's ephemeral key included (RFC 9180's
 * `ekm`, for vectors only), so the file is reproducible.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import {
  encodeImportedKey,
  keyImportInfo,
  sealKeyImportEnvelope,
  type KeyImportContext,
} from "../../src/shared/wire/key-import.ts";
import { fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-key-import.ts and never regenerated. Add cases; never edit one.";

/** A test recipient: its secrets are published here on purpose. */
const recipientSecrets = {
  x25519Secret: fixedBytes(32, 0x41),
  ed25519Secret: fixedBytes(32, 0x42),
};
const recipient = new PeerKeys(recipientSecrets);
/** The secp256k1 key 1 and a key just below the group order. */
const keyOne = Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0));
const keyHigh = Uint8Array.from(
  Buffer.from("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "hex"),
);

const cases: [
  string,
  Omit<KeyImportContext, "recipientBindingHash">,
  Uint8Array,
  Uint8Array | undefined,
  Uint8Array,
][] = [
  [
    "3-of-5, no chain code",
    { walletId: "w_vector", requestId: "import-1", threshold: 3, parties: 5 },
    keyOne,
    undefined,
    fixedBytes(32, 0x43),
  ],
  [
    "2-of-3, with a chain code",
    { walletId: "w_vector", requestId: "import-2", threshold: 2, parties: 3 },
    keyHigh,
    fixedBytes(32, 0x44),
    fixedBytes(32, 0x45),
  ],
];

const out: Json = {
  format:
    "key import envelope, version 1 (HPKE base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM)",
  source:
    "src/shared/wire/key-import.ts, src/client/key-import.ts, src/enclave/lifecycle-import.ts",
  note: NOTE,
  recipient: toJson({
    ...recipientSecrets,
    x25519Public: recipient.x25519Public,
    bindingHash: recipient.bindingHash(),
  }),
  envelopes: await Promise.all(
    cases.map(async ([description, context, secretKey, chainCode, ephemeralSecret]) => {
      const info = keyImportInfo({ ...context, recipientBindingHash: recipient.bindingHash() });
      const plaintext = encodeImportedKey(secretKey, chainCode);
      const envelope = await sealKeyImportEnvelope(
        recipient.x25519Public,
        info,
        plaintext,
        ephemeralSecret,
      );
      return {
        description,
        fields: toJson({
          ...context,
          secretKey,
          ...(chainCode ? { chainCode } : {}),
          ephemeralSecret,
        }),
        info: toJson(info),
        plaintext: toJson(plaintext),
        envelope: toJson(envelope),
      };
    }),
  ),
};

const path = join(import.meta.dirname, "key-import.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(out, null, 2));
else if (existsSync(path)) console.log("kept key-import.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote key-import.json");
}
