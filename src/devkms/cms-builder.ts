/**
 * Builds `CiphertextForRecipient` the way AWS KMS emits it, so the enclave's parser is exercised
 * against the real layout even without AWS. Mirrors the captured KMS sample byte for byte:
 * indefinite lengths on ContentInfo, the [0] wrapper, EnvelopedData and EncryptedContentInfo;
 * definite lengths inside the RecipientInfo SET and the AlgorithmIdentifiers; the encrypted
 * content as a constructed, indefinite [0] holding a single OCTET STRING segment.
 */
// asn1js: the same ASN.1 library the parser uses, so encoder and decoder agree on BER details (indefinite forms, tagging).
import * as asn1js from "asn1js";
import {
  constants,
  createCipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import { CMS_OID, subjectKeyIdentifierOf } from "../shared/wire/recipient-cms.ts";

/** Decrypt with a Recipient can release a whole Encrypt plaintext (4096 bytes, KMS's limit). */
export const MAX_RECIPIENT_PLAINTEXT = 4096;

export interface CmsFields {
  subjectKeyIdentifier: Uint8Array;
  encryptedKey: Uint8Array;
  iv: Uint8Array;
  encryptedContent: Uint8Array;
}

const indefinite = { lenBlock: { isIndefiniteForm: true } } as const;
const context = (tagNumber: number) => ({ idBlock: { tagClass: 3, tagNumber } });

function algId(oid: string, params?: asn1js.AsnType): asn1js.Sequence {
  const value: asn1js.AsnType[] = [new asn1js.ObjectIdentifier({ value: oid })];
  if (params) value.push(params);
  return new asn1js.Sequence({ value });
}

const sha256AlgId = () => algId(CMS_OID.sha256, new asn1js.Null());

/** Encode already-encrypted fields in KMS's layout (separate from the crypto so tests can compare bytes). */
export function encodeCiphertextForRecipient(f: CmsFields): Uint8Array {
  const oaepParams = new asn1js.Sequence({
    value: [
      new asn1js.Constructed({ ...context(0), value: [sha256AlgId()] }),
      new asn1js.Constructed({ ...context(1), value: [algId(CMS_OID.mgf1, sha256AlgId())] }),
    ],
  });
  const recipientInfo = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 2 }),
      new asn1js.Primitive({ ...context(0), valueHex: f.subjectKeyIdentifier }),
      algId(CMS_OID.rsaesOaep, oaepParams),
      new asn1js.OctetString({ valueHex: f.encryptedKey }),
    ],
  });
  const encryptedContentInfo = new asn1js.Sequence({
    ...indefinite,
    value: [
      new asn1js.ObjectIdentifier({ value: CMS_OID.data }),
      algId(CMS_OID.aes256Cbc, new asn1js.OctetString({ valueHex: f.iv })),
      new asn1js.Constructed({
        ...context(0),
        ...indefinite,
        value: [new asn1js.OctetString({ valueHex: f.encryptedContent })],
      }),
    ],
  });
  const envelopedData = new asn1js.Sequence({
    ...indefinite,
    value: [
      new asn1js.Integer({ value: 2 }),
      new asn1js.Set({ value: [recipientInfo] }),
      encryptedContentInfo,
    ],
  });
  const contentInfo = new asn1js.Sequence({
    ...indefinite,
    value: [
      new asn1js.ObjectIdentifier({ value: CMS_OID.envelopedData }),
      new asn1js.Constructed({ ...context(0), ...indefinite, value: [envelopedData] }),
    ],
  });
  return new Uint8Array(contentInfo.toBER(false));
}

/**
 * Encrypt `plaintext` for the holder of the private key matching `recipientSpki` (DER
 * SubjectPublicKeyInfo of an RSA key): fresh AES-256 CEK and IV, CEK wrapped with RSA-OAEP-SHA256.
 */
export function buildCiphertextForRecipient(
  recipientSpki: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  if (plaintext.length === 0 || plaintext.length > MAX_RECIPIENT_PLAINTEXT) {
    throw new RangeError(
      `recipient plaintext must be 1..${MAX_RECIPIENT_PLAINTEXT} bytes, got ${plaintext.length}`,
    );
  }
  const publicKey = createPublicKey({
    key: Buffer.from(recipientSpki),
    format: "der",
    type: "spki",
  });
  if (publicKey.asymmetricKeyType !== "rsa")
    throw new TypeError("recipient public key must be RSA");
  const cek = randomBytes(32);
  const iv = randomBytes(16);
  try {
    const cipher = createCipheriv("aes-256-cbc", cek, iv);
    const encryptedContent = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const encryptedKey = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      cek,
    );
    return encodeCiphertextForRecipient({
      subjectKeyIdentifier: subjectKeyIdentifierOf(recipientSpki),
      encryptedKey,
      iv,
      encryptedContent,
    });
  } finally {
    cek.fill(0);
  }
}
