/**
 * Sealing of key shares inside the enclave: AES-256-GCM under a KMS data key.
 *
 * Blob layout (format version 1), self-describing so a later format can coexist:
 *
 *   | 1 byte version = 1 | 12 bytes random nonce | ciphertext (= share length) | 16 bytes GCM tag |
 *
 * The associated data is not stored in the blob: the caller re-supplies the binding it expects
 * (wallet, node, party index, generation, group public key), so a sealed share that the untrusted
 * host moves to another wallet, node, index or generation fails authentication.
 *
 * The data key's own wrapping (KMS CiphertextForRecipient) is not authenticated, so a GCM success
 * proves only that whoever sealed knew the data key. The caller must still check the unsealed share
 * against the wallet's public key and the expected generation.
 *
 * Secrets: the caller owns `dataKey`, `shareBytes` and the returned plaintext and wipes them
 * (`fill(0)`) after use. This module wipes the buffers it allocates for plaintext. node:crypto
 * keeps its own copy of the key inside the cipher context, which we cannot reach; it is released
 * with the cipher object.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { concatBytes } from "@noble/hashes/utils.js";

export const SEAL_FORMAT_VERSION = 1;
export const DATA_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** version byte + nonce + tag: everything but the ciphertext. */
export const SEAL_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;
/** A DKLs23 share for 16 parties is tens of KiB; 2 MiB bounds what the host can make us decrypt. */
export const MAX_SEALED_BYTES = 2 * 1024 * 1024;
export const MAX_SHARE_BYTES = MAX_SEALED_BYTES - SEAL_OVERHEAD;

/** Domain separation: these bytes can never be mistaken for another protocol's associated data. */
const AD_LABEL = new TextEncoder().encode("tss-signing-layer/sealed-key-share");
const MAX_ID_BYTES = 256;
const PUBLIC_KEY_BYTES = 33;
const MAX_U32 = 0xffff_ffff;
/** Party indices are one byte on the wire (1..255); the core currently uses 1..16. */
const MAX_PARTY_INDEX = 255;

/** What a sealed share is bound to. All fields are public. */
export interface SealBinding {
  walletId: string;
  nodeId: string;
  /** 1..255 */
  partyIndex: number;
  /** 0..2^32-1, as in the core's KeyShare.generation. */
  generation: number;
  /** Compressed SEC1 group public key (33 bytes). */
  publicKey: Uint8Array;
}

/** version | nonce | ciphertext | tag. */
export type SealedShare = Uint8Array;

export type SealErrorCode =
  /** An input (blob, data key or binding) is structurally invalid; nothing was decrypted. */
  | "malformed"
  /** GCM authentication failed: wrong key, wrong binding, or a modified blob. */
  | "auth_failed";

export class SealError extends Error {
  override name = "SealError";
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const malformed = (msg: string) => new SealError("malformed", msg);

function checkDataKey(dataKey: unknown): Uint8Array {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_BYTES) {
    const got = dataKey instanceof Uint8Array ? `${dataKey.length} bytes` : typeof dataKey;
    throw malformed(`data key must be exactly ${DATA_KEY_BYTES} bytes, got ${got}`);
  }
  return dataKey;
}

function idBytes(value: unknown, what: string): Uint8Array {
  if (typeof value !== "string" || value.length === 0) throw malformed(`binding ${what} must be a non-empty string`);
  const bytes = new TextEncoder().encode(value);
  // A lone surrogate encodes as U+FFFD, so two different strings could share one encoding.
  if (new TextDecoder().decode(bytes) !== value) throw malformed(`binding ${what} is not well-formed Unicode`);
  if (bytes.length > MAX_ID_BYTES) throw malformed(`binding ${what} is longer than ${MAX_ID_BYTES} UTF-8 bytes`);
  return bytes;
}

