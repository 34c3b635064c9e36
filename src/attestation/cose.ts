/**
 * Nitro attestation documents on the wire: a strict, bounded CBOR codec (only the
 * subset the NSM uses), the COSE_Sign1 envelope, and the attestation payload.
 *
 * Every byte decoded here is untrusted: lengths are checked against the bytes that
 * remain before anything is sliced, nesting and item counts are capped, only
 * definite-length items with shortest-form heads are accepted (so one document has
 * one reading), and trailing bytes are an error.
 */
import { concatBytes } from "@noble/hashes/utils.js";

export type AttestationFailure =
  | "malformed"
  | "bad_signature"
  | "untrusted_root"
  | "development_root"
  | "bad_chain"
  | "expired"
  | "not_yet_valid"
  | "debug_enclave"
  | "nonce_mismatch"
  | "stale"
  | "future_timestamp"
  | "pcr_mismatch";

/** Every rejection of an attestation document, with a machine-readable reason. */
export class AttestationError extends Error {
  override name = "AttestationError";
  constructor(
    readonly reason: AttestationFailure,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- CBOR codec

export type Cbor = number | string | boolean | null | Uint8Array | Cbor[] | CborMap | CborTag;
export type CborMap = Map<number | string, Cbor>;
export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: Cbor,
  ) {}
}

export class CborError extends Error {
  override name = "CborError";
}

export interface CborLimits {
  maxDepth: number;
  /** Per array or map. */
  maxItems: number;
}

const DEFAULT_LIMITS: CborLimits = { maxDepth: 8, maxItems: 64 };
// ignoreBOM: a leading U+FEFF is text like any other; stripping it would give "\uFEFFdigest" and "digest" one reading.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes exactly one CBOR item spanning all of `bytes`. */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits = DEFAULT_LIMITS): Cbor {
  const r = new CborReader(bytes, limits);
  const v = r.item(0);
  if (r.pos !== bytes.length)
    throw new CborError(`${bytes.length - r.pos} trailing bytes after the CBOR item`);
  return v;
}

class CborReader {
  pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly limits: CborLimits,
  ) {}

  private byte(): number {
    const v = this.b[this.pos];
    if (v === undefined) throw new CborError("CBOR truncated");
    this.pos += 1;
    return v;
  }

  /** The argument of a head, refusing non-shortest forms and values beyond 2^53. */
  private argument(info: number): number {
    if (info < 24) return info;
    const width = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (width === 0)
      throw new CborError(
        `unsupported CBOR additional info ${info} (indefinite lengths are refused)`,
      );
    let v = 0;
    for (let i = 0; i < width; i++) v = v * 256 + this.byte();
    if (!Number.isSafeInteger(v)) throw new CborError("CBOR integer beyond 2^53");
    const shortest = v < 24 ? 0 : v < 0x100 ? 1 : v < 0x10000 ? 2 : v < 0x100000000 ? 4 : 8;
    if (shortest !== width) throw new CborError("CBOR head not in shortest form");
    return v;
  }

  private take(n: number): Uint8Array {
    if (n > this.b.length - this.pos)
      throw new CborError(
        `CBOR string of ${n} bytes exceeds the ${this.b.length - this.pos} remaining`,
      );
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private count(n: number, what: string): number {
    if (n > this.limits.maxItems)
      throw new CborError(`CBOR ${what} of ${n} items exceeds ${this.limits.maxItems}`);
    return n;
  }

  item(depth: number): Cbor {
    if (depth > this.limits.maxDepth)
      throw new CborError(`CBOR nesting deeper than ${this.limits.maxDepth}`);
    const head = this.byte();
    const major = head >> 5;
    const info = head & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      throw new CborError(`unsupported CBOR simple/float value 0x${head.toString(16)}`);
    }
    const arg = this.argument(info);
    switch (major) {
      case 0:
        return arg;
      case 1:
        return -1 - arg;
      case 2:
        return this.take(arg);
      case 3:
        try {
          return utf8.decode(this.take(arg));
        } catch (e) {
          if (e instanceof CborError) throw e;
          throw new CborError("CBOR text string is not valid UTF-8");
        }
      case 4: {
        const out: Cbor[] = [];
        for (let i = 0, n = this.count(arg, "array"); i < n; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 5: {
        const out: CborMap = new Map();
        for (let i = 0, n = this.count(arg, "map"); i < n; i++) {
          const k = this.item(depth + 1);
          if (typeof k !== "number" && typeof k !== "string")
            throw new CborError("CBOR map key must be an integer or text");
          if (out.has(k)) throw new CborError(`duplicate CBOR map key ${JSON.stringify(k)}`);
          out.set(k, this.item(depth + 1));
        }
        return out;
      }
      default: // 6: tag
        return new CborTag(arg, this.item(depth + 1));
    }
  }
}

/** Encodes the same subset, shortest-form heads, map keys in insertion order. */
export function encodeCbor(v: Cbor): Uint8Array {
  const parts: Uint8Array[] = [];
  writeItem(v, parts);
  return concatBytes(...parts);
}

function head(major: number, arg: number): Uint8Array {
  if (!Number.isSafeInteger(arg) || arg < 0)
    throw new CborError(`cannot encode CBOR argument ${arg}`);
  const m = major << 5;
  if (arg < 24) return Uint8Array.of(m | arg);
  if (arg < 0x100) return Uint8Array.of(m | 24, arg);
  if (arg < 0x10000) return Uint8Array.of(m | 25, arg >> 8, arg & 0xff);
  if (arg < 0x100000000)
    return Uint8Array.of(m | 26, arg >>> 24, (arg >>> 16) & 0xff, (arg >>> 8) & 0xff, arg & 0xff);
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(arg));
  return out;
}

