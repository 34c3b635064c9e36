/**
 * Key import envelope, version 1 (issue 11 item 2): an existing secp256k1
 * secret key (and optionally its BIP-32 chain code), encrypted by the client
 * to one attested enclave with HPKE (RFC 9180), so that hosts, the broker and
 * the database only ever carry ciphertext. The client seals
 * (src/client/key-import.ts) after verifying the enclave's attestation
 * document; the enclave opens (src/enclave/lifecycle-import.ts) and splits
 * the key with `rekey`.
 *
 * HPKE: mode_base, DHKEM(X25519, HKDF-SHA256) (KEM 0x0020), HKDF-SHA256 (KDF
 * 0x0001), AES-256-GCM (AEAD 0x0002), via @hpke/core. The recipient key is
 * the X25519 channel key the enclave's attestation document binds
 * (channel-key-binding.ts), per boot. Reusing it is sound here: the peer
 * channel derives its keys from static-static X25519 through HKDF with the
 * "tss-p2p-v1" info, HPKE from an ephemeral-static X25519 through RFC 9180's
 * labelled HKDF ("HPKE-v1" and the suite id), so no key of one is ever a key
 * of the other.
 *
 * Envelope (KEY_IMPORT_ENVELOPE_BYTES: 82 without a chain code, 114 with):
 *
 *   0   1   version = 1
 *   1  32   HPKE enc (the sender's ephemeral X25519 public key)
 *  33   n   HPKE ciphertext of the plaintext (16-byte GCM tag included)
 *
 * Plaintext: u8 flags (0: no chain code, 1: a chain code follows) | 32-byte
 * big-endian secret key | 32-byte chain code when flagged.
 *
 * HPKE info (what the envelope is for; both sides build it, a mismatch fails
 * authentication):
 *
 *   lp("tss-key-import-v1") | lp(wallet id) | lp(client request id) | u8 t | u8 n
 *   | lp(SHA-256 of the recipient's channel key binding)
 *
 * `lp(x)` is a u32 big-endian length, then x; ids are ASCII (patterns.ts).
 * Binding the recipient's binding hash makes an envelope useless to any
 * other enclave boot, and the wallet id, request id, t and n make it useless
 * for any other import.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { concatBytes } from "@noble/hashes/utils.js";
import { CodedError } from "./errors.ts";
import { isId, MAX_ID_LEN } from "./patterns.ts";
import { MAX_PARTIES } from "./protocol-message.ts";

export const KEY_IMPORT_VERSION = 1;
export const KEY_IMPORT_LABEL = new TextEncoder().encode("tss-key-import-v1");
export const KEY_IMPORT_ENC_BYTES = 32;
export const KEY_IMPORT_TAG_BYTES = 16;
export const IMPORTED_SECRET_BYTES = 32;
export const IMPORTED_CHAIN_CODE_BYTES = 32;
/** Envelope lengths: without and with a chain code. */
export const KEY_IMPORT_ENVELOPE_BYTES = [
  1 + KEY_IMPORT_ENC_BYTES + 1 + IMPORTED_SECRET_BYTES + KEY_IMPORT_TAG_BYTES,
  1 +
    KEY_IMPORT_ENC_BYTES +
    1 +
    IMPORTED_SECRET_BYTES +
    IMPORTED_CHAIN_CODE_BYTES +
    KEY_IMPORT_TAG_BYTES,
] as const;
const BINDING_HASH_BYTES = 32;
/**
 * The most parties an import deals to: the dealer sends each other party its
 * share (the library's serialisation, pairwise OT state included: about 52 KB
 * per party) in one peer message of at most MAX_MESSAGE_LEN (256 KiB).
 * Dealing hollow shares (the secret point only, completed by the refresh
 * that follows anyway) would lift this; the core does not export them yet.
 */
export const MAX_IMPORT_PARTIES = 5;

/** What an envelope is for; every field goes into the HPKE info. */
export interface KeyImportContext {
  walletId: string;
  requestId: string;
  threshold: number;
  parties: number;
  /** SHA-256 of the recipient enclave's channel key binding (channelKeyBindingHash). */
  recipientBindingHash: Uint8Array;
}

