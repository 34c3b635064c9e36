/**
 * A development stand-in for the AWS Nitro PKI: root CA -> intermediate CA -> leaf,
 * all ECDSA P-384 / SHA-384, X.509 v3 with the same extension profile as the real
 * chain (critical basicConstraints and keyUsage), and a leaf that lives ~3 hours like
 * AWS's. Its only use is the simulated NSM; a verifier trusts its root only in an
 * explicit development mode.
 *
 * The DER is written by hand (a few dozen lines) rather than pulling in an X.509
 * library for the one profile we need; tests cross-check the output with OpenSSL's
 * parser via node:crypto.
 */
import { p384 } from "@noble/curves/nist.js";
import {
  bytesEqual,
  parseCertificate,
  KU_CRL_SIGN,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
} from "../attestation/verifier.ts";

export interface PkiEntity {
  der: Uint8Array;
  /** P-384 secret scalar, 48 bytes. */
  privateKey: Uint8Array;
}

export interface DevelopmentPki {
  root: PkiEntity;
  intermediate: PkiEntity;
  leaf: PkiEntity;
}

export interface CreatePkiOptions {
  now?: Date;
  leafLifetimeMs?: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
export const DEFAULT_LEAF_LIFETIME_MS = 3 * HOUR;
const ROOT_LIFETIME_MS = 5 * 365 * DAY;
const INTERMEDIATE_LIFETIME_MS = 30 * DAY;
/** CAs are back-dated so that a verifier whose clock lags a little still accepts them. */
const CA_BACKDATE_MS = HOUR;

export const ROOT_NAME = "development.nitro-enclaves";
export const INTERMEDIATE_NAME = "intermediate.development.nitro-enclaves";
export const LEAF_NAME = "enclave.development.nitro-enclaves";

export function createDevelopmentPki(opts: CreatePkiOptions = {}): DevelopmentPki {
  const now = (opts.now ?? new Date()).getTime();
  const rootKey = p384.utils.randomSecretKey();
  const intKey = p384.utils.randomSecretKey();
  const root = issueDevelopmentCertificate({
    subject: ROOT_NAME,
    issuer: ROOT_NAME,
    subjectKey: rootKey,
    issuerKey: rootKey,
    notBefore: now - CA_BACKDATE_MS,
    notAfter: now + ROOT_LIFETIME_MS,
    ca: { pathLen: undefined },
    keyUsage: KU_KEY_CERT_SIGN | KU_CRL_SIGN,
  });
  const intermediate = issueDevelopmentCertificate({
    subject: INTERMEDIATE_NAME,
    issuer: ROOT_NAME,
    subjectKey: intKey,
    issuerKey: rootKey,
    notBefore: now - CA_BACKDATE_MS,
    notAfter: now + INTERMEDIATE_LIFETIME_MS,
    ca: { pathLen: 0 },
    keyUsage: KU_KEY_CERT_SIGN | KU_CRL_SIGN,
  });
  const pki = {
    root: { der: root, privateKey: rootKey },
    intermediate: { der: intermediate, privateKey: intKey },
  };
  return {
    ...pki,
    leaf: issueLeafEntity(pki.intermediate, now, opts.leafLifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS),
  };
}

/** The same PKI with a freshly issued leaf (AWS likewise gives each enclave a new short-lived one). */
export function renewLeaf(
  pki: DevelopmentPki,
  now: Date = new Date(),
  lifetimeMs = DEFAULT_LEAF_LIFETIME_MS,
): DevelopmentPki {
  return { ...pki, leaf: issueLeafEntity(pki.intermediate, now.getTime(), lifetimeMs) };
}

function issueLeafEntity(intermediate: PkiEntity, now: number, lifetimeMs: number): PkiEntity {
  if (!(lifetimeMs > 0)) throw new RangeError("leaf lifetime must be positive");
  const key = p384.utils.randomSecretKey();
  const notBefore = Math.floor(now / 1000) * 1000; // X.509 times have whole seconds
  const der = issueDevelopmentCertificate({
    subject: LEAF_NAME,
    issuer: INTERMEDIATE_NAME,
    subjectKey: key,
    issuerKey: intermediate.privateKey,
    notBefore,
    notAfter: notBefore + lifetimeMs,
    ca: undefined,
    keyUsage: KU_DIGITAL_SIGNATURE,
  });
  return { der, privateKey: key };
}

// ---------------------------------------------------------------- serialization

const FORMAT = "tss-dev-nitro-pki/1";
/** Bound on a serialized PKI (three certificates and keys take ~3 KiB). */
export const MAX_SERIALIZED_PKI_CHARS = 64 * 1024;

/**
 * JSON with the three certificates and their private keys, for a simulated NSM in
 * another process. A party that only verifies needs `pki.root.der` (see derToPem).
 */
export function serializeDevelopmentPki(pki: DevelopmentPki): string {
  const e = (x: PkiEntity) => ({ der: b64(x.der), privateKey: b64(x.privateKey) });
  return JSON.stringify({
    format: FORMAT,
    root: e(pki.root),
    intermediate: e(pki.intermediate),
    leaf: e(pki.leaf),
  });
}

/** Parses and checks a serialized PKI: each key matches its certificate and each certificate is signed by its issuer. */
export function restoreDevelopmentPki(text: string): DevelopmentPki {
  if (typeof text !== "string" || text.length > MAX_SERIALIZED_PKI_CHARS)
    throw new Error("serialized development PKI is not a string of reasonable size");
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error("serialized development PKI is not JSON");
  }
  const o = j as Record<string, unknown>;
  if (o === null || typeof o !== "object" || o.format !== FORMAT)
    throw new Error(`serialized development PKI is not in format ${FORMAT}`);
  const entity = (name: string): PkiEntity => {
    const x = o[name] as Record<string, unknown> | undefined;
    if (!x || typeof x.der !== "string" || typeof x.privateKey !== "string")
      throw new Error(`serialized development PKI lacks ${name}`);
    const der = unb64(x.der);
    const privateKey = unb64(x.privateKey);
    const cert = parseCertificate(der, `development ${name}`);
    let pub: Uint8Array;
    try {
      pub = p384.getPublicKey(privateKey, false);
    } catch {
      throw new Error(`development ${name} private key is not a P-384 secret key`);
    }
    if (!bytesEqual(pub, cert.publicKey))
      throw new Error(`development ${name} private key does not match its certificate`);
    return { der, privateKey };
  };
  const pki = { root: entity("root"), intermediate: entity("intermediate"), leaf: entity("leaf") };
  const signedBy = (child: PkiEntity, parent: PkiEntity) => {
    const c = parseCertificate(child.der);
    return p384.verify(c.signature, c.tbs, parseCertificate(parent.der).publicKey, {
      prehash: true,
      lowS: false,
      format: "der",
    });
  };
  if (!signedBy(pki.intermediate, pki.root) || !signedBy(pki.leaf, pki.intermediate)) {
    throw new Error("serialized development PKI is not a chain root -> intermediate -> leaf");
  }
  return pki;
}

