/**
 * Verifies an AWS Nitro attestation document: the certificate chain from the leaf
 * through the cabundle to a configured root, the COSE_Sign1 ES384 signature, then the
 * caller's policy (debug mode, freshness, nonce, PCRs).
 *
 * Synchronous: signatures are checked with @noble/curves (already a dependency), and
 * the X.509 reader below understands only the profile the Nitro PKI uses (v3,
 * ECDSA P-384 with SHA-384, basicConstraints, keyUsage) and refuses everything else.
 * Content checks run only after the cryptography, so a reason such as "nonce_mismatch"
 * is only ever reported for an authentic document.
 */
import { p384 } from "@noble/curves/nist.js";
import {
  AttestationError,
  decodeAttestationDocument,
  sigStructure,
  type AttestationDocument,
} from "./cose.ts";

export { AttestationError, type AttestationDocument, type AttestationFailure } from "./cose.ts";

export interface TrustedRoot {
  /** DER of the self-signed root certificate; the document's cabundle[0] must equal it byte for byte. */
  der: Uint8Array;
  /** A locally generated root (dev PKI): accepted only with `allowDevelopment`. */
  development: boolean;
}

export interface VerifyOptions {
  roots: readonly TrustedRoot[];
  /** Instant at which every certificate must be valid and against which freshness is judged. */
  now: Date;
  expectedNonce?: Uint8Array;
  /** Reject a document whose timestamp is older than `now - maxAgeMs`. */
  maxAgeMs?: number;
  /** Tolerated clock skew for a timestamp ahead of `now` (default 60 s). */
  maxFutureSkewMs?: number;
  /** Debug-mode enclaves (PCR0 all zero) expose their memory to the host; refused unless true. */
  allowDebug?: boolean;
  /** Accept a chain ending in a root flagged `development` (never in production). */
  allowDevelopment?: boolean;
  policy?: { pcrs?: Record<number, Uint8Array> };
}

export const DEFAULT_MAX_FUTURE_SKEW_MS = 60_000;

export function verifyAttestationDocument(
  doc: Uint8Array,
  opts: VerifyOptions,
): AttestationDocument {
  checkOptions(opts);
  const { cose, document } = decodeAttestationDocument(doc);
  const now = opts.now.getTime();

  const anchor = opts.roots.find((r) => bytesEqual(r.der, document.cabundle[0]!));
  if (!anchor)
    throw new AttestationError(
      "untrusted_root",
      "the document's root certificate (cabundle[0]) is not one of the configured trusted roots",
    );
  if (anchor.development && opts.allowDevelopment !== true) {
    throw new AttestationError(
      "development_root",
      "the document chains to a development root, which is refused unless development is explicitly allowed",
    );
  }

  const chain = [
    ...document.cabundle.map((der, i) => parseCertificate(der, `cabundle[${i}]`)),
    parseCertificate(document.certificate, "leaf certificate"),
  ];
  for (const c of chain) checkValidity(c, now);
  checkChain(chain);

  const leaf = chain[chain.length - 1]!;
  if (
    !ecdsaP384Verify(
      cose.signature,
      sigStructure(cose.protectedHeader, cose.payload),
      leaf.publicKey,
      "compact",
    )
  ) {
    throw new AttestationError(
      "bad_signature",
      "the COSE_Sign1 signature does not verify under the leaf certificate's key",
    );
  }

  checkContent(document, opts, now);
  return document;
}

function checkOptions(opts: VerifyOptions): void {
  if (!opts || !Array.isArray(opts.roots) || opts.roots.length === 0)
    throw new TypeError("verifyAttestationDocument needs at least one trusted root");
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime()))
    throw new TypeError("verifyAttestationDocument needs `now` as a valid Date");
  if (opts.maxAgeMs !== undefined && !(opts.maxAgeMs >= 0))
    throw new TypeError("maxAgeMs must be a non-negative number");
  if (opts.maxFutureSkewMs !== undefined && !(opts.maxFutureSkewMs >= 0))
    throw new TypeError("maxFutureSkewMs must be a non-negative number");
}

function checkValidity(c: Certificate, now: number): void {
  if (now < c.notBefore)
    throw new AttestationError(
      "not_yet_valid",
      `${c.label} is not valid before ${new Date(c.notBefore).toISOString()}`,
    );
  if (now > c.notAfter)
    throw new AttestationError(
      "expired",
      `${c.label} expired at ${new Date(c.notAfter).toISOString()}`,
    );
}

