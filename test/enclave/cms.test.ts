/**
 * CiphertextForRecipient: the enclave's parser against AWS's real samples, against the dev KMS
 * builder (build -> parse -> decrypt), and against hostile input.
 */
import { existsSync, readFileSync } from "node:fs";
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { join, resolve } from "node:path";
import * as asn1js from "asn1js";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CMS_OID,
  CmsError,
  MAX_CMS_BYTES,
  decryptCiphertextForRecipient,
  parseCiphertextForRecipient,
  subjectKeyIdentifierOf,
} from "../../src/enclave/cms.ts";
import {
  buildCiphertextForRecipient,
  encodeCiphertextForRecipient,
} from "../../src/devkms/cms-builder.ts";

const FIXTURES = resolve(import.meta.dirname, "../../../shared/fixtures/nitro");
const haveFixtures = existsSync(join(FIXTURES, "kms-ciphertext-for-recipient.expected.json"));
if (!haveFixtures)
  console.warn(`cms.test: SKIPPING real-sample tests: fixture folder ${FIXTURES} is absent`);

const SAMPLES = [
  "kms-ciphertext-for-recipient-1.ber",
  "kms-ciphertext-for-recipient-2.ber",
] as const;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const sample = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

interface Recipient {
  privateKey: KeyObject;
  spki: Uint8Array;
}

function newRecipient(): Recipient {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })) };
}

/** Every failure must be a CmsError (clear message), never a TypeError from deep inside. */
function expectCmsError(fn: () => unknown): CmsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CmsError);
    return e as CmsError;
  }
  throw new Error("expected a CmsError, but the input was accepted");
}

describe.skipIf(!haveFixtures)("real AWS KMS samples", () => {
  const expected = haveFixtures
    ? (JSON.parse(
        readFileSync(join(FIXTURES, "kms-ciphertext-for-recipient.expected.json"), "utf8"),
      ) as Record<string, { encrypted_key_hex: string; iv_hex: string; ciphertext_hex: string }>)
    : {};

  for (const name of SAMPLES) {
    it(`extracts exactly the expected fields from ${name}`, () => {
      const want = expected[name]!;
      const cms = parseCiphertextForRecipient(sample(name));
      expect(cms.version).toBe(2);
      expect(cms.recipient.version).toBe(2);
      expect(cms.recipient.subjectKeyIdentifier).toHaveLength(32);
      expect(cms.recipient.keyEncryptionAlgorithm).toEqual({
        oid: CMS_OID.rsaesOaep,
        hash: CMS_OID.sha256,
        mgfHash: CMS_OID.sha256,
      });
      expect(hex(cms.recipient.encryptedKey)).toBe(want.encrypted_key_hex);
      expect(cms.contentType).toBe(CMS_OID.data);
      expect(cms.contentEncryptionAlgorithm.oid).toBe(CMS_OID.aes256Cbc);
      expect(hex(cms.contentEncryptionAlgorithm.iv)).toBe(want.iv_hex);
      expect(hex(cms.encryptedContent)).toBe(want.ciphertext_hex);
    });
  }

  it("the builder reproduces AWS's encoding byte for byte (sample 1: constructed, indefinite [0] content)", () => {
    const bytes = sample(SAMPLES[0]);
    const cms = parseCiphertextForRecipient(bytes);
    const rebuilt = encodeCiphertextForRecipient({
      subjectKeyIdentifier: cms.recipient.subjectKeyIdentifier,
      encryptedKey: cms.recipient.encryptedKey,
      iv: cms.contentEncryptionAlgorithm.iv,
      encryptedContent: cms.encryptedContent,
    });
    expect(hex(rebuilt)).toBe(hex(bytes));
  });

  it("sample 2 (primitive [0] content) re-encodes to the same fields", () => {
    const cms = parseCiphertextForRecipient(sample(SAMPLES[1]));
    const again = parseCiphertextForRecipient(
      encodeCiphertextForRecipient({
        subjectKeyIdentifier: cms.recipient.subjectKeyIdentifier,
        encryptedKey: cms.recipient.encryptedKey,
        iv: cms.contentEncryptionAlgorithm.iv,
        encryptedContent: cms.encryptedContent,
      }),
    );
    expect(again).toEqual(cms);
  });

  it("refuses to decrypt a real sample addressed to someone else's key", () => {
    const e = expectCmsError(() =>
      decryptCiphertextForRecipient(sample(SAMPLES[0]), newRecipient().privateKey),
    );
    expect(e.message).toMatch(/different recipient key/);
  });
});