function intIn(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw malformed(`binding ${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * The canonical associated data for a binding. Every variable-length field carries a u32
 * big-endian length and every integer is a fixed-width u32, so distinct bindings never encode to
 * the same bytes (e.g. walletId "ab" + nodeId "c" vs "a" + "bc"). The format version is included
 * so a blob cannot be reinterpreted under a later format's rules.
 */
export function sealAssociatedData(binding: SealBinding): Uint8Array {
  if (typeof binding !== "object" || binding === null) throw malformed("binding must be an object");
  const walletId = idBytes(binding.walletId, "walletId");
  const nodeId = idBytes(binding.nodeId, "nodeId");
  const partyIndex = intIn(binding.partyIndex, 1, MAX_PARTY_INDEX, "partyIndex");
  const generation = intIn(binding.generation, 0, MAX_U32, "generation");
  const pk = binding.publicKey;
  if (!(pk instanceof Uint8Array) || pk.length !== PUBLIC_KEY_BYTES || (pk[0] !== 0x02 && pk[0] !== 0x03)) {
    throw malformed(`binding publicKey must be a ${PUBLIC_KEY_BYTES}-byte compressed SEC1 point`);
  }

  return concatBytes(
    lengthPrefixed(AD_LABEL),
    u32(SEAL_FORMAT_VERSION),
    lengthPrefixed(walletId),
    lengthPrefixed(nodeId),
    u32(partyIndex),
    u32(generation),
    lengthPrefixed(pk),
  );
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  return concatBytes(u32(bytes.length), bytes);
}


/** Encrypts a share under `dataKey`. Does not wipe `shareBytes` or `dataKey`: the caller owns them. */
export function sealShare(args: { dataKey: Uint8Array; shareBytes: Uint8Array; binding: SealBinding }): SealedShare {
  const key = checkDataKey(args.dataKey);
  const share = args.shareBytes;
  if (!(share instanceof Uint8Array) || share.length === 0) throw malformed("share bytes must be a non-empty Uint8Array");
  if (share.length > MAX_SHARE_BYTES) throw malformed(`share is ${share.length} bytes, more than the ${MAX_SHARE_BYTES} a sealed blob can hold`);
  const ad = sealAssociatedData(args.binding);

  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(ad);
  const out = new Uint8Array(SEAL_OVERHEAD + share.length);
  out[0] = SEAL_FORMAT_VERSION;
  out.set(nonce, 1);
  let off = 1 + NONCE_BYTES;
  for (const part of [cipher.update(share), cipher.final()]) {
    out.set(part, off);
    off += part.length;
  }
  if (off !== out.length - TAG_BYTES) throw new Error(`AES-GCM produced ${off - 1 - NONCE_BYTES} ciphertext bytes for a ${share.length}-byte share`);
  out.set(cipher.getAuthTag(), off);
  return out;
}

/**
 * Decrypts a sealed share bound to `binding`. Returns fresh plaintext that the caller must wipe
 * after use (and wipe `dataKey` too). On any failure throws SealError and no plaintext escapes.
 */
export function unsealShare(args: { dataKey: Uint8Array; sealed: SealedShare; binding: SealBinding }): Uint8Array {
  const sealed = args.sealed;
  if (!(sealed instanceof Uint8Array)) throw malformed("sealed share must be a Uint8Array");
  if (sealed.length > MAX_SEALED_BYTES) throw malformed(`sealed share is ${sealed.length} bytes, more than the ${MAX_SEALED_BYTES}-byte limit`);
  // A zero-length share is never sealed, so the shortest valid blob has one ciphertext byte.
  if (sealed.length <= SEAL_OVERHEAD) throw malformed(`sealed share is ${sealed.length} bytes, too short to hold the ${SEAL_OVERHEAD}-byte envelope and a share`);
  if (sealed[0] !== SEAL_FORMAT_VERSION) throw malformed(`unsupported sealed-share format version ${sealed[0]}`);
  const key = checkDataKey(args.dataKey);
  const ad = sealAssociatedData(args.binding);

  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const ciphertext = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const plaintext = new Uint8Array(ciphertext.length);
  let authenticated = false;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(ad);
    decipher.setAuthTag(tag);
    // GCM decryption streams: update() yields plaintext before final() has checked the tag.
    const head = decipher.update(ciphertext);
    try {
      if (head.length !== plaintext.length) throw new Error("unexpected AES-GCM output length");
      plaintext.set(head);
    } finally {
      head.fill(0);
    }
    const tail = decipher.final();
    if (tail.length !== 0) {
      tail.fill(0);
      throw new Error("unexpected AES-GCM output length");
    }
    authenticated = true;
  } catch {
    // Which check failed is deliberately not distinguished: key, binding and blob all look alike.
  } finally {
    if (!authenticated) plaintext.fill(0);
  }
  if (!authenticated) {
    throw new SealError("auth_failed", "sealed share failed authentication: wrong data key, a different binding (wallet, node, party index, generation or public key), or a modified blob");
  }
  return plaintext;
}
