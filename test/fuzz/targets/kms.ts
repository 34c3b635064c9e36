/**
 * Fuzz targets for the KMS stand-in's request decoding: every operation handler on JSON request
 * bodies (mutated real requests, hostile values), its key-policy parser and its ciphertext-blob
 * reader. The server answers anything but a KmsError with a 500, so here anything but a KmsError
 * is a violation.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import fc from "fast-check";
import { AttestationRejected, type AttestationVerifier } from "../../../src/devkms/attestation.ts";
import { blobKeyId, openBlob, sealBlob } from "../../../src/devkms/ciphertext-blob.ts";
import { KmsError } from "../../../src/devkms/errors.ts";
import { operations, type HandlerContext } from "../../../src/devkms/handlers/index.ts";
import type { KeyRecord, KeyStore } from "../../../src/devkms/keystore.ts";
import { defaultKeyPolicy, parsePolicy } from "../../../src/devkms/policy.ts";
import { encodeBase64 } from "../../../src/shared/wire/kms-json.ts";
import {
  bytesFrom,
  hostileJson,
  hostileString,
  must,
  outcome,
  target,
  type AnyTarget,
} from "../harness.ts";

const FULL = 100_000;
const SAMPLE = 1_500;
const ACCOUNT = "111122223333";

/** The key store's interface, in memory: fuzzed CreateKey calls must not write 100,000 files. */
class MemoryKeyStore {
  readonly keys = new Map<string, KeyRecord>();
  get(keyId: string) {
    return this.keys.get(keyId);
  }
  create(fields: { description: string; policy: string }): KeyRecord {
    const record = {
      keyId: randomUUID(),
      createdAt: 1,
      enabled: true,
      material: new Uint8Array(randomBytes(32)),
      ...fields,
    };
    // Only the seeded keys are kept, so memory stays flat over a long run.
    return record;
  }
  setPolicy(keyId: string, policy: string): void {
    const k = this.keys.get(keyId);
    if (k) this.keys.set(keyId, { ...k, policy });
  }
}

const store = new MemoryKeyStore();
export const fuzzKeyId = randomUUID();
const keyId = fuzzKeyId;
const material = new Uint8Array(randomBytes(32));
const policy = defaultKeyPolicy(ACCOUNT);
store.keys.set(keyId, {
  keyId,
  createdAt: 1,
  description: "fuzz",
  enabled: true,
  policy,
  material,
});
const GOOD_DOCUMENT = new Uint8Array(64).fill(9);

const recipientSpki = new Uint8Array(
  generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
    type: "spki",
    format: "der",
  }),
);
/** Accepts one fixed document, as from an attested enclave with an RSA key; refuses everything else. */
const verifyAttestation: AttestationVerifier = (doc) => {
  if (doc.length !== GOOD_DOCUMENT.length || !doc.every((b, i) => b === GOOD_DOCUMENT[i]))
    throw new AttestationRejected("malformed", "not the document this stand-in trusts");
  return {
    moduleId: "i-fuzz",
    timestamp: 1,
    pcrs: new Map([[0, new Uint8Array(48).fill(1)]]),
    publicKey: recipientSpki,
  };
};

/** A handler context over the in-memory store, with one enabled key (`fuzzKeyId`). */
export const kmsContext: HandlerContext = {
  store: store as unknown as KeyStore,
  verifyAttestation,
  region: "eu-west-1",
  accountId: ACCOUNT,
  caller: { accessKeyId: "AKIDFUZZ" } as HandlerContext["caller"],
};

