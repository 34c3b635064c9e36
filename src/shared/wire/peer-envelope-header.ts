/**
 * Peer envelope: a DKLs23 protocol message as it travels between enclaves,
 * through hosts and the broker. This file is the byte layout only; the
 * cryptography (keys, AES-256-GCM, Ed25519, HKDF) lives in the enclave
 * (src/enclave/peer-envelope.ts). Hosts import this file to route on the
 * clear header without pulling in any of that.
 *
 * Clear header (37 bytes; the core header's offsets, see protocol-message.ts,
 * with another version byte so a plaintext core message is never taken for a
 * protected one):
 *
 *   0   1  version = PROTECTED_WIRE_VERSION (0x81; the core's is 1)
 *   1   1  ceremony: 1 dkg, 2 sign, 3 refresh
 *   2   1  phase that produced it (1..4)
 *   3   1  from: sender party index (1..MAX_PARTIES)
 *   4   1  to: recipient party index, 0 = broadcast
 *   5  32  session id
 *
 * Point to point (to != 0), AES-256-GCM, associated data = bytes 0..37:
 *
 *  37  12  nonce (NONCE_BYTES)
 *  49   n  ciphertext of the core message body (core bytes 37..)
 *  ..  16  tag (TAG_BYTES)
 *
 * Broadcast (to == 0), Ed25519:
 *
 *  37   n  core message body, in clear (broadcasts carry only public values)
 *  ..  64  signature (SIGNATURE_BYTES) over the enclave's signing input
 *
 * Bounds: a whole envelope is at most MAX_SEALED_LEN bytes (a maximal core
 * message, MAX_MESSAGE_LEN, plus the larger overhead), checked before anything
 * else is read.
 *
 * Nothing read here is authenticated: every `readUnverified*` result is a
 * claim of whoever relayed the bytes, good for routing and for choosing the
 * key to check it with, never for a decision. Only PeerSession.open in the
 * enclave establishes that an envelope is genuine.
 */
import {
  BROADCAST,
  HEADER_LEN,
  MAX_MESSAGE_LEN,
  MessageFormatError,
  WIRE_VERSION,
  encodeMessageHeader,
  parseMessage,
  type MessageHeader,
} from "./protocol-message.ts";

export const PROTECTED_WIRE_VERSION = 0x81;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SIGNATURE_BYTES = 64;
/** Bytes a point-to-point envelope adds to the core message: nonce and tag. */
export const P2P_OVERHEAD = NONCE_BYTES + TAG_BYTES;
/** Bytes a broadcast envelope adds to the core message: the signature. */
export const BROADCAST_OVERHEAD = SIGNATURE_BYTES;
/** The largest envelope: a maximal core message plus the larger overhead. */
export const MAX_SEALED_LEN = MAX_MESSAGE_LEN + Math.max(P2P_OVERHEAD, BROADCAST_OVERHEAD);

export type PeerEnvelopeFormatErrorCode =
  | "truncated"
  | "too_large"
  | "wrong_version"
  | "bad_header";

