/**
 * The one profile of KMS `CiphertextForRecipient` (CMS EnvelopedData, RFC 5652) that crosses from
 * KMS to the enclave: EnvelopedData v2 with exactly one KeyTransRecipientInfo v2 addressed by
 * subjectKeyIdentifier = SHA-256(recipient's DER SubjectPublicKeyInfo), RSAES-OAEP with SHA-256
 * and MGF1-SHA-256, content AES-256-CBC.
 *
 * ContentInfo { contentType envelopedData, [0] EnvelopedData {
 *   version 2, recipientInfos SET { KeyTransRecipientInfo { version 2, [0] subjectKeyIdentifier,
 *   keyEncryptionAlgorithm RSAES-OAEP(SHA-256, MGF1(SHA-256)), encryptedKey } },
 *   encryptedContentInfo { id-data, AES-256-CBC(iv), [0] encryptedContent } } }
 *
 * The enclave's strict reader is src/enclave/cms.ts; the KMS stand-in's writer is
 * src/devkms/cms-builder.ts. Both take the identifiers and bounds from here.
 */
import { createHash } from "node:crypto";

export const CMS_OID = {
  envelopedData: "1.2.840.113549.1.7.3",
  data: "1.2.840.113549.1.7.1",
  rsaesOaep: "1.2.840.113549.1.1.7",
  mgf1: "1.2.840.113549.1.1.8",
  sha256: "2.16.840.1.101.3.4.2.1",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
} as const;

/** KMS caps GenerateRandom/GenerateDataKey at 1024 bytes, so a real blob is under 2 KiB. */
export const MAX_CMS_BYTES = 8 * 1024;

/** How a recipient is addressed: SHA-256 of its DER SPKI, as KMS does. */
export function subjectKeyIdentifierOf(spkiDer: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(spkiDer).digest());
}