export function derToPem(der: Uint8Array): string {
  const lines = b64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

function unb64(s: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s))
    throw new Error("invalid base64 in serialized development PKI");
  return new Uint8Array(Buffer.from(s, "base64"));
}

// ---------------------------------------------------------------- DER writer

export interface CertificateSpec {
  /** Common names; the organisation is fixed. */
  subject: string;
  issuer: string;
  /** P-384 secret scalars; the subject's public key is derived. */
  subjectKey: Uint8Array;
  issuerKey: Uint8Array;
  /** Milliseconds since the epoch, truncated to whole seconds. */
  notBefore: number;
  notAfter: number;
  /** undefined = end entity. */
  ca: { pathLen: number | undefined } | undefined;
  /** KU_* bits from verifier.ts. */
  keyUsage: number;
}

const OID_ECDSA_SHA384 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_EC_PUBLIC_KEY = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_SECP384R1 = [0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_COMMON_NAME = [0x55, 0x04, 0x03];
const OID_ORGANIZATION = [0x55, 0x04, 0x0a];
const OID_BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13];
const OID_KEY_USAGE = [0x55, 0x1d, 0x0f];
const ORGANIZATION = "tss-signing-layer development PKI";

/** Issues one certificate; exported so tests can build chains that break a single rule. */
export function issueDevelopmentCertificate(s: CertificateSpec): Uint8Array {
  const sigAlg = seq(tlv(0x06, Uint8Array.from(OID_ECDSA_SHA384)));
  const tbs = seq(
    tlv(0xa0, integer(Uint8Array.of(2))), // v3
    integer(randomSerial()),
    sigAlg,
    name(s.issuer),
    seq(time(s.notBefore), time(s.notAfter)),
    name(s.subject),
    seq(
      seq(tlv(0x06, Uint8Array.from(OID_EC_PUBLIC_KEY)), tlv(0x06, Uint8Array.from(OID_SECP384R1))),
      bitString(p384.getPublicKey(s.subjectKey, false)),
    ),
    tlv(
      0xa3,
      seq(
        extension(OID_BASIC_CONSTRAINTS, basicConstraints(s.ca)),
        extension(OID_KEY_USAGE, keyUsage(s.keyUsage)),
      ),
    ),
  );
  const sig = p384.sign(tbs, s.issuerKey, { prehash: true, lowS: false, format: "der" });
  return seq(tbs, sigAlg, bitString(sig));
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const lenBytes =
    len < 0x80
      ? [len]
      : len < 0x100
        ? [0x81, len]
        : len < 0x10000
          ? [0x82, len >> 8, len & 0xff]
          : [0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  const out = new Uint8Array(1 + lenBytes.length + len);
  out[0] = tag;
  out.set(lenBytes, 1);
  let off = 1 + lenBytes.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const seq = (...parts: Uint8Array[]) => tlv(0x30, ...parts);

/** A non-negative INTEGER from big-endian magnitude bytes, in minimal two's complement form. */
function integer(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m[0]! & 0x80 ? tlv(0x02, Uint8Array.of(0), m) : tlv(0x02, m);
}

function randomSerial(): Uint8Array {
  const s = crypto.getRandomValues(new Uint8Array(16));
  s[0] = (s[0]! & 0x7f) | 0x01; // positive, and 16 significant octets
  return s;
}

function bitString(bytes: Uint8Array): Uint8Array {
  return tlv(0x03, Uint8Array.of(0), bytes);
}

function name(cn: string): Uint8Array {
  const rdn = (oid: number[], value: string) =>
    tlv(0x31, seq(tlv(0x06, Uint8Array.from(oid)), tlv(0x0c, new TextEncoder().encode(value))));
  return seq(rdn(OID_ORGANIZATION, ORGANIZATION), rdn(OID_COMMON_NAME, cn));
}

function time(ms: number): Uint8Array {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return y < 2050
    ? tlv(0x17, new TextEncoder().encode(p(y % 100) + rest))
    : tlv(0x18, new TextEncoder().encode(String(y) + rest));
}

function extension(oid: number[], value: Uint8Array): Uint8Array {
  return seq(tlv(0x06, Uint8Array.from(oid)), tlv(0x01, Uint8Array.of(0xff)), tlv(0x04, value));
}

function basicConstraints(ca: CertificateSpec["ca"]): Uint8Array {
  if (!ca) return seq(); // cA DEFAULT FALSE is omitted in DER
  return ca.pathLen === undefined
    ? seq(tlv(0x01, Uint8Array.of(0xff)))
    : seq(tlv(0x01, Uint8Array.of(0xff)), integer(Uint8Array.of(ca.pathLen)));
}

/** RFC 5280 named bits (bit 0 = MSB of the first octet), trailing zero bits dropped as DER requires. */
function keyUsage(bits: number): Uint8Array {
  const highest = 31 - Math.clz32(bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (let i = 0; i <= highest; i++) if (bits & (1 << i)) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return tlv(0x03, Uint8Array.of(7 - (highest % 8)), bytes);
}
