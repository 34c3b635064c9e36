/**
 * Maps the typed host<->enclave API objects (enclave-ops.ts) onto the
 * channel's body maps (body.ts) and back:
 *
 *   object field        body value
 *   number           -> uint
 *   string           -> string
 *   boolean          -> bool
 *   Uint8Array       -> bytes
 *   Uint8Array[]     -> bytes array
 *   number[] under a key of INT_LISTS (signers, peerParties, repairHelpers,
 *                    reshareDealers, reshareSeats)
 *                    -> bytes, one byte per party index (so each is 0..255)
 *   undefined        -> key omitted
 *
 * Keys are the field names (string keys, at most body.ts MAX_KEY_LEN bytes);
 * an integer key or a nested map in a received body is refused. The bounds
 * are body.ts's (entries, size). Decoding yields plain objects whose every
 * field the receiving side still validates.
 */
import { BodyError, type BodyKey, type BodyMap, type BodyValue } from "./body.ts";

type Plain = number | string | boolean | Uint8Array | Uint8Array[] | number[] | undefined;

/** Fields that are lists of small integers (party indices). */
const INT_LISTS = new Set([
  "signers",
  "peerParties",
  "repairHelpers",
  "reshareDealers",
  "reshareSeats",
]);

export function toBody(obj: object): BodyMap {
  const m = new Map<BodyKey, BodyValue>();
  for (const [k, v] of Object.entries(obj) as [string, Plain][]) {
    if (v === undefined) continue;
    if (INT_LISTS.has(k)) {
      m.set(k, Uint8Array.from(v as number[]));
    } else if (Array.isArray(v)) {
      m.set(k, v as Uint8Array[]);
    } else {
      m.set(k, v as BodyValue);
    }
  }
  return m;
}

export function fromBody<T>(m: BodyMap): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of m) {
    if (typeof k !== "string") throw new BodyError(`unexpected numeric key ${k}`);
    if (INT_LISTS.has(k)) {
      if (!(v instanceof Uint8Array)) throw new BodyError(`${k} must be bytes`);
      setOwn(out, k, [...v]);
    } else if (v instanceof Map) {
      throw new BodyError(`unexpected nested map under ${k}`);
    } else {
      setOwn(out, k, v);
    }
  }
  return out as T;
}

/** Defines `k` as an own property: assigning `out["__proto__"]` would replace the object's prototype instead. */
function setOwn(out: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
}