/** chain = [root, ...intermediates, leaf]; each certificate must be issued by the one before it. */
function checkChain(chain: Certificate[]): void {
  const leafIndex = chain.length - 1;
  for (let i = 1; i < chain.length; i++) {
    const issuer = chain[i - 1]!;
    const subject = chain[i]!;
    if (issuer.ca !== true)
      throw new AttestationError(
        "bad_chain",
        `${issuer.label} issues ${subject.label} but is not a CA (basicConstraints)`,
      );
    if (issuer.keyUsage !== undefined && !(issuer.keyUsage & KU_KEY_CERT_SIGN)) {
      throw new AttestationError(
        "bad_chain",
        `${issuer.label} issues ${subject.label} but its keyUsage lacks keyCertSign`,
      );
    }
    // Intermediates below the issuer, excluding the leaf.
    const below = leafIndex - i;
    if (issuer.pathLen !== undefined && below > issuer.pathLen) {
      throw new AttestationError(
        "bad_chain",
        `${issuer.label} allows ${issuer.pathLen} CA(s) below it, the chain has ${below}`,
      );
    }
    if (!bytesEqual(subject.issuer, issuer.subject))
      throw new AttestationError(
        "bad_chain",
        `${subject.label}'s issuer name does not match ${issuer.label}'s subject`,
      );
    if (!ecdsaP384Verify(subject.signature, subject.tbs, issuer.publicKey, "der")) {
      throw new AttestationError(
        "bad_signature",
        `${subject.label}'s signature does not verify under ${issuer.label}'s key`,
      );
    }
  }
  const leaf = chain[leafIndex]!;
  if (leaf.ca === true)
    throw new AttestationError(
      "bad_chain",
      "the leaf certificate is a CA; the NSM signs with an end-entity certificate",
    );
  if (leaf.keyUsage !== undefined && !(leaf.keyUsage & KU_DIGITAL_SIGNATURE)) {
    throw new AttestationError(
      "bad_chain",
      "the leaf certificate's keyUsage lacks digitalSignature",
    );
  }
}

function checkContent(d: AttestationDocument, opts: VerifyOptions, now: number): void {
  const pcr0 = d.pcrs.get(0);
  if (!pcr0)
    throw new AttestationError(
      "malformed",
      "malformed attestation document: PCR0 is missing, so debug mode cannot be ruled out",
    );
  if (pcr0.every((b) => b === 0) && opts.allowDebug !== true) {
    throw new AttestationError(
      "debug_enclave",
      "PCR0 is all zero: the enclave runs in debug mode, whose memory the host can read",
    );
  }

  const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  if (d.timestamp > now + skew) {
    throw new AttestationError(
      "future_timestamp",
      `document timestamp ${new Date(d.timestamp).toISOString()} is more than ${skew} ms ahead of ${new Date(now).toISOString()}`,
    );
  }
  if (opts.maxAgeMs !== undefined && d.timestamp < now - opts.maxAgeMs) {
    throw new AttestationError(
      "stale",
      `document timestamp ${new Date(d.timestamp).toISOString()} is older than the allowed ${opts.maxAgeMs} ms`,
    );
  }

  if (
    opts.expectedNonce !== undefined &&
    (d.nonce === null || !bytesEqual(d.nonce, opts.expectedNonce))
  ) {
    throw new AttestationError(
      "nonce_mismatch",
      d.nonce === null
        ? "the document carries no nonce but one was expected"
        : "the document's nonce differs from the expected one",
    );
  }

  for (const [key, expected] of Object.entries(opts.policy?.pcrs ?? {})) {
    const index = Number(key);
    const actual = d.pcrs.get(index);
    if (actual === undefined || !bytesEqual(actual, expected)) {
      throw new AttestationError(
        "pcr_mismatch",
        actual === undefined
          ? `PCR${key} is required by policy but absent`
          : `PCR${key} does not match the policy`,
      );
    }
  }
}

