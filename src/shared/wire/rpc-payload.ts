/**
 * Node RPC payloads in binary (issue 12 item 4): the `{op, args, from}` calls
 * and `{ok, result | error}` replies of node-rpc.ts as tagged values, so the
 * protocol messages, session ids and documents they carry travel as raw bytes
 * instead of base64 inside JSON (a third larger, and parsed twice). The value
 * model is JSON's plus byte strings; the checkers of node-rpc.ts see the same
 * objects either way.
 *
 *   payload := 0xB5 0x01 value             magic, version 1, one value, nothing after it
 *   value   := 0x00                        null
 *            | 0x01 | 0x02                 false | true
 *            | 0x03 u32                    an integer 0..2^32-1 (always this tag for those)
 *            | 0x04 f64                    any other finite number (IEEE 754 binary64)
 *            | 0x05 u32 n, n bytes         string, UTF-8
 *            | 0x06 u32 n, n bytes         byte string (Uint8Array)
 *            | 0x07 u32 count, count x value                    list
 *            | 0x08 u32 count, count x (u8 n, n bytes, value)    object: key of 1..255 bytes UTF-8, then its value
 *
 * Integers are big-endian. One value has one encoding: integers of u32 range
 * only as 0x03 (-0 too), so an f64 of such a value, NaN or an infinity is refused.
 * Decoding also refuses unknown tags, invalid UTF-8, duplicate keys, counts
 * and lengths beyond the bytes present (checked before anything is
 * allocated), nesting deeper than MAX_RPC_DEPTH, payloads over
 * MAX_RPC_PAYLOAD_BYTES, truncation and trailing bytes. Objects come back as
 * plain objects whose keys are own data properties ("__proto__" included).
 * Decoded byte strings are copies, never views of the payload.
 *
 * The magic byte 0xB5 cannot begin JSON text (nor any UTF-8 character), so a
 * receiver tells a binary payload from a JSON one (json-payload.ts, what node
 * RPC carried before and what hand-written test calls still use) by its
 * first byte, and answers a call in the format it was asked in. Encoding
 * follows JSON.stringify where values have no JSON form: undefined fields
 * are dropped, undefined list items become null, `toJSON` is honoured; a
 * bigint, a non-finite number or a typed array other than Uint8Array throws.
 */
import { decodeJson, encodeJson, RPC_LIMITS } from "./json-payload.ts";

export const RPC_MAGIC = 0xb5;
export const RPC_VERSION = 0x01;
/** The same bound as JSON node RPC (json-payload.ts RPC_LIMITS): a 16-party phase's messages fit. */
export const MAX_RPC_PAYLOAD_BYTES = RPC_LIMITS.maxBytes;
export const MAX_RPC_DEPTH = RPC_LIMITS.maxDepth;
export const MAX_RPC_KEY_BYTES = 255;
const MAX_U32 = 0xffff_ffff;

const Tag = {
  Null: 0x00,
  False: 0x01,
  True: 0x02,
  U32: 0x03,
  F64: 0x04,
  String: 0x05,
  Bytes: 0x06,
  List: 0x07,
  Object: 0x08,
} as const;

/** A binary payload that is not acceptable (the node-RPC code for it is bad_request). */
export class RpcPayloadError extends Error {
  override name = "RpcPayloadError";
  readonly code = "bad_request";
}

export type RpcPayloadFormat = "binary" | "json";

const textEncoder = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ------------------------------------------------------------------ encoding

/**
 * Small fields go into a scratch buffer; a byte string of BIG_BYTES or more is kept by reference
 * and copied once, into the output, by finish(): protocol messages are not copied on the way.
 */
const SCRATCH_BYTES = 4096;
const BIG_BYTES = 512;

class Writer {
  private readonly parts: Uint8Array[] = [];
  /** Bytes in `parts` plus the scratch buffer's `len`. */
  private total = 0;
  buf = new Uint8Array(SCRATCH_BYTES);
  view = new DataView(this.buf.buffer);
  len = 0;

