/**
 * Protocol message envelope, shared by enclave (which produces and consumes
 * messages through the wasm core) and host (which only routes them).
 *
 * Layout (see crates/dkls23-wasm/src/wire.rs, the authority):
 *   0 version(1) | 1 ceremony | 2 phase | 3 from | 4 to (0 = broadcast) |
 *   5..37 session id | 37.. body
 * Lists: u16 count, then per item u32 length (big-endian) and bytes.
 */

export const WIRE_VERSION = 1;
export const HEADER_LEN = 37;
export const SESSION_ID_LEN = 32;
export const MAX_MESSAGE_LEN = 256 * 1024;
export const MAX_LIST_ITEMS = 64;
export const BROADCAST = 0;
export const MAX_PARTIES = 16;

export type Ceremony = "dkg" | "sign" | "refresh";
const CEREMONY_CODES: Record<Ceremony, number> = { dkg: 1, sign: 2, refresh: 3 };
const CEREMONY_NAMES: Record<number, Ceremony> = { 1: "dkg", 2: "sign", 3: "refresh" };

export interface ProtocolMessage {
  ceremony: Ceremony;
  /** The phase that produced the message (1-based). */
  phase: number;
  from: number;
  /** Recipient party index, or BROADCAST (0). */
  to: number;
  sessionId: Uint8Array;
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
  if (bytes.length < HEADER_LEN) throw new MessageFormatError(`message of ${bytes.length} bytes is shorter than the ${HEADER_LEN}-byte header`);
  if (bytes.length > MAX_MESSAGE_LEN) throw new MessageFormatError(`message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_LEN}`);
  if (bytes[0] !== WIRE_VERSION) throw new MessageFormatError(`unknown wire version ${bytes[0]}`);
  const ceremony = CEREMONY_NAMES[bytes[1]!];
  if (!ceremony) throw new MessageFormatError(`unknown ceremony ${bytes[1]}`);
  const phase = bytes[2]!;
  const from = bytes[3]!;
  const to = bytes[4]!;
  if (phase < 1 || phase > 4) throw new MessageFormatError(`phase ${phase} out of range`);
  if (from < 1 || from > MAX_PARTIES) throw new MessageFormatError(`sender ${from} out of range`);
  if (to > MAX_PARTIES || to === from) throw new MessageFormatError(`recipient ${to} invalid`);
  return { ceremony, phase, from, to, sessionId: bytes.subarray(5, HEADER_LEN), bytes };
}

export function encodeList(items: readonly Uint8Array[]): Uint8Array {
  if (items.length > MAX_LIST_ITEMS) throw new MessageFormatError(`too many messages (${items.length})`);
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
    if (len > MAX_MESSAGE_LEN || bytes.length - at < len) throw new MessageFormatError("message list: item out of bounds");
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