const blob = sealBlob(keyId, material, new Uint8Array(32).fill(4), new Map([["purpose", "tss"]]));
const recipientField = {
  AttestationDocument: encodeBase64(GOOD_DOCUMENT),
  KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
};
const requestSeeds: [string, Record<string, unknown>][] = [
  ["CreateKey", { Description: "d", KeyUsage: "ENCRYPT_DECRYPT" }],
  ["CreateKey", { Policy: policy, BypassPolicyLockoutSafetyCheck: false }],
  ["DescribeKey", { KeyId: keyId }],
  ["PutKeyPolicy", { KeyId: keyId, PolicyName: "default", Policy: policy }],
  ["GetKeyPolicy", { KeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${keyId}` }],
  [
    "Encrypt",
    { KeyId: keyId, Plaintext: encodeBase64(new Uint8Array(20)), EncryptionContext: { a: "b" } },
  ],
  ["Decrypt", { CiphertextBlob: encodeBase64(blob), EncryptionContext: { purpose: "tss" } }],
  [
    "Decrypt",
    {
      CiphertextBlob: encodeBase64(blob),
      EncryptionContext: { purpose: "tss" },
      Recipient: recipientField,
    },
  ],
  ["GenerateDataKey", { KeyId: keyId, KeySpec: "AES_256", Recipient: recipientField }],
  ["GenerateDataKey", { KeyId: keyId, NumberOfBytes: 32 }],
  ["GenerateRandom", { NumberOfBytes: 16, Recipient: recipientField }],
];
const opNames = [...operations.keys()];

/** A real request, then some of its fields replaced, removed or added with hostile values. */
const requestArb = fc
  .tuple(
    fc.nat({ max: requestSeeds.length - 1 }),
    fc.oneof(fc.constant(null), fc.constantFrom(...opNames)),
    fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(
            "KeyId",
            "Plaintext",
            "CiphertextBlob",
            "EncryptionContext",
            "Recipient",
            "Policy",
            "NumberOfBytes",
            "KeySpec",
            "DryRun",
            "PolicyName",
          ),
          hostileString,
        ),
        fc.oneof(hostileJson, fc.base64String({ maxLength: 60 }), fc.constant(undefined)),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([i, otherOp, edits]) => {
    const [op, body] = requestSeeds[i]!;
    const input = edits.reduce<Record<string, unknown>>(
      (o, [k, v]) => Object.assign({}, o, { [k]: v }),
      body,
    );
    // Through JSON, as the server sees bodies (undefined fields vanish).
    return {
      op: otherOp ?? op,
      input: JSON.parse(JSON.stringify(input)) as Record<string, unknown>,
    };
  });

const handlers = target({
  name: "devkms: every operation handler on JSON request bodies",
  arbitrary: requestArb,
  check: ({ op, input }) => outcome(() => operations.get(op)!(kmsContext, input), [KmsError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

const policySeeds = [
  policy,
  JSON.stringify({
    Statement: [
      { Effect: "Allow", Action: "kms:*", Resource: "*" },
      {
        Effect: "Deny",
        Action: ["kms:Decrypt", "kms:GenerateDataKey"],
        Condition: {
          StringNotEqualsIgnoreCase: { "kms:RecipientAttestation:ImageSha384": "ab".repeat(48) },
          StringLike: { "kms:EncryptionContext:wallet": "w-*?" },
          Null: { "kms:RecipientAttestation:PCR0": "true" },
        },
      },
    ],
  }),
].map((s) => new TextEncoder().encode(s));

const policies = target({
  name: "devkms: parsePolicy (key policies from PutKeyPolicy and CreateKey)",
  arbitrary: bytesFrom(policySeeds, { maxRandom: 200 }).map((b) => new TextDecoder().decode(b)),
  check: (text) => outcome(() => parsePolicy(text), [KmsError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

const blobs = target({
  name: "devkms: ciphertext blobs (blobKeyId, openBlob)",
  arbitrary: bytesFrom([blob], { maxRandom: 200 }),
  check: (b) => {
    const r = outcome(() => {
      const id = blobKeyId(b);
      must(id.length >= 1 && id.length <= 64, "key id beyond its bound");
      return openBlob(b, material, new Map([["purpose", "tss"]]));
    }, [KmsError]);
    if (r.accepted)
      must(
        r.value.every((x) => x === 4),
        "a modified blob opened",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

export const kmsTargets: AnyTarget[] = [handlers, policies, blobs];