  private bound(n: number): void {
    if (this.total + this.len + n > MAX_RPC_PAYLOAD_BYTES)
      throw new RangeError(
        `encoded payload exceeds the ${MAX_RPC_PAYLOAD_BYTES}-byte limit for node RPC`,
      );
  }
  /** Starts a new scratch buffer of at least `n` bytes, keeping what the old one holds. */
  private flush(n: number): void {
    if (this.len === 0 && this.buf.length >= n) return;
    if (this.len > 0) {
      this.parts.push(this.buf.subarray(0, this.len));
      this.total += this.len;
    }
    this.buf = new Uint8Array(Math.max(SCRATCH_BYTES, n));
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  ensure(n: number): void {
    this.bound(n);
    if (this.len + n > this.buf.length) this.flush(n);
  }
  u8(x: number): void {
    this.ensure(1);
    this.buf[this.len++] = x;
  }
  u32(x: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, x);
    this.len += 4;
  }
  tagged(tag: number, bytes: Uint8Array): void {
    this.ensure(5);
    this.buf[this.len++] = tag;
    this.view.setUint32(this.len, bytes.length);
    this.len += 4;
    if (bytes.length < BIG_BYTES) {
      this.ensure(bytes.length);
      this.buf.set(bytes, this.len);
      this.len += bytes.length;
      return;
    }
    this.bound(bytes.length);
    this.flush(0);
    this.parts.push(bytes);
    this.total += bytes.length;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.total + this.len);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    out.set(this.buf.subarray(0, this.len), at);
    return out;
  }
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  if (v === null) return w.u8(Tag.Null);
  switch (typeof v) {
    case "boolean":
      return w.u8(v ? Tag.True : Tag.False);
    case "number":
      if (Number.isInteger(v) && v >= 0 && v <= MAX_U32) {
        w.u8(Tag.U32);
        return w.u32(v);
      }
      if (!Number.isFinite(v)) throw new TypeError("cannot encode a non-finite number");
      w.ensure(9);
      w.buf[w.len++] = Tag.F64;
      w.view.setFloat64(w.len, v);
      w.len += 8;
      return;
    case "string":
      return w.tagged(Tag.String, textEncoder.encode(v));
    case "bigint":
      throw new TypeError("cannot encode a bigint");
    case "object":
      break;
    default:
      // Only reached for list items (object fields skip these before calling): null, as JSON.
      return w.u8(Tag.Null);
  }
  if (depth >= MAX_RPC_DEPTH)
    throw new TypeError(`value nested deeper than ${MAX_RPC_DEPTH} levels (or cyclic)`);
  if (v instanceof Uint8Array) return w.tagged(Tag.Bytes, v);
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer)
    throw new TypeError("only Uint8Array byte fields can be encoded");
  const withToJson = v as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === "function") return writeValue(w, withToJson.toJSON(), depth);
  if (Array.isArray(v)) {
    w.u8(Tag.List);
    w.u32(v.length);
    for (const x of v) writeValue(w, x, depth + 1);
    return;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => encodable(x));
  w.u8(Tag.Object);
  w.u32(entries.length);
  for (const [k, x] of entries) {
    const key = textEncoder.encode(k);
    if (key.length < 1 || key.length > MAX_RPC_KEY_BYTES)
      throw new TypeError(`object key of ${key.length} bytes (must be 1..${MAX_RPC_KEY_BYTES})`);
    w.u8(key.length);
    w.ensure(key.length);
    w.buf.set(key, w.len);
    w.len += key.length;
    writeValue(w, x, depth + 1);
  }
}

/** What JSON.stringify keeps as an object field. */
function encodable(x: unknown): boolean {
  return x !== undefined && typeof x !== "function" && typeof x !== "symbol";
}

/** Encodes `value` as a binary node RPC payload; throws past MAX_RPC_PAYLOAD_BYTES. */
export function encodeRpcPayload(value: unknown): Uint8Array {
  const w = new Writer();
  w.u8(RPC_MAGIC);
  w.u8(RPC_VERSION);
  writeValue(w, value === undefined ? null : value, 0);
  return w.finish();
}