/** The bytes are not an envelope of this layout. */
export class PeerEnvelopeFormatError extends Error {
  override name = "PeerEnvelopeFormatError";
  constructor(
    readonly code: PeerEnvelopeFormatErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The clear header's fields: those of the core header it protects. */
export type PeerEnvelopeHeader = MessageHeader;

/** The envelope's 37-byte clear header for `h` (same checks as the core header). */
export function encodeEnvelopeHeader(h: PeerEnvelopeHeader): Uint8Array {
  const out = encodeMessageHeader(h);
  out[0] = PROTECTED_WIRE_VERSION;
  return out;
}

/**
 * Reads the clear header of an envelope, for routing by hosts. UNAUTHENTICATED:
 * the relay can write any header it likes; only PeerSession.open proves one.
 */
export function readUnverifiedHeader(bytes: Uint8Array): PeerEnvelopeHeader {
  if (!(bytes instanceof Uint8Array))
    throw new PeerEnvelopeFormatError("bad_header", "protected message must be a Uint8Array");
  if (bytes.length < HEADER_LEN)
    throw new PeerEnvelopeFormatError(
      "truncated",
      `protected message of ${bytes.length} bytes is shorter than the ${HEADER_LEN}-byte header`,
    );
  if (bytes.length > MAX_SEALED_LEN)
    throw new PeerEnvelopeFormatError(
      "too_large",
      `protected message of ${bytes.length} bytes exceeds ${MAX_SEALED_LEN}`,
    );
  if (bytes[0] !== PROTECTED_WIRE_VERSION) {
    const what =
      bytes[0] === WIRE_VERSION ? "an unprotected core message" : `wire version ${bytes[0]}`;
    throw new PeerEnvelopeFormatError(
      "wrong_version",
      `expected a protected message (version 0x81), got ${what}`,
    );
  }
  const clear = bytes.slice(0, HEADER_LEN);
  clear[0] = WIRE_VERSION;
  try {
    const { ceremony, phase, from, to } = parseMessage(clear);
    return { ceremony, phase, from, to, sessionId: bytes.slice(5, HEADER_LEN) };
  } catch (e) {
    if (e instanceof MessageFormatError)
      throw new PeerEnvelopeFormatError("bad_header", `protected message header: ${e.message}`);
    throw e;
  }
}

/** A point-to-point envelope's parts; `header` is its raw 37 bytes (the AEAD's associated data). */
export interface PointToPointParts {
  header: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/** A broadcast envelope's parts; `signed` is header and body, the bytes the signature covers. */
export interface BroadcastParts {
  header: Uint8Array;
  body: Uint8Array;
  signature: Uint8Array;
  signed: Uint8Array;
}

/** Checks that an envelope can hold its `overhead` and opens to a core message within bounds. */
function checkOverhead(bytes: Uint8Array, overhead: number): void {
  if (bytes.length < HEADER_LEN + overhead)
    throw new PeerEnvelopeFormatError(
      "truncated",
      `protected message of ${bytes.length} bytes is shorter than header and ${overhead}-byte overhead`,
    );
  if (bytes.length - overhead > MAX_MESSAGE_LEN)
    throw new PeerEnvelopeFormatError(
      "too_large",
      `protected message would open to more than ${MAX_MESSAGE_LEN} bytes`,
    );
}

/** Splits a point-to-point envelope (views into `bytes`). UNAUTHENTICATED, like the header. */
export function readUnverifiedPointToPoint(bytes: Uint8Array): PointToPointParts {
  checkOverhead(bytes, P2P_OVERHEAD);
  return {
    header: bytes.subarray(0, HEADER_LEN),
    nonce: bytes.subarray(HEADER_LEN, HEADER_LEN + NONCE_BYTES),
    ciphertext: bytes.subarray(HEADER_LEN + NONCE_BYTES, bytes.length - TAG_BYTES),
    tag: bytes.subarray(bytes.length - TAG_BYTES),
  };
}

/** Splits a broadcast envelope (views into `bytes`). UNAUTHENTICATED, like the header. */
export function readUnverifiedBroadcast(bytes: Uint8Array): BroadcastParts {
  checkOverhead(bytes, BROADCAST_OVERHEAD);
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
  return {
    header: signed.subarray(0, HEADER_LEN),
    body: signed.subarray(HEADER_LEN),
    signature: bytes.subarray(signed.length),
    signed,
  };
}

/** `len` null: any length. */
function checkPart(b: Uint8Array, len: number | null, what: string): void {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (len !== null && b.length !== len)
    throw new RangeError(`${what} must be ${len} bytes, got ${b.length}`);
}

function concatChecked(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  if (total > MAX_SEALED_LEN)
    throw new RangeError(`protected message of ${total} bytes exceeds ${MAX_SEALED_LEN}`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** header | nonce | ciphertext | tag. */
export function encodePointToPoint(p: PointToPointParts): Uint8Array {
  checkPart(p.header, HEADER_LEN, "header");
  if (p.header[0] !== PROTECTED_WIRE_VERSION || p.header[4] === BROADCAST)
    throw new RangeError("header is not a point-to-point envelope header");
  checkPart(p.nonce, NONCE_BYTES, "nonce");
  checkPart(p.ciphertext, null, "ciphertext");
  checkPart(p.tag, TAG_BYTES, "tag");
  return concatChecked([p.header, p.nonce, p.ciphertext, p.tag]);
}

/** header | body | signature. */
export function encodeBroadcast(p: {
  header: Uint8Array;
  body: Uint8Array;
  signature: Uint8Array;
}): Uint8Array {
  checkPart(p.header, HEADER_LEN, "header");
  if (p.header[0] !== PROTECTED_WIRE_VERSION || p.header[4] !== BROADCAST)
    throw new RangeError("header is not a broadcast envelope header");
  checkPart(p.body, null, "body");
  checkPart(p.signature, SIGNATURE_BYTES, "signature");
  return concatChecked([p.header, p.body, p.signature]);
}
