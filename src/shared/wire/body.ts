/**
 * Frame bodies: a small typed map encoding, implemented here once and bounded
 * everywhere. Chosen over JSON (no binary, ambiguous numbers, prototype keys)
 * and over a general CBOR library (far more surface than the six value kinds
 * the channel needs; every extra kind is extra parser to get wrong).
 *
 *   body  := map                                  (the top level is always a map)
 *   map   := u16 count (<= MAX_ENTRIES), count x (key value)
 *   key   := 0x00 u8                              integer key 0..255
 *          | 0x01 u8 n, n bytes UTF-8              string key, 1..MAX_KEY_LEN bytes
 *   value := 0x01 u64                             uint, <= Number.MAX_SAFE_INTEGER
 *          | 0x02 u32 n, n bytes                  bytes
 *          | 0x03 u32 n, n bytes UTF-8            string
 *          | 0x04 | 0x05                          false | true
 *          | 0x06 u16 count (<= MAX_ENTRIES), count x (u32 n, n bytes)   array of bytes
 *          | 0x07 map                             nested map (depth <= MAX_DEPTH)
 *
 * Bounds: a body is at most MAX_BODY_LEN (frame.ts, 4 MiB) unless the caller
 * passes a lower limit; MAX_ENTRIES entries per map or array, MAX_DEPTH
 * nested maps, string keys of 1..MAX_KEY_LEN bytes, integer keys
 * 0..MAX_INT_KEY. Lengths announced inside the body are checked against the
 * bytes actually present before anything is read.
 *
 * Integers are big-endian and fixed-width, so every value has one encoding.
 * Decoding rejects duplicate keys (1 and "1" are different keys), unknown tags,
 * invalid UTF-8, out-of-range uints, excess depth or entries, truncation and
 * trailing bytes. Decoded byte values are views into the input body.
 *
 * Maps are JS Maps rather than objects so integer and string keys stay distinct
 * and a key such as "__proto__" is only data.
 */
import { MAX_BODY_LEN } from "./frame.ts";

export const MAX_ENTRIES = 64;
export const MAX_DEPTH = 4;
export const MAX_KEY_LEN = 32;
export const MAX_INT_KEY = 255;

export type BodyKey = number | string;
export type BodyValue = number | Uint8Array | string | boolean | readonly Uint8Array[] | BodyMap;
export type BodyMap = ReadonlyMap<BodyKey, BodyValue>;

const Tag = {
  KeyInt: 0x00,
  KeyString: 0x01,
  Uint: 0x01,
  Bytes: 0x02,
  String: 0x03,
  False: 0x04,
  True: 0x05,
  BytesArray: 0x06,
  Map: 0x07,
} as const;