function ecdsaP384Verify(
  sig: Uint8Array,
  msg: Uint8Array,
  publicKey: Uint8Array,
  format: "der" | "compact",
): boolean {
  try {
    // lowS: false because OpenSSL-style signers (AWS's included) do not normalise s.
    return p384.verify(sig, msg, publicKey, { prehash: true, lowS: false, format });
  } catch {
    return false; // unparsable signature or key point not on the curve
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// ---------------------------------------------------------------- X.509 (Nitro profile)

export interface Certificate {
  label: string;
  der: Uint8Array;
  tbs: Uint8Array;
  /** DER Ecdsa-Sig-Value. */
  signature: Uint8Array;
  /** Whole DER Name TLVs, compared byte for byte. */
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** Uncompressed P-384 point, 97 bytes. */
  publicKey: Uint8Array;
  /** undefined when basicConstraints is absent. */
  ca: boolean | undefined;
  pathLen: number | undefined;
  /** Bit 0 = digitalSignature ... bit 5 = keyCertSign (RFC 5280 numbering); undefined when absent. */
  keyUsage: number | undefined;
}

export const KU_DIGITAL_SIGNATURE = 1 << 0;
export const KU_KEY_CERT_SIGN = 1 << 5;
export const KU_CRL_SIGN = 1 << 6;

// Full DER of the only AlgorithmIdentifiers accepted (the AWS chain uses nothing else).
const ALG_ECDSA_SHA384 = Uint8Array.of(
  0x30,
  0x0a,
  0x06,
  0x08,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x04,
  0x03,
  0x03,
);
const ALG_EC_P384 = Uint8Array.of(
  0x30,
  0x10,
  0x06,
  0x07,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x02,
  0x01,
  0x06,
  0x05,
  0x2b,
  0x81,
  0x04,
  0x00,
  0x22,
);
const OID_BASIC_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x13);
const OID_KEY_USAGE = Uint8Array.of(0x55, 0x1d, 0x0f);

const T_BOOLEAN = 0x01,
  T_INTEGER = 0x02,
  T_BIT_STRING = 0x03,
  T_OCTET_STRING = 0x04,
  T_OID = 0x06;
const T_UTC_TIME = 0x17,
  T_GENERALIZED_TIME = 0x18,
  T_SEQUENCE = 0x30;
const T_CTX0 = 0xa0,
  T_CTX3 = 0xa3;

interface Tlv {
  tag: number;
  content: Uint8Array;
  whole: Uint8Array;
}

class DerReader {
  private pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {}

  fail(msg: string): never {
    throw new AttestationError("malformed", `malformed ${this.what}: ${msg}`);
  }

  done(): boolean {
    return this.pos === this.b.length;
  }

  peek(): number | undefined {
    return this.b[this.pos];
  }

  next(expectedTag: number): Tlv {
    const start = this.pos;
    const tag = this.b[this.pos];
    if (tag === undefined) this.fail(`truncated, expected tag 0x${expectedTag.toString(16)}`);
    if (tag !== expectedTag)
      this.fail(`tag 0x${tag.toString(16)} where 0x${expectedTag.toString(16)} was expected`);
    let p = this.pos + 1;
    const first = this.b[p++];
    if (first === undefined) this.fail("truncated length");
    let len = first;
    if (first & 0x80) {
      const n = first & 0x7f;
      // 3 length bytes cover anything a 1 KiB certificate can hold; 0x80 (indefinite) is not DER.
      if (n === 0 || n > 3) this.fail("unsupported length form");
      len = 0;
      for (let i = 0; i < n; i++) {
        const x = this.b[p++];
        if (x === undefined) this.fail("truncated length");
        len = len * 256 + x;
      }
      if (len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1))))
        this.fail("length not in shortest form");
    }
    if (len > this.b.length - p)
      this.fail(`length ${len} exceeds the ${this.b.length - p} bytes remaining`);
    this.pos = p + len;
    return { tag, content: this.b.subarray(p, p + len), whole: this.b.subarray(start, p + len) };
  }

  end(): void {
    if (!this.done()) this.fail(`${this.b.length - this.pos} unexpected trailing bytes`);
  }
}

export function parseCertificate(der: Uint8Array, label = "certificate"): Certificate {
  const outer = new DerReader(der, label);
  const cert = new DerReader(outer.next(T_SEQUENCE).content, label);
  outer.end();
  const tbsTlv = cert.next(T_SEQUENCE);
  if (!bytesEqual(cert.next(T_SEQUENCE).whole, ALG_ECDSA_SHA384))
    cert.fail("signature algorithm is not ecdsa-with-SHA384");
  const signature = bitStringBytes(cert.next(T_BIT_STRING), cert);
  cert.end();

  const tbs = new DerReader(tbsTlv.content, `${label} (tbsCertificate)`);
  const version = new DerReader(tbs.next(T_CTX0).content, `${label} (version)`);
  const v = version.next(T_INTEGER).content;
  version.end();
  if (v.length !== 1 || v[0] !== 2) tbs.fail("only X.509 v3 is accepted");
  const serial = tbs.next(T_INTEGER).content;
  if (serial.length < 1 || serial.length > 21) tbs.fail("serial number must be 1..20 octets");
  if (!bytesEqual(tbs.next(T_SEQUENCE).whole, ALG_ECDSA_SHA384))
    tbs.fail("inner signature algorithm is not ecdsa-with-SHA384");
  const issuer = tbs.next(T_SEQUENCE).whole;
  const validity = new DerReader(tbs.next(T_SEQUENCE).content, `${label} (validity)`);
  const notBefore = readTime(validity);
  const notAfter = readTime(validity);
  validity.end();
  if (notAfter < notBefore) tbs.fail("notAfter precedes notBefore");
  const subject = tbs.next(T_SEQUENCE).whole;

  const spki = new DerReader(tbs.next(T_SEQUENCE).content, `${label} (subjectPublicKeyInfo)`);
  if (!bytesEqual(spki.next(T_SEQUENCE).whole, ALG_EC_P384))
    spki.fail("key is not an EC key on P-384");
  const publicKey = bitStringBytes(spki.next(T_BIT_STRING), spki);
  spki.end();
  if (publicKey.length !== 97 || publicKey[0] !== 0x04)
    tbs.fail("public key must be an uncompressed P-384 point");

  const ext =
    tbs.peek() === T_CTX3
      ? readExtensions(tbs.next(T_CTX3).content, label)
      : { ca: undefined, pathLen: undefined, keyUsage: undefined };
  tbs.end(); // also refuses issuer/subjectUniqueID, which the Nitro PKI never uses

  return {
    label,
    der,
    tbs: tbsTlv.whole,
    signature,
    issuer,
    subject,
    notBefore,
    notAfter,
    publicKey,
    ...ext,
  };
}

