/**
 * Sealed key share, format versions 1 and 2: the byte layout of what the enclave
 * seals and the host stores (libsql `shares.sealed`) and hands back in
 * LOAD_SHARE. The AES-256-GCM itself lives in the enclave (src/enclave/seal.ts);
 * these are pure encode/parse functions, so the host may read the layout but
 * learns nothing from it.
 *
 * Blob:
 *
 *   0   1  version: 1, or SEALED_SHARE_VERSION (2) for a share sealed with its wallet's
 *           approval policy hash
 *   1  12  nonce (random per seal)
 *  13   n  ciphertext, n = share length, 1 <= n <= MAX_SHARE_BYTES
 *  ..  16  GCM tag
 *
 * A whole blob is SEAL_OVERHEAD + n <= MAX_SEALED_BYTES bytes.
 *
 * Associated data (not stored in the blob: the enclave rebuilds it from the
 * binding the host re-supplies, so a blob moved to another wallet, node,
 * index or generation fails authentication). Integers are u32 big-endian;
 * `lp(x)` is u32 length then x:
 *
 *   lp("tss-signing-layer/sealed-key-share")   domain label
 *   u32 version (1 or 2)                       so a blob cannot be read under another format's rules
 *   lp(UTF-8 wallet id)                        1..MAX_BINDING_ID_BYTES bytes
 *   lp(UTF-8 node id)                          1..MAX_BINDING_ID_BYTES bytes
 *   u32 party index                            1..MAX_PARTY_INDEX
 *   u32 generation                             0..2^32-1
 *   lp(public key)                             33-byte compressed SEC1 point
 *   version 2 only:
 *   lp(policy hash)                            POLICY_HASH_BYTES: SHA-256 of the wallet's
 *                                              approval policy (approval.ts policyHash)
 *
 * Version 2 (issue 9) binds the wallet's approval policy: the host stores
 * the policy encoding beside the wallet and hands it back on LOAD_SHARE; the
 * enclave hashes what it was handed into the associated data, so a swapped
 * (or dropped) policy fails authentication like any other wrong binding. A
 * binding with `policyHash` is version 2, one without it version 1, and a
 * blob's version byte must be its associated data's. Version 1 is still read
 * (shares sealed before approvals; the frozen vectors); the enclave seals
 * version 2 whenever it knows the wallet's policy.
 *
 * Every variable-length field is length-prefixed and every integer
 * fixed-width, so distinct bindings never share an encoding (walletId "ab" +
 * nodeId "c" vs "a" + "bc").
 *
 * Sizes: a DKLs23 share grows by ~52 KiB per other party (its OT state): 105
 * KiB for 3 parties, 210 KiB for 5, ~790 KiB for the 16-party maximum.
 * MAX_SEALED_BYTES (2 MiB) bounds what the host can make the enclave decrypt
 * and fits a frame body (frame.ts MAX_BODY_LEN, 4 MiB) with room for the
 * LOAD_SHARE request's other fields.
 */
import { MAX_BODY_LEN } from "./frame.ts";

/** The version sealed with a policy hash; SEALED_SHARE_VERSION_1 (no policy) is still read. */
export const SEALED_SHARE_VERSION = 2;
export const SEALED_SHARE_VERSION_1 = 1;
export type SealedShareVersion = typeof SEALED_SHARE_VERSION | typeof SEALED_SHARE_VERSION_1;
/** approval.ts POLICY_HASH_BYTES (not imported, so this layout pulls in no hash code). */
export const POLICY_HASH_BYTES = 32;
export const SEAL_NONCE_BYTES = 12;
export const SEAL_TAG_BYTES = 16;
/** version byte + nonce + tag: everything but the ciphertext. */
export const SEAL_OVERHEAD = 1 + SEAL_NONCE_BYTES + SEAL_TAG_BYTES;
export const MAX_SEALED_BYTES = 2 * 1024 * 1024;
export const MAX_SHARE_BYTES = MAX_SEALED_BYTES - SEAL_OVERHEAD;

export const AD_LABEL = new TextEncoder().encode("tss-signing-layer/sealed-key-share");
export const MAX_BINDING_ID_BYTES = 256;
/** A compressed SEC1 point (public-key.ts COMPRESSED_KEY_BYTES; not imported, so this layout pulls in no curve code). */
export const PUBLIC_KEY_BYTES = 33;
/** Party indices are one byte on the protocol wire (1..255); the core uses 1..16. */
export const MAX_PARTY_INDEX = 255;
export const MAX_GENERATION = 0xffff_ffff;
/** The longest associated data: label, version, two maximal ids, index, generation, key, policy hash. */
export const MAX_AD_BYTES =
  4 +
  AD_LABEL.length +
  4 +
  2 * (4 + MAX_BINDING_ID_BYTES) +
  4 +
  4 +
  4 +
  PUBLIC_KEY_BYTES +
  4 +
  POLICY_HASH_BYTES;