function writeItem(v: Cbor, parts: Uint8Array[]): void {
  if (v === null) parts.push(Uint8Array.of(0xf6));
  else if (v === false) parts.push(Uint8Array.of(0xf4));
  else if (v === true) parts.push(Uint8Array.of(0xf5));
  else if (typeof v === "number") parts.push(v >= 0 ? head(0, v) : head(1, -1 - v));
  else if (typeof v === "string") {
    const s = new TextEncoder().encode(v);
    parts.push(head(3, s.length), s);
  } else if (v instanceof Uint8Array) parts.push(head(2, v.length), v);
  else if (Array.isArray(v)) {
    parts.push(head(4, v.length));
    for (const x of v) writeItem(x, parts);
  } else if (v instanceof Map) {
    parts.push(head(5, v.size));
    for (const [k, x] of v) {
      writeItem(k, parts);
      writeItem(x, parts);
    }
  } else {
    parts.push(head(6, v.tag));
    writeItem(v.value, parts);
  }
}

// ---------------------------------------------------------------- COSE_Sign1

/** RFC 9052 tag for COSE_Sign1; AWS omits it, but the structure is valid either way. */
export const COSE_SIGN1_TAG = 18;
export const COSE_ALG_ES384 = -35;
/** {1: -35}: the only protected header the NSM emits. */
export const ES384_PROTECTED_HEADER = encodeCbor(new Map([[1, COSE_ALG_ES384]]));
/** Generous for a 4-certificate chain plus three 1 KiB user fields (real ones are ~7.5 KiB). */
export const MAX_DOCUMENT_BYTES = 16 * 1024;
export const ES384_SIGNATURE_BYTES = 96;

export interface CoseSign1 {
  protectedHeader: Uint8Array;
  payload: Uint8Array;
  /** r || s, 48 bytes each. */
  signature: Uint8Array;
}

function malformed(msg: string): never {
  throw new AttestationError("malformed", `malformed attestation document: ${msg}`);
}

function decodeOrMalformed(bytes: Uint8Array, what: string, limits?: CborLimits): Cbor {
  try {
    return decodeCbor(bytes, limits);
  } catch (e) {
    if (e instanceof CborError) malformed(`${what}: ${e.message}`);
    throw e;
  }
}

export function decodeCoseSign1(doc: Uint8Array): CoseSign1 {
  if (!(doc instanceof Uint8Array)) malformed("document must be a Uint8Array");
  if (doc.length > MAX_DOCUMENT_BYTES)
    malformed(`${doc.length} bytes exceeds the ${MAX_DOCUMENT_BYTES}-byte limit`);
  let top = decodeOrMalformed(doc, "COSE_Sign1");
  if (top instanceof CborTag) {
    if (top.tag !== COSE_SIGN1_TAG)
      malformed(`unexpected CBOR tag ${top.tag} (only ${COSE_SIGN1_TAG}, COSE_Sign1, is allowed)`);
    top = top.value;
  }
  if (!Array.isArray(top) || top.length !== 4) malformed("COSE_Sign1 must be a 4-element array");
  const [protectedHeader, unprotected, payload, signature] = top as [Cbor, Cbor, Cbor, Cbor];
  if (!(protectedHeader instanceof Uint8Array)) malformed("protected header must be a byte string");
  if (!(unprotected instanceof Map)) malformed("unprotected header must be a map");
  if (!(payload instanceof Uint8Array)) malformed("payload must be a byte string");
  if (!(signature instanceof Uint8Array) || signature.length !== ES384_SIGNATURE_BYTES) {
    malformed(`signature must be a ${ES384_SIGNATURE_BYTES}-byte ES384 signature`);
  }
  const ph = decodeOrMalformed(protectedHeader, "protected header");
  if (!(ph instanceof Map) || ph.get(1) !== COSE_ALG_ES384)
    malformed("protected header alg must be ES384 (-35)");
  // A critical-header list (label 2) would oblige us to understand headers we do not know.
  if (ph.has(2))
    malformed("protected header lists critical parameters this verifier does not understand");
  return { protectedHeader, payload, signature };
}

