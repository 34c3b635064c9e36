/**
 * How the pinned vectors (test/vectors/*.json) write decoded values, shared by
 * the generator and test/shared/wire-vectors.test.ts:
 *
 *  - plain fields (enclave operations, headers, bindings): JSON values, with
 *    every byte string as {"hex": "..."} (lowercase);
 *  - body maps (body.ts), where the value kind is the point: a map is
 *    {"map": [[key, value], ...]} in encoding order, a key a JSON number
 *    (integer key) or string, a value one of {"uint": n}, {"bytes": hex},
 *    {"string": s}, {"bool": b}, {"bytesArray": [hex, ...]}, {"map": [...]}.
 */
import type { BodyKey, BodyMap, BodyValue } from "../../src/shared/wire/body.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Uint8Array -> {"hex": ...}, recursively. */
export function toJson(v: unknown): Json {
  if (v instanceof Uint8Array) return { hex: toHex(v) };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v as Json;
}

/** {"hex": ...} -> Uint8Array, recursively. */
export function fromJson(j: Json): unknown {
  if (Array.isArray(j)) return j.map(fromJson);
  if (j !== null && typeof j === "object") {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === "hex") return fromHex(j.hex as string);
    return Object.fromEntries(Object.entries(j).map(([k, x]) => [k, fromJson(x)]));
  }
  return j;
}

export type TypedValue =
  | { uint: number }
  | { bytes: string }
  | { string: string }
  | { bool: boolean }
  | { bytesArray: string[] }
  | { map: [BodyKey, TypedValue][] };

export function typedOf(v: BodyValue): TypedValue {
  if (typeof v === "number") return { uint: v };
  if (typeof v === "string") return { string: v };
  if (typeof v === "boolean") return { bool: v };
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (Array.isArray(v)) return { bytesArray: (v as readonly Uint8Array[]).map(toHex) };
  return { map: [...(v as BodyMap)].map(([k, x]) => [k, typedOf(x)] as [BodyKey, TypedValue]) };
}

export function valueOf(t: TypedValue): BodyValue {
  if ("uint" in t) return t.uint;
  if ("string" in t) return t.string;
  if ("bool" in t) return t.bool;
  if ("bytes" in t) return fromHex(t.bytes);
  if ("bytesArray" in t) return t.bytesArray.map((h) => fromHex(h));
  return new Map(t.map.map(([k, x]) => [k, valueOf(x)]));
}
