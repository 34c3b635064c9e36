/**
 * DKLs23 protocol message, version 1, shared by enclave (which produces and
 * consumes messages through the wasm core) and host (which only routes them).
 * crates/dkls23-wasm/src/wire.rs is the authority; the constants here mirror it.
 *
 *   0   1  version = WIRE_VERSION (1)
 *   1   1  ceremony: 1 dkg, 2 sign, 3 refresh, 4 import (a key import's dealing:
 *          src/enclave/lifecycle-import.ts; its body is a dealt share, which never
 *          reaches the core's message parser, so wire.rs has no code 4), 5 repair
 *          (a share repair's terms: src/enclave/lifecycle-repair.ts; never parsed by
 *          the core either), 6 reshare (resharing to a new committee:
 *          src/enclave/lifecycle-reshare.ts, crates/dkls23-wasm/src/reshare.rs)
 *   2   1  phase that produced it (1..4)
 *   3   1  from: sender party index (1..MAX_PARTIES)
 *   4   1  to: recipient party index (1..MAX_PARTIES, not `from`), 0 = BROADCAST
 *   5  32  session id (SESSION_ID_LEN)
 *  37   n  body: postcard encoding fixed by ceremony and phase (opaque here)
 *
 * A whole message is at most MAX_MESSAGE_LEN bytes (the largest honest one,
 * DKG/refresh phase 3 with the OT base setup, is ~140 KiB).
 *
 * Message list (what crosses the wasm boundary):
 *
 *   u16 count (<= MAX_LIST_ITEMS), count x (u32 length (<= MAX_MESSAGE_LEN), bytes)
 *
 * Integers are big-endian. Between enclaves a message travels inside a peer
 * envelope (peer-envelope-header.ts), never in this clear form.
 */

export const WIRE_VERSION = 1;
export const HEADER_LEN = 37;
export const SESSION_ID_LEN = 32;
export const MAX_MESSAGE_LEN = 256 * 1024;
/** At most 16 parties, two messages (broadcast and point-to-point) each, with room to spare. */
export const MAX_LIST_ITEMS = 64;
export const BROADCAST = 0;
export const MAX_PARTIES = 16;
export const MAX_PHASE = 4;

export type Ceremony = "dkg" | "sign" | "refresh" | "import" | "repair" | "reshare";
const CEREMONY_CODES: Record<Ceremony, number> = {
  dkg: 1,
  sign: 2,
  refresh: 3,
  import: 4,
  repair: 5,
  reshare: 6,
};
const CEREMONY_NAMES: Record<number, Ceremony> = {
  1: "dkg",
  2: "sign",
  3: "refresh",
  4: "import",
  5: "repair",
  6: "reshare",
};

/** The header's fields. */
export interface MessageHeader {
  ceremony: Ceremony;
  /** The phase that produced the message (1-based). */
  phase: number;
  from: number;
  /** Recipient party index, or BROADCAST (0). */
  to: number;
  sessionId: Uint8Array;
}

export interface ProtocolMessage extends MessageHeader {
  /** The whole message, header included: what travels and what the core consumes. */
  bytes: Uint8Array;
}

export class MessageFormatError extends Error {
  override name = "MessageFormatError";
}

export function ceremonyCode(c: Ceremony): number {
  return CEREMONY_CODES[c];
}

/** Parses and bounds-checks a header; the body stays opaque here. */
export function parseMessage(bytes: Uint8Array): ProtocolMessage {
  if (!(bytes instanceof Uint8Array)) throw new MessageFormatError("message must be a Uint8Array");
  if (bytes.length < HEADER_LEN)
    throw new MessageFormatError(
      `message of ${bytes.length} bytes is shorter than the ${HEADER_LEN}-byte header`,
    );
  if (bytes.length > MAX_MESSAGE_LEN)
    throw new MessageFormatError(`message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_LEN}`);
  if (bytes[0] !== WIRE_VERSION) throw new MessageFormatError(`unknown wire version ${bytes[0]}`);
  const ceremony = CEREMONY_NAMES[bytes[1]!];
  if (!ceremony) throw new MessageFormatError(`unknown ceremony ${bytes[1]}`);
  const phase = bytes[2]!;
  const from = bytes[3]!;
  const to = bytes[4]!;
  if (phase < 1 || phase > MAX_PHASE) throw new MessageFormatError(`phase ${phase} out of range`);
  if (from < 1 || from > MAX_PARTIES) throw new MessageFormatError(`sender ${from} out of range`);
  if (to > MAX_PARTIES || to === from) throw new MessageFormatError(`recipient ${to} invalid`);
  return { ceremony, phase, from, to, sessionId: bytes.subarray(5, HEADER_LEN), bytes };
}

/** The 37-byte version-1 header for `h`, checked by the same rules parseMessage applies. */
export function encodeMessageHeader(h: MessageHeader): Uint8Array {
  const code = Object.hasOwn(CEREMONY_CODES, h.ceremony) ? CEREMONY_CODES[h.ceremony] : undefined;
  if (code === undefined) throw new MessageFormatError(`unknown ceremony ${String(h.ceremony)}`);
  if (!(h.sessionId instanceof Uint8Array) || h.sessionId.length !== SESSION_ID_LEN)
    throw new MessageFormatError(`session id must be ${SESSION_ID_LEN} bytes`);
  const out = new Uint8Array(HEADER_LEN);
  out.set([WIRE_VERSION, code, h.phase, h.from, h.to], 0);
  out.set(h.sessionId, 5);
  // Out-of-range or non-integer fields do not survive the byte store above unchanged, so parse what was written and compare.
  const back = parseMessage(out);
  if (back.phase !== h.phase || back.from !== h.from || back.to !== h.to)
    throw new MessageFormatError("header fields out of range");
  return out;
}

export function encodeList(items: readonly Uint8Array[]): Uint8Array {
  if (items.length > MAX_LIST_ITEMS)
    throw new MessageFormatError(`too many messages (${items.length})`);
  let total = 2;
  for (const i of items) total += 4 + i.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint16(0, items.length);
  let at = 2;
  for (const i of items) {
    view.setUint32(at, i.length);
    out.set(i, at + 4);
    at += 4 + i.length;
  }
  return out;
}

export function decodeList(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length < 2) throw new MessageFormatError("message list: truncated count");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint16(0);
  if (count > MAX_LIST_ITEMS) throw new MessageFormatError("message list: too many messages");
  const items: Uint8Array[] = [];
  let at = 2;
  for (let k = 0; k < count; k++) {
    if (bytes.length - at < 4) throw new MessageFormatError("message list: truncated length");
    const len = view.getUint32(at);
    at += 4;
    if (len > MAX_MESSAGE_LEN || bytes.length - at < len)
      throw new MessageFormatError("message list: item out of bounds");
    items.push(bytes.subarray(at, at + len));
    at += len;
  }
  if (at !== bytes.length) throw new MessageFormatError("message list: trailing bytes");
  return items;
}

/** The messages among `outgoing` that party `me` must receive. */
export function inboxFor(me: number, outgoing: readonly ProtocolMessage[]): ProtocolMessage[] {
  return outgoing.filter((m) => m.from !== me && (m.to === BROADCAST || m.to === me));
}

export function sameSession(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