// ------------------------------------------------------------------ decoding

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get left(): number {
    return this.buf.length - this.pos;
  }
  need(n: number, what: string): void {
    if (n > this.left)
      throw new RpcPayloadError(`truncated payload: ${what} needs ${n} bytes, ${this.left} left`);
  }
  u8(): number {
    this.need(1, "a tag");
    return this.buf[this.pos++]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const x = this.view.getUint32(this.pos);
    this.pos += 4;
    return x;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function text(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new RpcPayloadError(`${what} is not valid UTF-8`);
  }
}

function readValue(r: Reader, depth: number): unknown {
  const tag = r.u8();
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.U32:
      return r.u32("an integer");
    case Tag.F64: {
      r.need(8, "a number");
      const x = r.view.getFloat64(r.pos);
      r.pos += 8;
      if (!Number.isFinite(x)) throw new RpcPayloadError("a number is not finite");
      if (Number.isInteger(x) && x >= 0 && x <= MAX_U32)
        throw new RpcPayloadError("an integer of u32 range must use the integer tag");
      return x;
    }
    case Tag.String:
      return text(r.take(r.u32("a string length"), "a string"), "a string");
    case Tag.Bytes:
      // A plain Uint8Array copy: the input may be a Buffer, whose slice() would share its memory.
      return new Uint8Array(r.take(r.u32("a byte string length"), "a byte string"));
    case Tag.List:
    case Tag.Object: {
      if (depth >= MAX_RPC_DEPTH)
        throw new RpcPayloadError(`payload nested deeper than ${MAX_RPC_DEPTH} levels`);
      const count = r.u32("a count");
      // Every list item takes at least 1 byte, every object entry at least 3: a count the
      // remaining bytes cannot hold is refused before anything is allocated.
      if (count * (tag === Tag.List ? 1 : 3) > r.left)
        throw new RpcPayloadError(`a count of ${count} exceeds the bytes left`);
      if (tag === Tag.List) {
        const out: unknown[] = [];
        for (let i = 0; i < count; i++) out.push(readValue(r, depth + 1));
        return out;
      }
      const out: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) {
        const n = r.u8();
        if (n < 1) throw new RpcPayloadError("an object key is empty");
        const key = text(r.take(n, "an object key"), "an object key");
        if (Object.hasOwn(out, key)) throw new RpcPayloadError(`duplicate key ${key.slice(0, 64)}`);
        // defineProperty: a "__proto__" key stays data.
        Object.defineProperty(out, key, {
          value: readValue(r, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      throw new RpcPayloadError(`unknown tag 0x${tag.toString(16).padStart(2, "0")}`);
  }
}

/** Decodes an untrusted binary node RPC payload (magic and version included). */
export function decodeRpcPayload(payload: Uint8Array): unknown {
  if (payload.length > MAX_RPC_PAYLOAD_BYTES)
    throw new RpcPayloadError(
      `payload of ${payload.length} bytes exceeds the ${MAX_RPC_PAYLOAD_BYTES}-byte limit`,
    );
  if (payload.length < 2 || payload[0] !== RPC_MAGIC)
    throw new RpcPayloadError("not a binary node RPC payload");
  if (payload[1] !== RPC_VERSION)
    throw new RpcPayloadError(`unknown node RPC payload version ${payload[1]}`);
  const r = new Reader(payload);
  r.pos = 2;
  const v = readValue(r, 0);
  if (r.left !== 0) throw new RpcPayloadError(`${r.left} trailing bytes after the value`);
  return v;
}

/** The format a node RPC payload is in, from its first byte. */
export function rpcPayloadFormat(payload: Uint8Array): RpcPayloadFormat {
  return payload.length > 0 && payload[0] === RPC_MAGIC ? "binary" : "json";
}

/** Decodes a node RPC payload in either format (JSON: json-payload.ts within RPC_LIMITS). */
export function decodeNodePayload(payload: Uint8Array): {
  value: unknown;
  format: RpcPayloadFormat;
} {
  const format = rpcPayloadFormat(payload);
  return {
    value: format === "binary" ? decodeRpcPayload(payload) : decodeJson(payload, RPC_LIMITS),
    format,
  };
}

/** Encodes a node RPC payload in `format`. */
export function encodeNodePayload(value: unknown, format: RpcPayloadFormat = "binary"): Buffer {
  const bytes = format === "binary" ? encodeRpcPayload(value) : encodeJson(value, RPC_LIMITS);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
