/**
 * Bounded JSON for MQTT payloads. Node RPC carries Uint8Array fields (session
 * ids, protocol messages, sealed material); they travel as `{"$b64": "..."}`
 * and come back as Uint8Array. Every payload from the broker is untrusted, so
 * size and nesting are checked before JSON.parse ever sees it.
 *
 * Shape: UTF-8 JSON text (RFC 8259) in which a byte string is an object with
 * the single key "$b64" and canonical padded base64 (RFC 4648 section 4) as
 * its value:
 *
 *   {"sessionId": {"$b64": "q83v..."}, "messages": [{"$b64": "gQEC..."}], "phase": 2}
 *
 * An object whose only key is "$b64" therefore always means bytes; encoding a
 * plain object of that form is refused. Keys such as "__proto__" stay data.
 *
 * Bounds (named limits below): RPC_LIMITS, 8 MiB and 64 levels, for node RPC
 * (a 16-party phase-3 step is ~2.1 MiB of messages, ~2.9 MiB as base64);
 * REQUEST_LIMITS, 64 KiB and 16 levels, for client requests. Size is checked
 * first, then nesting on the raw bytes, then UTF-8, then JSON.parse.
 */

export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
}

/** Node-to-node RPC: large enough for a phase's protocol messages among 16 parties. */
export const RPC_LIMITS: JsonLimits = { maxBytes: 8 << 20, maxDepth: 64 };
/** Client requests are small JSON objects. */
export const REQUEST_LIMITS: JsonLimits = { maxBytes: 64 << 10, maxDepth: 16 };

/** A payload that is not acceptable JSON within the limits. */
export class JsonPayloadError extends Error {
  override name = "JsonPayloadError";
  readonly code = "bad_request";
}

const B64 = "$b64";
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Nesting depth of the JSON text, from the raw bytes: the structural
 * characters are ASCII, which never occurs inside a UTF-8 multi-byte sequence.
 * Stops as soon as the limit is passed, so hostile nesting costs nothing.
 */
function checkDepth(bytes: Uint8Array, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth)
        throw new JsonPayloadError(`JSON nested deeper than ${maxDepth} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** Parses untrusted JSON bytes within `limits`; no byte-field decoding. */
export function parseJson(payload: Uint8Array, limits: JsonLimits): unknown {
  if (payload.length > limits.maxBytes)
    throw new JsonPayloadError(
      `payload of ${payload.length} bytes exceeds the ${limits.maxBytes}-byte limit`,
    );
  checkDepth(payload, limits.maxDepth);
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new JsonPayloadError("payload is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new JsonPayloadError("payload is not valid JSON");
  }
}

function isTagged(o: Record<string, unknown>): boolean {
  const keys = Object.keys(o);
  return keys.length === 1 && keys[0] === B64;
}

function revive(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(revive);
  const o = v as Record<string, unknown>;
  if (isTagged(o)) {
    const s = o[B64];
    if (typeof s !== "string" || s.length % 4 !== 0 || !BASE64.test(s))
      throw new JsonPayloadError("a $b64 field is not canonical base64");
    // A plain Uint8Array, not a Buffer: Buffer#slice shares memory, which callers do not expect.
    return new Uint8Array(Buffer.from(s, "base64"));
  }
  // fromEntries defines own properties, so a "__proto__" key stays data.
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]));
}

/** Parses untrusted JSON bytes within `limits`, turning `{"$b64": ...}` back into Uint8Array. */
export function decodeJson(payload: Uint8Array, limits: JsonLimits = RPC_LIMITS): unknown {
  return revive(parseJson(payload, limits));
}

function toWire(v: unknown, depth: number, maxDepth: number): unknown {
  if (v === null || typeof v === "string" || typeof v === "boolean" || typeof v === "number")
    return v;
  if (typeof v === "bigint") throw new TypeError("cannot encode a bigint as JSON");
  if (typeof v !== "object") return undefined; // functions, symbols, undefined: dropped, as JSON.stringify does
  if (depth >= maxDepth)
    throw new TypeError(`value nested deeper than ${maxDepth} levels (or cyclic)`);
  if (v instanceof Uint8Array)
    return { [B64]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer)
    throw new TypeError("only Uint8Array byte fields can be encoded");
  const withToJson = v as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === "function") return toWire(withToJson.toJSON(), depth, maxDepth);
  if (Array.isArray(v)) return v.map((x) => toWire(x, depth + 1, maxDepth) ?? null);
  const o = v as Record<string, unknown>;
  // Encoding such an object would make it indistinguishable from bytes.
  if (isTagged(o)) throw new TypeError(`an object whose only key is "${B64}" cannot be encoded`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) {
    const w = toWire(x, depth + 1, maxDepth);
    if (w !== undefined)
      Object.defineProperty(out, k, {
        value: w,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}

/** Encodes `value` as JSON bytes with Uint8Array fields as `{"$b64": ...}`; throws past `limits`. */
export function encodeJson(value: unknown, limits: JsonLimits = RPC_LIMITS): Buffer {
  const out = Buffer.from(JSON.stringify(toWire(value, 0, limits.maxDepth) ?? null), "utf8");
  if (out.length > limits.maxBytes)
    throw new RangeError(
      `encoded payload of ${out.length} bytes exceeds the ${limits.maxBytes}-byte limit`,
    );
  return out;
}