export class BodyError extends Error {
  override name = "BodyError";
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Builds a body from an object literal, the usual way to write one. */
export function bodyOf(fields: Readonly<Record<string, BodyValue>>): Map<BodyKey, BodyValue> {
  return new Map(Object.entries(fields));
}

// ------------------------------------------------------------------ encoding

export function encodeBody(map: BodyMap, maxLen: number = MAX_BODY_LEN): Uint8Array {
  return encodeBodyAfter(0, map, maxLen);
}

/**
 * The same body, written after `headroom` free bytes of the returned buffer:
 * a frame header goes there (frame.ts encodeFrameAround), so a whole frame is
 * one allocation and the body (protocol messages of tens of KiB) is not copied again.
 */
export function encodeBodyAfter(
  headroom: number,
  map: BodyMap,
  maxLen: number = MAX_BODY_LEN,
): Uint8Array {
  const size = measureMap(map, 1);
  if (size > maxLen) throw new BodyError(`body of ${size} bytes exceeds ${maxLen}`);
  const w = new Writer(headroom + size, headroom);
  writeMap(w, map);
  return w.out;
}

function keyBytes(key: BodyKey): Uint8Array | null {
  if (typeof key === "number") {
    if (!Number.isInteger(key) || key < 0 || key > MAX_INT_KEY)
      throw new BodyError(`integer key ${key} is outside 0..${MAX_INT_KEY}`);
    return null;
  }
  if (typeof key !== "string")
    throw new BodyError(`key of type ${typeof key} is neither integer nor string`);
  const b = encodeString(key, "key");
  if (b.length < 1 || b.length > MAX_KEY_LEN)
    throw new BodyError(`string key of ${b.length} bytes is outside 1..${MAX_KEY_LEN}`);
  return b;
}

function encodeString(s: string, what: string): Uint8Array {
  if (LONE_SURROGATE.test(s))
    throw new BodyError(`${what} is not well-formed Unicode (lone surrogate)`);
  return utf8.encode(s);
}

// Measuring first validates the whole tree and lets encoding allocate once,
// after the size bound has been checked.
function measureMap(map: BodyMap, depth: number): number {
  if (!(map instanceof Map)) throw new BodyError("a body map must be a Map");
  if (depth > MAX_DEPTH) throw new BodyError(`maps nest deeper than ${MAX_DEPTH}`);
  if (map.size > MAX_ENTRIES)
    throw new BodyError(`map has ${map.size} entries; the limit is ${MAX_ENTRIES}`);
  let size = 2;
  for (const [k, v] of map) {
    const kb = keyBytes(k);
    size += kb === null ? 2 : 2 + kb.length;
    size += measureValue(v, depth, k);
  }
  return size;
}

function measureValue(v: BodyValue, depth: number, key: BodyKey): number {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new BodyError(`field ${String(key)}: ${v} is not a uint <= 2^53 - 1`);
    return 9;
  }
  if (typeof v === "boolean") return 1;
  if (typeof v === "string") return 5 + encodeString(v, `field ${String(key)}`).length;
  if (v instanceof Uint8Array) return 5 + v.length;
  if (Array.isArray(v)) {
    if (v.length > MAX_ENTRIES)
      throw new BodyError(
        `field ${String(key)}: array has ${v.length} items; the limit is ${MAX_ENTRIES}`,
      );
    let size = 3;
    for (const item of v) {
      if (!(item instanceof Uint8Array))
        throw new BodyError(`field ${String(key)}: arrays hold only Uint8Array items`);
      size += 4 + item.length;
    }
    return size;
  }
  if (v instanceof Map) return 1 + measureMap(v, depth + 1);
  throw new BodyError(`field ${String(key)}: unsupported value type`);
}

class Writer {
  readonly out: Uint8Array;
  private readonly view: DataView;
  private at: number;
  constructor(size: number, start = 0) {
    this.out = new Uint8Array(size);
    this.view = new DataView(this.out.buffer);
    this.at = start;
  }
  u8(n: number): void {
    this.out[this.at++] = n;
  }
  u16(n: number): void {
    this.view.setUint16(this.at, n);
    this.at += 2;
  }
  u32(n: number): void {
    this.view.setUint32(this.at, n);
    this.at += 4;
  }
  u64(n: number): void {
    this.view.setBigUint64(this.at, BigInt(n));
    this.at += 8;
  }
  raw(b: Uint8Array): void {
    this.out.set(b, this.at);
    this.at += b.length;
  }
}

function writeMap(w: Writer, map: BodyMap): void {
  w.u16(map.size);
  for (const [k, v] of map) {
    const kb = keyBytes(k);
    if (kb === null) {
      w.u8(Tag.KeyInt);
      w.u8(k as number);
    } else {
      w.u8(Tag.KeyString);
      w.u8(kb.length);
      w.raw(kb);
    }
    writeValue(w, v);
  }
}

function writeValue(w: Writer, v: BodyValue): void {
  if (typeof v === "number") {
    w.u8(Tag.Uint);
    w.u64(v);
  } else if (typeof v === "boolean") {
    w.u8(v ? Tag.True : Tag.False);
  } else if (typeof v === "string") {
    const b = utf8.encode(v);
    w.u8(Tag.String);
    w.u32(b.length);
    w.raw(b);
  } else if (v instanceof Uint8Array) {
    w.u8(Tag.Bytes);
    w.u32(v.length);
    w.raw(v);
  } else if (Array.isArray(v)) {
    w.u8(Tag.BytesArray);
    w.u16(v.length);
    for (const item of v as readonly Uint8Array[]) {
      w.u32(item.length);
      w.raw(item);
    }
  } else {
    w.u8(Tag.Map);
    writeMap(w, v as BodyMap);
  }
}

// ------------------------------------------------------------------ decoding

export function decodeBody(
  bytes: Uint8Array,
  maxLen: number = MAX_BODY_LEN,
): Map<BodyKey, BodyValue> {
  if (!(bytes instanceof Uint8Array)) throw new BodyError("body must be a Uint8Array");
  if (bytes.length > maxLen) throw new BodyError(`body of ${bytes.length} bytes exceeds ${maxLen}`);
  const r = new Reader(bytes);
  const map = readMap(r, 1);
  if (r.remaining !== 0) throw new BodyError(`${r.remaining} trailing bytes after the body`);
  return map;
}