function bitStringBytes(t: Tlv, r: DerReader): Uint8Array {
  if (t.content[0] !== 0) r.fail("BIT STRING with unused bits where whole octets are required");
  return t.content.subarray(1);
}

function readTime(r: DerReader): number {
  const tag = r.peek();
  const t = r.next(tag === T_GENERALIZED_TIME ? T_GENERALIZED_TIME : T_UTC_TIME);
  const s = String.fromCharCode(...t.content);
  const m = (
    tag === T_GENERALIZED_TIME
      ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/
      : /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/
  ).exec(s);
  if (!m) r.fail(`time ${JSON.stringify(s)} is not in DER form`);
  const [, y, mo, d, h, mi, se] = m.map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // RFC 5280 §4.1.2.5.1: two-digit years 50..99 are 19xx.
  const year = tag === T_GENERALIZED_TIME ? y : y >= 50 ? 1900 + y : 2000 + y;
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59)
    r.fail(`time ${JSON.stringify(s)} is not a real instant`);
  return ms;
}

function readExtensions(
  bytes: Uint8Array,
  label: string,
): Pick<Certificate, "ca" | "pathLen" | "keyUsage"> {
  const wrapper = new DerReader(bytes, `${label} (extensions)`);
  const list = new DerReader(wrapper.next(T_SEQUENCE).content, `${label} (extensions)`);
  wrapper.end();
  const out: Pick<Certificate, "ca" | "pathLen" | "keyUsage"> = {
    ca: undefined,
    pathLen: undefined,
    keyUsage: undefined,
  };
  const seen: Uint8Array[] = [];
  while (!list.done()) {
    const e = new DerReader(list.next(T_SEQUENCE).content, `${label} (extension)`);
    const oid = e.next(T_OID).content;
    if (seen.some((s) => bytesEqual(s, oid))) e.fail("duplicate extension");
    seen.push(oid);
    let critical = false;
    if (e.peek() === T_BOOLEAN) {
      const c = e.next(T_BOOLEAN).content;
      if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) e.fail("invalid BOOLEAN");
      critical = c[0] === 0xff;
    }
    const value = e.next(T_OCTET_STRING).content;
    e.end();
    if (bytesEqual(oid, OID_BASIC_CONSTRAINTS))
      Object.assign(out, readBasicConstraints(value, label));
    else if (bytesEqual(oid, OID_KEY_USAGE)) out.keyUsage = readKeyUsage(value, label);
    else if (critical) e.fail("unknown critical extension");
  }
  return out;
}

function readBasicConstraints(
  bytes: Uint8Array,
  label: string,
): { ca: boolean; pathLen: number | undefined } {
  const w = new DerReader(bytes, `${label} (basicConstraints)`);
  const r = new DerReader(w.next(T_SEQUENCE).content, `${label} (basicConstraints)`);
  w.end();
  let ca = false;
  let pathLen: number | undefined;
  if (r.peek() === T_BOOLEAN) {
    const c = r.next(T_BOOLEAN).content;
    if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) r.fail("invalid cA BOOLEAN");
    ca = c[0] === 0xff;
  }
  if (r.peek() === T_INTEGER) {
    const n = r.next(T_INTEGER).content;
    if (n.length !== 1 || n[0]! > 0x7f) r.fail("pathLenConstraint outside 0..127");
    pathLen = n[0];
  }
  r.end();
  return { ca, pathLen };
}

function readKeyUsage(bytes: Uint8Array, label: string): number {
  const r = new DerReader(bytes, `${label} (keyUsage)`);
  const c = r.next(T_BIT_STRING).content;
  r.end();
  if (c.length < 2 || c.length > 3 || c[0]! > 7) r.fail("keyUsage BIT STRING out of shape");
  // Named bits run from the most significant bit of the first octet.
  let bits = 0;
  for (let i = 1; i < c.length; i++) {
    for (let j = 0; j < 8; j++) if (c[i]! & (0x80 >> j)) bits |= 1 << ((i - 1) * 8 + j);
  }
  return bits;
}