// A sealed share must fit a frame body (SEAL_SHARE reply, LOAD_SHARE request) with room for the other fields.
if (MAX_SEALED_BYTES + 64 * 1024 > MAX_BODY_LEN)
  throw new Error("MAX_SEALED_BYTES does not fit a frame body");

/** What a sealed share is bound to. All fields are public. */
export interface SealBinding {
  walletId: string;
  /** The sealing enclave's node identity: its own PCR4 as lowercase hex, never a host-chosen name. */
  nodeId: string;
  /** 1..MAX_PARTY_INDEX */
  partyIndex: number;
  /** 0..2^32-1, as in the core's KeyShare.generation. */
  generation: number;
  /** Compressed SEC1 group public key (33 bytes). */
  publicKey: Uint8Array;
  /** Version 2: SHA-256 of the wallet's approval policy. Absent: a version 1 binding. */
  policyHash?: Uint8Array;
}

/** The format version a binding is encoded under: 2 with a policy hash, 1 without. */
export const bindingVersion = (b: SealBinding): SealedShareVersion =>
  b.policyHash === undefined ? SEALED_SHARE_VERSION_1 : SEALED_SHARE_VERSION;

export interface SealedShareParts {
  /** Absent means version 1, so a version 1 blob parses to exactly its three parts. */
  version?: typeof SEALED_SHARE_VERSION;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/** Bytes that are not a sealed share or binding of this format. Nothing was decrypted. */
export class SealedShareFormatError extends Error {
  override name = "SealedShareFormatError";
}

const malformed = (msg: string) => new SealedShareFormatError(msg);

/** version | nonce | ciphertext | tag. */
export function encodeSealedShare(p: SealedShareParts): Uint8Array {
  if (!(p.nonce instanceof Uint8Array) || p.nonce.length !== SEAL_NONCE_BYTES)
    throw malformed(`nonce must be ${SEAL_NONCE_BYTES} bytes`);
  if (!(p.tag instanceof Uint8Array) || p.tag.length !== SEAL_TAG_BYTES)
    throw malformed(`tag must be ${SEAL_TAG_BYTES} bytes`);
  if (
    !(p.ciphertext instanceof Uint8Array) ||
    p.ciphertext.length === 0 ||
    p.ciphertext.length > MAX_SHARE_BYTES
  ) {
    throw malformed(`ciphertext must be 1..${MAX_SHARE_BYTES} bytes`);
  }
  if (p.version !== undefined && p.version !== SEALED_SHARE_VERSION)
    throw malformed(`version must be absent (1) or ${SEALED_SHARE_VERSION}`);
  const out = new Uint8Array(SEAL_OVERHEAD + p.ciphertext.length);
  out[0] = p.version ?? SEALED_SHARE_VERSION_1;
  out.set(p.nonce, 1);
  out.set(p.ciphertext, 1 + SEAL_NONCE_BYTES);
  out.set(p.tag, out.length - SEAL_TAG_BYTES);
  return out;
}

/** Splits a blob into views of its parts. Unauthenticated: only the enclave's AES-GCM proves it. */
export function parseSealedShare(sealed: Uint8Array): SealedShareParts {
  if (!(sealed instanceof Uint8Array)) throw malformed("sealed share must be a Uint8Array");
  if (sealed.length > MAX_SEALED_BYTES)
    throw malformed(
      `sealed share is ${sealed.length} bytes, more than the ${MAX_SEALED_BYTES}-byte limit`,
    );
  // A zero-length share is never sealed, so the shortest valid blob has one ciphertext byte.
  if (sealed.length <= SEAL_OVERHEAD)
    throw malformed(
      `sealed share is ${sealed.length} bytes, too short to hold the ${SEAL_OVERHEAD}-byte envelope and a share`,
    );
  if (sealed[0] !== SEALED_SHARE_VERSION && sealed[0] !== SEALED_SHARE_VERSION_1)
    throw malformed(`unsupported sealed-share format version ${sealed[0]}`);
  return {
    ...(sealed[0] === SEALED_SHARE_VERSION ? { version: SEALED_SHARE_VERSION } : {}),
    nonce: sealed.subarray(1, 1 + SEAL_NONCE_BYTES),
    ciphertext: sealed.subarray(1 + SEAL_NONCE_BYTES, sealed.length - SEAL_TAG_BYTES),
    tag: sealed.subarray(sealed.length - SEAL_TAG_BYTES),
  };
}

// ------------------------------------------------------------------ associated data

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function idBytes(value: unknown, what: string): Uint8Array {
  if (typeof value !== "string" || value.length === 0)
    throw malformed(`binding ${what} must be a non-empty string`);
  const bytes = utf8.encode(value);
  // A lone surrogate encodes as U+FFFD, so two different strings could share one encoding.
  if (new TextDecoder().decode(bytes) !== value)
    throw malformed(`binding ${what} is not well-formed Unicode`);
  if (bytes.length > MAX_BINDING_ID_BYTES)
    throw malformed(`binding ${what} is longer than ${MAX_BINDING_ID_BYTES} UTF-8 bytes`);
  return bytes;
}

function intIn(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw malformed(`binding ${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function checkPublicKey(pk: unknown): Uint8Array {
  if (
    !(pk instanceof Uint8Array) ||
    pk.length !== PUBLIC_KEY_BYTES ||
    (pk[0] !== 0x02 && pk[0] !== 0x03)
  ) {
    throw malformed(`binding publicKey must be a ${PUBLIC_KEY_BYTES}-byte compressed SEC1 point`);
  }
  return pk;
}

/** The canonical associated data for `binding` (layout above); throws SealedShareFormatError on an invalid binding. */
export function encodeAssociatedData(binding: SealBinding): Uint8Array {
  if (typeof binding !== "object" || binding === null) throw malformed("binding must be an object");
  const walletId = idBytes(binding.walletId, "walletId");
  const nodeId = idBytes(binding.nodeId, "nodeId");
  const partyIndex = intIn(binding.partyIndex, 1, MAX_PARTY_INDEX, "partyIndex");
  const generation = intIn(binding.generation, 0, MAX_GENERATION, "generation");
  const pk = checkPublicKey(binding.publicKey);
  const version = bindingVersion(binding);
  const fields: (Uint8Array | number)[] = [
    AD_LABEL,
    version,
    walletId,
    nodeId,
    partyIndex,
    generation,
    pk,
  ];
  if (version === SEALED_SHARE_VERSION) {
    const h = binding.policyHash;
    if (!(h instanceof Uint8Array) || h.length !== POLICY_HASH_BYTES)
      throw malformed(`binding policyHash must be ${POLICY_HASH_BYTES} bytes`);
    fields.push(h);
  }
  const out = new Uint8Array(
    fields.reduce<number>((n, f) => n + 4 + (typeof f === "number" ? 0 : f.length), 0),
  );
  const view = new DataView(out.buffer);
  let at = 0;
  for (const f of fields) {
    // A number is a u32; bytes are a u32 length and the bytes.
    view.setUint32(at, typeof f === "number" ? f : f.length);
    at += 4;
    if (typeof f !== "number") {
      out.set(f, at);
      at += f.length;
    }
  }
  return out;
}

/** Reads associated data back into its binding (for tests and tools; the enclave only ever encodes). */
export function parseAssociatedData(ad: Uint8Array): SealBinding {
  if (!(ad instanceof Uint8Array) || ad.length > MAX_AD_BYTES)
    throw malformed(`associated data must be a Uint8Array of at most ${MAX_AD_BYTES} bytes`);
  const view = new DataView(ad.buffer, ad.byteOffset, ad.byteLength);
  let at = 0;
  const u32 = (what: string): number => {
    if (ad.length - at < 4) throw malformed(`associated data truncated in ${what}`);
    const n = view.getUint32(at);
    at += 4;
    return n;
  };
  const lp = (what: string, max: number): Uint8Array => {
    const n = u32(`${what} length`);
    if (n > max || ad.length - at < n)
      throw malformed(`associated data: ${what} of ${n} bytes is out of bounds`);
    at += n;
    return ad.subarray(at - n, at);
  };
  const text = (what: string): string => {
    try {
      return utf8Strict.decode(lp(what, MAX_BINDING_ID_BYTES));
    } catch (e) {
      if (e instanceof SealedShareFormatError) throw e;
      throw malformed(`associated data: ${what} is not valid UTF-8`);
    }
  };
  const label = lp("label", AD_LABEL.length);
  if (label.length !== AD_LABEL.length || !label.every((b, i) => b === AD_LABEL[i]))
    throw malformed("associated data does not carry the sealed-share label");
  const version = u32("version");
  if (version !== SEALED_SHARE_VERSION && version !== SEALED_SHARE_VERSION_1)
    throw malformed(`associated data of unsupported version ${version}`);
  const walletId = text("walletId");
  const nodeId = text("nodeId");
  const partyIndex = u32("partyIndex");
  const generation = u32("generation");
  const publicKey = lp("publicKey", PUBLIC_KEY_BYTES).slice();
  const binding: SealBinding = { walletId, nodeId, partyIndex, generation, publicKey };
  if (version === SEALED_SHARE_VERSION)
    binding.policyHash = lp("policyHash", POLICY_HASH_BYTES).slice();
  if (at !== ad.length)
    throw malformed(`${ad.length - at} trailing bytes after the associated data`);
  // The encoder's checks (non-empty ids, index range, point prefix) apply to what was read as well.
  encodeAssociatedData(binding);
  return binding;
}