class Reader {
  private readonly view: DataView;
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.at;
  }
  private need(n: number, what: string): void {
    if (this.remaining < n) throw new BodyError(`body truncated in ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.at++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const n = this.view.getUint16(this.at);
    this.at += 2;
    return n;
  }
  u32(what: string): number {
    this.need(4, what);
    const n = this.view.getUint32(this.at);
    this.at += 4;
    return n;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const n = this.view.getBigUint64(this.at);
    this.at += 8;
    return n;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

function readMap(r: Reader, depth: number): Map<BodyKey, BodyValue> {
  const count = r.u16("map count");
  if (count > MAX_ENTRIES)
    throw new BodyError(`map announces ${count} entries; the limit is ${MAX_ENTRIES}`);
  const map = new Map<BodyKey, BodyValue>();
  for (let i = 0; i < count; i++) {
    const key = readKey(r);
    if (map.has(key)) throw new BodyError(`duplicate key ${JSON.stringify(key)}`);
    map.set(key, readValue(r, depth, key));
  }
  return map;
}

function readKey(r: Reader): BodyKey {
  const tag = r.u8("key tag");
  if (tag === Tag.KeyInt) return r.u8("integer key");
  if (tag !== Tag.KeyString) throw new BodyError(`unknown key tag 0x${tag.toString(16)}`);
  const len = r.u8("string key length");
  if (len < 1 || len > MAX_KEY_LEN)
    throw new BodyError(`string key of ${len} bytes is outside 1..${MAX_KEY_LEN}`);
  return decodeUtf8(r.take(len, "string key"), "key");
}

function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new BodyError(`${what} is not valid UTF-8`);
  }
}

function readValue(r: Reader, depth: number, key: BodyKey): BodyValue {
  const field = `field ${JSON.stringify(key)}`;
  const tag = r.u8(`${field} tag`);
  switch (tag) {
    case Tag.Uint: {
      const n = r.u64(field);
      if (n > BigInt(Number.MAX_SAFE_INTEGER))
        throw new BodyError(`${field}: uint exceeds 2^53 - 1`);
      return Number(n);
    }
    case Tag.Bytes:
      return r.take(r.u32(`${field} length`), field);
    case Tag.String:
      return decodeUtf8(r.take(r.u32(`${field} length`), field), field);
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.BytesArray: {
      const count = r.u16(`${field} count`);
      if (count > MAX_ENTRIES)
        throw new BodyError(
          `${field}: array announces ${count} items; the limit is ${MAX_ENTRIES}`,
        );
      const items: Uint8Array[] = [];
      for (let i = 0; i < count; i++) items.push(r.take(r.u32(`${field} item length`), field));
      return items;
    }
    case Tag.Map:
      if (depth + 1 > MAX_DEPTH)
        throw new BodyError(`${field}: maps nest deeper than ${MAX_DEPTH}`);
      return readMap(r, depth + 1);
    default:
      throw new BodyError(`${field}: unknown value tag 0x${tag.toString(16)}`);
  }
}

// ------------------------------------------------------------------ typed access

function kindOf(v: BodyValue): string {
  if (typeof v === "number") return "uint";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (v instanceof Uint8Array) return "bytes";
  if (Array.isArray(v)) return "bytes array";
  return "map";
}

function field(map: BodyMap, key: BodyKey, kind: string): BodyValue {
  const v = map.get(key);
  if (v === undefined) throw new BodyError(`field ${JSON.stringify(key)} is missing`);
  if (kindOf(v) !== kind)
    throw new BodyError(`field ${JSON.stringify(key)} is ${kindOf(v)}, expected ${kind}`);
  return v;
}

export const getUint = (m: BodyMap, k: BodyKey): number => field(m, k, "uint") as number;
export const getBytes = (m: BodyMap, k: BodyKey): Uint8Array => field(m, k, "bytes") as Uint8Array;
export const getString = (m: BodyMap, k: BodyKey): string => field(m, k, "string") as string;
export const getBool = (m: BodyMap, k: BodyKey): boolean => field(m, k, "bool") as boolean;
export const getBytesArray = (m: BodyMap, k: BodyKey): readonly Uint8Array[] =>
  field(m, k, "bytes array") as readonly Uint8Array[];
export const getMap = (m: BodyMap, k: BodyKey): BodyMap => field(m, k, "map") as BodyMap;