describe("builder -> parser -> decrypt", () => {
  let alice: Recipient;
  let bob: Recipient;
  beforeAll(() => {
    alice = newRecipient();
    bob = newRecipient();
  });

  it.each([1, 15, 16, 17, 32, 1024, 4096])("round-trips %i plaintext bytes", (n) => {
    const plaintext = new Uint8Array(randomBytes(n));
    const ber = buildCiphertextForRecipient(alice.spki, plaintext);
    const cms = parseCiphertextForRecipient(ber);
    expect(cms.recipient.subjectKeyIdentifier).toEqual(subjectKeyIdentifierOf(alice.spki));
    expect(cms.encryptedContent.length).toBe((Math.floor(n / 16) + 1) * 16);
    expect(decryptCiphertextForRecipient(ber, alice.privateKey)).toEqual(plaintext);
  });

  it("uses a fresh content key and IV every time", () => {
    const p = new Uint8Array(32).fill(7);
    const a = parseCiphertextForRecipient(buildCiphertextForRecipient(alice.spki, p));
    const b = parseCiphertextForRecipient(buildCiphertextForRecipient(alice.spki, p));
    expect(hex(a.contentEncryptionAlgorithm.iv)).not.toBe(hex(b.contentEncryptionAlgorithm.iv));
    expect(hex(a.recipient.encryptedKey)).not.toBe(hex(b.recipient.encryptedKey));
  });

  it("only the addressed key can decrypt", () => {
    const ber = buildCiphertextForRecipient(alice.spki, new Uint8Array(32).fill(1));
    expect(
      expectCmsError(() => decryptCiphertextForRecipient(ber, bob.privateKey)).message,
    ).toMatch(/different recipient key/);
  });

  it("refuses a non-RSA or public key as the recipient key", () => {
    const ber = buildCiphertextForRecipient(alice.spki, new Uint8Array(32));
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expectCmsError(() => decryptCiphertextForRecipient(ber, ec));
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expectCmsError(() => decryptCiphertextForRecipient(ber, publicKey));
  });

  it("a wrapped key for the right SKI but not decryptable by it is refused", () => {
    // Bob's SKI on a key wrapped for Alice: the identifier check passes, OAEP must fail.
    const cms = parseCiphertextForRecipient(
      buildCiphertextForRecipient(alice.spki, new Uint8Array(32)),
    );
    const forged = encodeCiphertextForRecipient({
      subjectKeyIdentifier: subjectKeyIdentifierOf(bob.spki),
      encryptedKey: cms.recipient.encryptedKey,
      iv: cms.contentEncryptionAlgorithm.iv,
      encryptedContent: cms.encryptedContent,
    });
    expect(
      expectCmsError(() => decryptCiphertextForRecipient(forged, bob.privateKey)).message,
    ).toMatch(/unwrap/);
  });

  it("every truncation is refused", () => {
    const ber = buildCiphertextForRecipient(alice.spki, new Uint8Array(32).fill(3));
    for (let len = 0; len < ber.length; len++)
      expectCmsError(() => parseCiphertextForRecipient(ber.slice(0, len)));
    expectCmsError(() => parseCiphertextForRecipient(Uint8Array.of(...ber, 0)));
  });

  it("every single-byte flip outside the (unauthenticated, CBC-malleable) IV and content is refused", () => {
    const plaintext = new Uint8Array(32).fill(9);
    const ber = buildCiphertextForRecipient(alice.spki, plaintext);
    const cms = parseCiphertextForRecipient(ber);
    const ivAt = Buffer.from(ber).indexOf(Buffer.from(cms.contentEncryptionAlgorithm.iv));
    const contentAt = Buffer.from(ber).indexOf(Buffer.from(cms.encryptedContent));
    const malleable = (i: number) =>
      (i >= ivAt && i < ivAt + 16) ||
      (i >= contentAt && i < contentAt + cms.encryptedContent.length);
    let refused = 0;
    for (let i = 0; i < ber.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bad = ber.slice();
        bad[i]! ^= mask;
        if (malleable(i)) {
          // CMS EnvelopedData has no MAC: a flip here yields an error or different bytes, never the original.
          try {
            expect(decryptCiphertextForRecipient(bad, alice.privateKey)).not.toEqual(plaintext);
          } catch (e) {
            expect(e).toBeInstanceOf(CmsError);
          }
        } else {
          expectCmsError(() => decryptCiphertextForRecipient(bad, alice.privateKey));
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(2 * (ber.length - 16 - cms.encryptedContent.length) - 1);
  });
});

describe("hostile input", () => {
  it("random bytes are refused quickly", () => {
    const started = Date.now();
    for (let i = 0; i < 2000; i++) {
      const junk = new Uint8Array(randomBytes(4 + (i % 700)));
      if (i % 2 === 0) junk.set([0x30, 0x80, 0x06, 0x09], 0); // reach deeper than the first tag
      expectCmsError(() => parseCiphertextForRecipient(junk));
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("bounds nesting, size and claimed lengths", () => {
    const deep = new Uint8Array(4000);
    for (let i = 0; i < deep.length; i += 2) deep.set([0x30, 0x80], i);
    expect(expectCmsError(() => parseCiphertextForRecipient(deep)).message).toMatch(
      /depth|nesting|malformed/i,
    );
    expect(
      expectCmsError(() => parseCiphertextForRecipient(new Uint8Array(MAX_CMS_BYTES + 1))).message,
    ).toMatch(/too large/);
    expectCmsError(() =>
      parseCiphertextForRecipient(Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00)),
    );
    expectCmsError(() =>
      parseCiphertextForRecipient(
        Uint8Array.of(0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      ),
    );
    expectCmsError(() => parseCiphertextForRecipient(new Uint8Array(0)));
  });

  describe("structurally valid CMS outside KMS's profile is refused", () => {
    // Mutate a freshly built blob through asn1js, so each case differs from a good blob in one place.
    let good: Uint8Array;
    beforeAll(() => {
      good = buildCiphertextForRecipient(newRecipient().spki, new Uint8Array(32));
    });
    type N = { valueBlock: { value: N[] } };
    const kids = (n: N) => n.valueBlock.value;
    const enveloped = (root: N) => kids(kids(kids(root)[1]!)[0]!);
    const ktri = (root: N) => kids(enveloped(root)[1]!)[0]!;
    const oaepParams = (root: N) => kids(kids(ktri(root))[2]!)[1]!;
    const sha1 = () => new asn1js.ObjectIdentifier({ value: "1.3.14.3.2.26" });
    const cases: [string, (root: N) => void, RegExp][] = [
      ["two recipients", (r) => kids(enveloped(r)[1]!).push(ktri(r)), /exactly one RecipientInfo/],
      [
        "EnvelopedData v0",
        (r) => void (enveloped(r)[0] = new asn1js.Integer({ value: 0 }) as never),
        /version must be 2/,
      ],
      [
        "issuerAndSerial recipient (v0)",
        (r) => void (kids(ktri(r))[0] = new asn1js.Integer({ value: 0 }) as never),
        /version must be 2/,
      ],
      [
        "RSA PKCS#1 v1.5",
        (r) =>
          void (kids(kids(ktri(r))[2]!)[0] = new asn1js.ObjectIdentifier({
            value: "1.2.840.113549.1.1.1",
          }) as never),
        /RSAES-OAEP/,
      ],
      [
        "OAEP with SHA-1",
        (r) => void (kids(kids(kids(oaepParams(r))[0]!)[0]!)[0] = sha1() as never),
        /SHA-256/,
      ],
      [
        "MGF1 with SHA-1",
        (r) => void (kids(kids(kids(kids(oaepParams(r))[1]!)[0]!)[1]!)[0] = sha1() as never),
        /SHA-256/,
      ],
      ["OAEP with default (SHA-1) MGF", (r) => void kids(oaepParams(r)).pop(), /RSAES-OAEP-params/],
      [
        "AES-128-CBC",
        (r) =>
          void (kids(kids(enveloped(r)[2]!)[1]!)[0] = new asn1js.ObjectIdentifier({
            value: "2.16.840.1.101.3.4.1.2",
          }) as never),
        /AES-256-CBC/,
      ],
      [
        "signedData",
        (r) =>
          void (kids(r)[0] = new asn1js.ObjectIdentifier({
            value: "1.2.840.113549.1.7.2",
          }) as never),
        /envelopedData/,
      ],
      [
        "unprotectedAttrs present",
        (r) => {
          const attribute = new asn1js.Sequence({
            value: [
              new asn1js.ObjectIdentifier({ value: "1.2.3.4" }),
              new asn1js.Set({ value: [new asn1js.Null()] }),
            ],
          });
          enveloped(r).push(
            new asn1js.Constructed({
              idBlock: { tagClass: 3, tagNumber: 1 },
              value: [attribute],
            }) as never,
          );
        },
        /EnvelopedData/,
      ],
      ["detached content", (r) => void kids(enveloped(r)[2]!).pop(), /EncryptedContentInfo/],
    ];
    it.each(cases)("%s", (_name, mutate, message) => {
      const root = asn1js.fromBER(good).result as unknown as N;
      mutate(root);
      const bytes = new Uint8Array((root as unknown as asn1js.Sequence).toBER(false));
      expect(expectCmsError(() => parseCiphertextForRecipient(bytes)).message).toMatch(message);
    });
  });

  it("accepts the definite-length DER form of the same structure", () => {
    const r = newRecipient();
    const plaintext = new Uint8Array(randomBytes(32));
    const root = asn1js.fromBER(buildCiphertextForRecipient(r.spki, plaintext)).result;
    const toDefinite = (n: asn1js.AsnType): void => {
      n.lenBlock.isIndefiniteForm = false;
      const v = n.valueBlock as unknown as { isIndefiniteForm?: boolean; value?: unknown };
      if (n.idBlock.isConstructed && Array.isArray(v.value)) {
        v.isIndefiniteForm = false;
        (v.value as asn1js.AsnType[]).forEach(toDefinite);
      }
    };
    toDefinite(root);
    const der = new Uint8Array(root.toBER(false));
    expect(der[1]).not.toBe(0x80); // outer SEQUENCE now has a definite length
    expect(decryptCiphertextForRecipient(der, r.privateKey)).toEqual(plaintext);
  });
});