/** Sig_structure = ["Signature1", body_protected, external_aad = h'', payload] (RFC 9052 §4.4). */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(["Signature1", protectedHeader, new Uint8Array(0), payload]);
}

export function encodeCoseSign1(
  protectedHeader: Uint8Array,
  payload: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  // Untagged, like the NSM.
  return encodeCbor([protectedHeader, new Map(), payload, signature]);
}

// ---------------------------------------------------------------- payload

export const PCR_BYTES = 48;
export const MAX_PCR_INDEX = 31;
export const MAX_USER_FIELD_BYTES = 1024;
export const MAX_CERT_BYTES = 1024;
export const MAX_CABUNDLE = 8;
const MAX_MODULE_ID_CHARS = 256;

export interface AttestationDocument {
  moduleId: string;
  digest: "SHA384";
  /** Milliseconds since the Unix epoch, as signed by the NSM. */
  timestamp: number;
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** DER, the certificate whose key signed the document. */
  certificate: Uint8Array;
  /** DER, root first, then intermediates towards the leaf. */
  cabundle: Uint8Array[];
  publicKey: Uint8Array | null;
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
}

/** The keys and order the NSM emits; the simulated NSM writes exactly these. */
export const PAYLOAD_KEYS = [
  "module_id",
  "digest",
  "timestamp",
  "pcrs",
  "certificate",
  "cabundle",
  "public_key",
  "user_data",
  "nonce",
] as const;
const OPTIONAL_KEYS = new Set<string>(["public_key", "user_data", "nonce"]);

function optionalBytes(v: Cbor | undefined, key: string): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array)) malformed(`${key} must be a byte string or null`);
  if (v.length > MAX_USER_FIELD_BYTES)
    malformed(`${key} of ${v.length} bytes exceeds ${MAX_USER_FIELD_BYTES}`);
  return v;
}

function certBytes(v: Cbor | undefined, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < 1 || v.length > MAX_CERT_BYTES) {
    malformed(`${what} must be a DER certificate of 1..${MAX_CERT_BYTES} bytes`);
  }
  return v;
}

export function parseAttestationPayload(payload: Uint8Array): AttestationDocument {
  const m = decodeOrMalformed(payload, "payload");
  if (!(m instanceof Map)) malformed("payload must be a map");
  for (const k of m.keys()) {
    if (typeof k !== "string" || !(PAYLOAD_KEYS as readonly string[]).includes(k))
      malformed(`unknown payload key ${JSON.stringify(k)}`);
  }
  for (const k of PAYLOAD_KEYS)
    if (!OPTIONAL_KEYS.has(k) && !m.has(k)) malformed(`payload lacks ${k}`);

  const moduleId = m.get("module_id");
  if (
    typeof moduleId !== "string" ||
    moduleId.length === 0 ||
    moduleId.length > MAX_MODULE_ID_CHARS
  ) {
    malformed(`module_id must be non-empty text of at most ${MAX_MODULE_ID_CHARS} characters`);
  }
  if (m.get("digest") !== "SHA384") malformed('digest must be "SHA384"');
  const timestamp = m.get("timestamp");
  if (typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) || timestamp <= 0)
    malformed("timestamp must be a positive integer");

  const rawPcrs = m.get("pcrs");
  if (!(rawPcrs instanceof Map) || rawPcrs.size === 0) malformed("pcrs must be a non-empty map");
  const pcrs = new Map<number, Uint8Array>();
  for (const [i, v] of rawPcrs) {
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i > MAX_PCR_INDEX)
      malformed(`PCR index ${String(i)} outside 0..${MAX_PCR_INDEX}`);
    if (!(v instanceof Uint8Array) || v.length !== PCR_BYTES)
      malformed(`PCR${i} must be ${PCR_BYTES} bytes (SHA-384)`);
    pcrs.set(i, v);
  }

  const certificate = certBytes(m.get("certificate"), "certificate");
  const rawBundle = m.get("cabundle");
  if (!Array.isArray(rawBundle) || rawBundle.length < 1 || rawBundle.length > MAX_CABUNDLE) {
    malformed(`cabundle must hold 1..${MAX_CABUNDLE} certificates`);
  }
  const cabundle = rawBundle.map((c, i) => certBytes(c, `cabundle[${i}]`));

  return {
    moduleId,
    digest: "SHA384",
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBytes(m.get("public_key"), "public_key"),
    userData: optionalBytes(m.get("user_data"), "user_data"),
    nonce: optionalBytes(m.get("nonce"), "nonce"),
  };
}

/** Envelope and payload, structurally valid; nothing about them is trusted yet. */
export function decodeAttestationDocument(doc: Uint8Array): {
  cose: CoseSign1;
  document: AttestationDocument;
} {
  const cose = decodeCoseSign1(doc);
  return { cose, document: parseAttestationPayload(cose.payload) };
}