export class KeyImportError extends CodedError {
  override name = "KeyImportError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

export function keyImportSuite(): CipherSuite {
  return new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
}

function lp(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** The HPKE info of an envelope for `c` (layout above); refuses a context outside the bounds. */
export function keyImportInfo(c: KeyImportContext): Uint8Array {
  if (!isId(c.walletId) || !isId(c.requestId))
    throw new KeyImportError(`wallet and request ids must be 1-${MAX_ID_LEN} id characters`);
  const { threshold: t, parties: n } = c;
  if (!Number.isInteger(n) || !Number.isInteger(t) || t < 2 || t > n || n > MAX_PARTIES)
    throw new KeyImportError(`need integers 2 <= threshold <= parties <= ${MAX_PARTIES}`);
  if (!(c.recipientBindingHash instanceof Uint8Array) || c.recipientBindingHash.length !== 32)
    throw new KeyImportError("the recipient binding hash must be 32 bytes");
  const enc = new TextEncoder();
  return concatBytes(
    lp(KEY_IMPORT_LABEL),
    lp(enc.encode(c.walletId)),
    lp(enc.encode(c.requestId)),
    Uint8Array.of(t, n),
    lp(c.recipientBindingHash.subarray(0, BINDING_HASH_BYTES)),
  );
}

/** The plaintext (layout above). The caller wipes it after sealing. */
export function encodeImportedKey(secretKey: Uint8Array, chainCode?: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== IMPORTED_SECRET_BYTES)
    throw new KeyImportError("the secret key must be 32 bytes");
  if (
    chainCode !== undefined &&
    (!(chainCode instanceof Uint8Array) || chainCode.length !== IMPORTED_CHAIN_CODE_BYTES)
  )
    throw new KeyImportError("the chain code must be 32 bytes");
  const out = new Uint8Array(1 + IMPORTED_SECRET_BYTES + (chainCode ? 32 : 0));
  out[0] = chainCode ? 1 : 0;
  out.set(secretKey, 1);
  if (chainCode) out.set(chainCode, 1 + IMPORTED_SECRET_BYTES);
  return out;
}

/** Views into a plaintext that opened; the caller wipes the plaintext when done. */
export function parseImportedKey(plain: Uint8Array): {
  secretKey: Uint8Array;
  chainCode?: Uint8Array;
} {
  const flagged = plain[0] === 1;
  if (plain.length !== 1 + IMPORTED_SECRET_BYTES + (flagged ? 32 : 0) || plain[0]! > 1)
    throw new KeyImportError("the imported key does not decode");
  return {
    secretKey: plain.subarray(1, 1 + IMPORTED_SECRET_BYTES),
    ...(flagged ? { chainCode: plain.subarray(1 + IMPORTED_SECRET_BYTES) } : {}),
  };
}

/** Splits an envelope into HPKE enc and ciphertext; refuses any other version or length. */
export function splitKeyImportEnvelope(b: Uint8Array): { enc: Uint8Array; ciphertext: Uint8Array } {
  if (
    !(b instanceof Uint8Array) ||
    !(KEY_IMPORT_ENVELOPE_BYTES as readonly number[]).includes(b.length) ||
    b[0] !== KEY_IMPORT_VERSION
  )
    throw new KeyImportError(
      `a key import envelope is version ${KEY_IMPORT_VERSION}, ${KEY_IMPORT_ENVELOPE_BYTES.join(" or ")} bytes`,
    );
  return { enc: b.subarray(1, 1 + KEY_IMPORT_ENC_BYTES), ciphertext: b.subarray(1 + 32) };
}

/** A fresh ArrayBuffer with exactly these bytes (the HPKE API takes ArrayBuffers). */
export const bufferOf = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

/**
 * The envelope of `plaintext` for the X25519 key `recipientPublic` under `info`. `ephemeralSecret`
 * fixes the sender's ephemeral key, for the frozen vectors only (a reused one breaks HPKE).
 */
export async function sealKeyImportEnvelope(
  recipientPublic: Uint8Array,
  info: Uint8Array,
  plaintext: Uint8Array,
  ephemeralSecret?: Uint8Array,
): Promise<Uint8Array> {
  const suite = keyImportSuite();
  const buffer = bufferOf(plaintext);
  try {
    const sender = await suite.createSenderContext({
      recipientPublicKey: await suite.kem.deserializePublicKey(bufferOf(recipientPublic)),
      info: bufferOf(info),
      ...(ephemeralSecret === undefined ? {} : { ekm: bufferOf(ephemeralSecret) }),
    });
    const ciphertext = new Uint8Array(await sender.seal(buffer));
    const enc = new Uint8Array(sender.enc);
    if (enc.length !== KEY_IMPORT_ENC_BYTES) throw new KeyImportError("unexpected HPKE enc length");
    const out = new Uint8Array(1 + enc.length + ciphertext.length);
    out[0] = KEY_IMPORT_VERSION;
    out.set(enc, 1);
    out.set(ciphertext, 1 + enc.length);
    return out;
  } finally {
    new Uint8Array(buffer).fill(0);
  }
}
