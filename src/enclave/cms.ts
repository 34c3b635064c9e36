/**
 * KMS `CiphertextForRecipient`: the CMS EnvelopedData (RFC 5652) that KMS returns instead of
 * `Plaintext` when a request carries an attested `Recipient`. Only the one profile KMS emits is
 * accepted: EnvelopedData v2, exactly one KeyTransRecipientInfo v2 addressed by
 * subjectKeyIdentifier (SHA-256 of the recipient's DER SPKI), RSAES-OAEP with SHA-256 and
 * MGF1-SHA-256, content AES-256-CBC. Anything else is refused rather than half-understood.
 *
 * Encoding: BER with definite or indefinite lengths and primitive or constructed (segmented)
 * OCTET STRINGs, as KMS emits; lengths must be minimal (see `decode`). Input size, nesting depth
 * and node count are capped before anything is interpreted.
 */
// asn1js (PeculiarVentures): a maintained BER decoder that handles indefinite lengths and constructed strings and enforces depth/node/length limits, so we do not hand-write one.
import * as asn1js from "asn1js";
import {
  constants,
  createDecipheriv,
  createPublicKey,
  privateDecrypt,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { CMS_OID, MAX_CMS_BYTES, subjectKeyIdentifierOf } from "../shared/wire/recipient-cms.ts";

export { CMS_OID, MAX_CMS_BYTES, subjectKeyIdentifierOf };

/** The KMS profile nests 11 levels deep; a little slack, nothing more. */
const MAX_DEPTH = 16;
const MAX_NODES = 128;
const MAX_ENCRYPTED_KEY_BYTES = 512; // RSA-4096
const AES_BLOCK = 16;
const CEK_BYTES = 32;

export class CmsError extends Error {
  override name = "CmsError";
}

export interface KeyTransRecipient {
  version: number;
  subjectKeyIdentifier: Uint8Array;
  /** OIDs (dotted): always rsaesOaep / sha256 / sha256 after a successful parse. */
  keyEncryptionAlgorithm: { oid: string; hash: string; mgfHash: string };
  encryptedKey: Uint8Array;
}

export interface CiphertextForRecipient {
  version: number;
  recipient: KeyTransRecipient;
  contentType: string;
  contentEncryptionAlgorithm: { oid: string; iv: Uint8Array };
  encryptedContent: Uint8Array;
}

type Node = asn1js.AsnType;

const UNIVERSAL = 1;
const CONTEXT = 3;
const TAG = { integer: 2, octetString: 4, null: 5, oid: 6, sequence: 16, set: 17 } as const;

function describe(n: Node): string {
  const cls = ["?", "universal", "application", "context", "private"][n.idBlock.tagClass] ?? "?";
  return `${cls} tag ${n.idBlock.tagNumber}${n.idBlock.isConstructed ? " (constructed)" : ""}`;
}

function is(n: Node | undefined, tagClass: number, tagNumber: number): n is Node {
  return n !== undefined && n.idBlock.tagClass === tagClass && n.idBlock.tagNumber === tagNumber;
}

/** Children of a constructed node; asn1js has already dropped end-of-contents markers. */
function childrenOf(n: Node): Node[] {
  if (!n.idBlock.isConstructed)
    throw new CmsError(`expected a constructed value, got ${describe(n)}`);
  const value = (n.valueBlock as unknown as { value?: unknown }).value;
  if (!Array.isArray(value)) throw new CmsError(`constructed ${describe(n)} has no children`);
  return value as Node[];
}

function sequence(n: Node | undefined, what: string, min: number, max: number): Node[] {
  if (!is(n, UNIVERSAL, TAG.sequence))
    throw new CmsError(`${what}: expected SEQUENCE${n ? `, got ${describe(n)}` : ", missing"}`);
  const c = childrenOf(n);
  if (c.length < min || c.length > max)
    throw new CmsError(`${what}: expected ${min}..${max} elements, got ${c.length}`);
  return c;
}

function oid(n: Node | undefined, what: string): string {
  if (!is(n, UNIVERSAL, TAG.oid) || n.idBlock.isConstructed)
    throw new CmsError(`${what}: expected OBJECT IDENTIFIER`);
  return (n as asn1js.ObjectIdentifier).valueBlock.toString();
}

function smallInt(n: Node | undefined, what: string): number {
  if (!is(n, UNIVERSAL, TAG.integer) || n.idBlock.isConstructed)
    throw new CmsError(`${what}: expected INTEGER`);
  const bytes = (n as asn1js.Integer).valueBlock.valueHexView;
  if (bytes.length !== 1 || bytes[0]! > 0x7f)
    throw new CmsError(`${what}: not a small non-negative INTEGER`);
  return bytes[0]!;
}

/**
 * Contents of an OCTET STRING, possibly under an implicit tag, in primitive or constructed
 * (segmented BER) form; segments must themselves be universal OCTET STRINGs. asn1js's depth and
 * node limits bound the recursion.
 */
function octets(
  n: Node | undefined,
  what: string,
  tagClass: number = UNIVERSAL,
  tagNumber: number = TAG.octetString,
): Uint8Array {
  if (!is(n, tagClass, tagNumber))
    throw new CmsError(`${what}: expected OCTET STRING${n ? `, got ${describe(n)}` : ", missing"}`);
  if (!n.idBlock.isConstructed)
    return (n.valueBlock as unknown as { valueHexView: Uint8Array }).valueHexView;
  const parts = childrenOf(n).map((c) => octets(c, `${what} segment`));
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** AlgorithmIdentifier for SHA-256; RFC 4055 allows NULL or absent parameters. */
function expectSha256(n: Node | undefined, what: string): string {
  const [alg, params] = sequence(n, what, 1, 2);
  const id = oid(alg, `${what} algorithm`);
  if (id !== CMS_OID.sha256) throw new CmsError(`${what}: expected SHA-256, got ${id}`);
  if (params !== undefined && !is(params, UNIVERSAL, TAG.null))
    throw new CmsError(`${what}: unexpected parameters`);
  return id;
}

function explicit(n: Node | undefined, tagNumber: number, what: string): Node {
  if (!is(n, CONTEXT, tagNumber))
    throw new CmsError(
      `${what}: expected [${tagNumber}]${n ? `, got ${describe(n)}` : ", missing"}`,
    );
  const c = childrenOf(n);
  if (c.length !== 1) throw new CmsError(`${what}: [${tagNumber}] must wrap exactly one value`);
  return c[0]!;
}

/** RSAES-OAEP-params (RFC 4055): SHA-256, MGF1(SHA-256), default (empty) label only. */
function parseOaep(n: Node | undefined): KeyTransRecipient["keyEncryptionAlgorithm"] {
  const [alg, params] = sequence(n, "keyEncryptionAlgorithm", 2, 2);
  const id = oid(alg, "keyEncryptionAlgorithm");
  if (id !== CMS_OID.rsaesOaep)
    throw new CmsError(`keyEncryptionAlgorithm: expected RSAES-OAEP, got ${id}`);
  // The DEFAULTs are SHA-1, so both fields must be present; a [2] pSourceAlgorithm (label) is not KMS's profile.
  const fields = sequence(params, "RSAES-OAEP-params", 2, 2);
  const hash = expectSha256(explicit(fields[0], 0, "OAEP hashAlgorithm"), "OAEP hashAlgorithm");
  const [mgfAlg, mgfParams] = sequence(
    explicit(fields[1], 1, "OAEP maskGenAlgorithm"),
    "OAEP maskGenAlgorithm",
    2,
    2,
  );
  const mgfId = oid(mgfAlg, "OAEP maskGenAlgorithm");
  if (mgfId !== CMS_OID.mgf1)
    throw new CmsError(`OAEP maskGenAlgorithm: expected MGF1, got ${mgfId}`);
  const mgfHash = expectSha256(mgfParams, "MGF1 hash");
  return { oid: id, hash, mgfHash };
}

function parseRecipient(n: Node | undefined): KeyTransRecipient {
  // Other RecipientInfo choices (kari [1], kekri [2], pwri [3], ori [4]) are tagged, so a SEQUENCE is ktri.
  if (!is(n, UNIVERSAL, TAG.sequence))
    throw new CmsError("recipientInfos: only KeyTransRecipientInfo is supported");
  const [ver, rid, alg, ek] = sequence(n, "KeyTransRecipientInfo", 4, 4);
  const version = smallInt(ver, "KeyTransRecipientInfo version");
  if (version !== 2)
    throw new CmsError(
      `KeyTransRecipientInfo version must be 2 (subjectKeyIdentifier), got ${version}`,
    );
  const subjectKeyIdentifier = octets(rid, "rid subjectKeyIdentifier", CONTEXT, 0);
  if (subjectKeyIdentifier.length !== 32)
    throw new CmsError(
      `subjectKeyIdentifier must be 32 bytes (SHA-256), got ${subjectKeyIdentifier.length}`,
    );
  const keyEncryptionAlgorithm = parseOaep(alg);
  const encryptedKey = octets(ek, "encryptedKey");
  if (encryptedKey.length === 0 || encryptedKey.length > MAX_ENCRYPTED_KEY_BYTES) {
    throw new CmsError(`encryptedKey has implausible length ${encryptedKey.length}`);
  }
  return { version, subjectKeyIdentifier, keyEncryptionAlgorithm, encryptedKey };
}

/** Refuse what asn1js merely warned about (e.g. a missing end-of-contents in truncated input). */
function assertClean(n: Node, depth = 0): void {
  if (depth > MAX_DEPTH) throw new CmsError("nesting too deep");
  if (n.error) throw new CmsError(`malformed BER: ${n.error}`);
  const warnings = [
    ...n.warnings,
    ...n.idBlock.warnings,
    ...n.lenBlock.warnings,
    ...n.valueBlock.warnings,
  ];
  if (warnings.length > 0) throw new CmsError(`malformed BER: ${warnings[0]}`);
  if (n.idBlock.isConstructed) for (const c of childrenOf(n)) assertClean(c, depth + 1);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(
      Buffer.from(b.buffer, b.byteOffset, b.length),
    )
  );
}

function decode(ber: Uint8Array): Node {
  if (!(ber instanceof Uint8Array)) throw new CmsError("CiphertextForRecipient must be bytes");
  if (ber.length === 0) throw new CmsError("CiphertextForRecipient is empty");
  if (ber.length > MAX_CMS_BYTES)
    throw new CmsError(`CiphertextForRecipient too large (${ber.length} > ${MAX_CMS_BYTES} bytes)`);
  const { offset, result } = asn1js.fromBER(ber, {
    maxDepth: MAX_DEPTH,
    maxNodes: MAX_NODES,
    maxContentLength: MAX_CMS_BYTES,
    copyInput: true,
  });
  if (offset === -1) throw new CmsError(`malformed BER: ${result.error || "decoding failed"}`);
  if (offset !== ber.length)
    throw new CmsError(`${ber.length - offset} trailing bytes after CMS structure`);
  assertClean(result);
  // asn1js does not check that a definite-length child stays inside its parent, so a corrupted
  // length can still "parse". Requiring the input to be exactly the re-encoding of what was parsed
  // (keeping each value's definite/indefinite and primitive/constructed form) closes that gap and
  // gives every accepted blob one reading. Cost: non-minimal length octets, legal in BER but never
  // emitted by KMS, are refused.
  if (!sameBytes(new Uint8Array(result.toBER(false)), ber))
    throw new CmsError("malformed BER: inconsistent or non-minimal lengths");
  return result;
}

/** Maps the library's own exceptions on odd input (e.g. unconvertible OIDs) to CmsError. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CmsError) throw e;
    throw new CmsError(`malformed CiphertextForRecipient: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Parse and validate a `CiphertextForRecipient` (BER or DER). Throws CmsError on anything else. */
export function parseCiphertextForRecipient(ber: Uint8Array): CiphertextForRecipient {
  return guarded(() => parseProfile(decode(ber)));
}

function parseProfile(root: Node): CiphertextForRecipient {
  const [ct, wrapped] = sequence(root, "ContentInfo", 2, 2);
  const contentType = oid(ct, "ContentInfo contentType");
  if (contentType !== CMS_OID.envelopedData)
    throw new CmsError(`ContentInfo: expected envelopedData, got ${contentType}`);
  // originatorInfo [0] and unprotectedAttrs [1] are optional in RFC 5652 but never sent by KMS: 3 elements exactly.
  const [ver, recipients, eci] = sequence(
    explicit(wrapped, 0, "ContentInfo content"),
    "EnvelopedData",
    3,
    3,
  );
  const version = smallInt(ver, "EnvelopedData version");
  if (version !== 2) throw new CmsError(`EnvelopedData version must be 2, got ${version}`);
  if (!is(recipients, UNIVERSAL, TAG.set))
    throw new CmsError("EnvelopedData: expected SET of RecipientInfo");
  const ris = childrenOf(recipients);
  if (ris.length !== 1)
    throw new CmsError(`EnvelopedData: expected exactly one RecipientInfo, got ${ris.length}`);
  const recipient = parseRecipient(ris[0]);

  const [innerType, algId, content] = sequence(eci, "EncryptedContentInfo", 3, 3);
  const innerContentType = oid(innerType, "EncryptedContentInfo contentType");
  if (innerContentType !== CMS_OID.data)
    throw new CmsError(`EncryptedContentInfo: expected id-data, got ${innerContentType}`);
  const [algOid, ivNode] = sequence(algId, "contentEncryptionAlgorithm", 2, 2);
  const contentAlg = oid(algOid, "contentEncryptionAlgorithm");
  if (contentAlg !== CMS_OID.aes256Cbc)
    throw new CmsError(`contentEncryptionAlgorithm: expected AES-256-CBC, got ${contentAlg}`);
  const iv = octets(ivNode, "AES-CBC IV");
  if (iv.length !== AES_BLOCK)
    throw new CmsError(`AES-CBC IV must be ${AES_BLOCK} bytes, got ${iv.length}`);
  const encryptedContent = octets(content, "encryptedContent", CONTEXT, 0);
  if (encryptedContent.length === 0 || encryptedContent.length % AES_BLOCK !== 0) {
    throw new CmsError(
      `encryptedContent length ${encryptedContent.length} is not a positive multiple of ${AES_BLOCK}`,
    );
  }
  return {
    version,
    recipient,
    contentType: innerContentType,
    contentEncryptionAlgorithm: { oid: contentAlg, iv },
    encryptedContent,
  };
}

/** SHA-256 of the DER SubjectPublicKeyInfo: how KMS names the recipient (rid). */
/**
 * Unwrap a `CiphertextForRecipient` with the enclave's RSA private key and return the plaintext
 * (the data key or random bytes). Refuses blobs addressed to any other key.
 */
export function decryptCiphertextForRecipient(
  ber: Uint8Array,
  rsaPrivateKey: KeyObject,
): Uint8Array {
  if (rsaPrivateKey.type !== "private" || rsaPrivateKey.asymmetricKeyType !== "rsa") {
    throw new CmsError("recipient key must be an RSA private key");
  }
  const cms = parseCiphertextForRecipient(ber);
  const spki = createPublicKey(rsaPrivateKey).export({ type: "spki", format: "der" });
  const ownSki = subjectKeyIdentifierOf(spki);
  if (!timingSafeEqual(ownSki, cms.recipient.subjectKeyIdentifier)) {
    throw new CmsError("CiphertextForRecipient is addressed to a different recipient key");
  }
  const modulusBytes = Math.ceil((rsaPrivateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (cms.recipient.encryptedKey.length !== modulusBytes) {
    throw new CmsError(
      `encryptedKey is ${cms.recipient.encryptedKey.length} bytes, recipient modulus is ${modulusBytes}`,
    );
  }

  let cek: Buffer;
  try {
    cek = privateDecrypt(
      { key: rsaPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      cms.recipient.encryptedKey,
    );
  } catch {
    throw new CmsError("content-encryption key unwrap (RSA-OAEP-SHA256) failed");
  }
  try {
    if (cek.length !== CEK_BYTES)
      throw new CmsError(`content-encryption key must be ${CEK_BYTES} bytes, got ${cek.length}`);
    const decipher = createDecipheriv("aes-256-cbc", cek, cms.contentEncryptionAlgorithm.iv);
    const parts: Buffer[] = [];
    try {
      parts.push(decipher.update(cms.encryptedContent));
      // setAutoPadding (the default) checks and strips PKCS#7 padding in final().
      parts.push(decipher.final());
      return new Uint8Array(Buffer.concat(parts));
    } catch {
      throw new CmsError("content decryption (AES-256-CBC) failed");
    } finally {
      for (const p of parts) p.fill(0); // the key material lives on only in the returned copy
    }
  } finally {
    cek.fill(0);
  }
}
