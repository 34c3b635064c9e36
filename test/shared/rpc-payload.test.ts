/**
 * Binary node RPC payloads (src/shared/wire/rpc-payload.ts): the frozen
 * vectors of test/vectors/rpc-payload.json decode to their fields and
 * re-encode byte for byte; hostile bytes are refused with bounds checked
 * before allocation; JSON payloads are still told apart and read.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { encodeJson } from "../../src/shared/wire/json-payload.ts";
import {
  decodeNodePayload,
  decodeRpcPayload,
  encodeNodePayload,
  encodeRpcPayload,
  MAX_RPC_DEPTH,
  MAX_RPC_PAYLOAD_BYTES,
  RpcPayloadError,
} from "../../src/shared/wire/rpc-payload.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/rpc-payload.json"), "utf8"),
) as { cases: { description: string; fields: Json; hex: string }[] };

const bin = (...b: number[]) => Uint8Array.from([0xb5, 0x01, ...b]);
const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

describe("binary node RPC payload vectors (rpc-payload.json)", () => {
  for (const c of vectors.cases)
    it(c.description, () => {
      const value = fromJson(c.fields);
      expect(toHex(encodeRpcPayload(value))).toBe(c.hex);
      const back = decodeRpcPayload(fromHex(c.hex));
      expect(back).toEqual(value);
      expect(toHex(encodeRpcPayload(back))).toBe(c.hex);
    });

  it("keeps __proto__ as data and byte strings as copies", () => {
    const v = decodeRpcPayload(fromHex(vectors.cases[4]!.hex)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const p = fromHex(vectors.cases[0]!.hex);
    const call = decodeRpcPayload(p) as { args: { sessionId: Uint8Array } };
    p.fill(0);
    expect(call.args.sessionId[0]).toBe(0x5e);
    // Also from a Buffer, as MQTT hands payloads over (Buffer#slice would share memory).
    const fromBuffer = decodeRpcPayload(Buffer.from(fromHex(vectors.cases[0]!.hex))) as typeof call;
    expect(Buffer.isBuffer(fromBuffer.args.sessionId)).toBe(false);
  });
});

describe("binary node RPC payload bounds", () => {
  it("refuses what is not one canonical value", () => {
    const refused: [Uint8Array, RegExp][] = [
      [Uint8Array.of(0x7b), /not a binary/],
      [Uint8Array.of(0xb5, 0x02, 0x00), /version 2/],
      [bin(), /truncated/],
      [bin(0x00, 0x00), /trailing/],
      [bin(0x09), /unknown tag 0x09/],
      [bin(0x03, 0, 0), /truncated/],
      [bin(0x04, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), /integer tag/], // 1.0 as f64
      [bin(0x04, 0x80, 0, 0, 0, 0, 0, 0, 0), /integer tag/], // -0
      [bin(0x04, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), /not finite/], // NaN
      [bin(0x05, ...u32(2), 0xc3, 0x28), /UTF-8/],
      [bin(0x06, ...u32(0xffff_ffff)), /truncated/],
      [bin(0x07, ...u32(0xffff_ffff), 0x00), /exceeds the bytes left/],
      [bin(0x08, ...u32(1_000), 0x01, 0x61, 0x00), /exceeds the bytes left/],
      [bin(0x08, ...u32(1), 0x00, 0x00, 0x00), /key is empty/],
      [bin(0x08, ...u32(2), 0x01, 0x61, 0x00, 0x01, 0x61, 0x01), /duplicate key a/],
    ];
    for (const [bytes, why] of refused) {
      expect(() => decodeRpcPayload(bytes), toHex(bytes)).toThrow(RpcPayloadError);
      expect(() => decodeRpcPayload(bytes), toHex(bytes)).toThrow(why);
    }
  });

  it("bounds nesting and size", () => {
    const deep = bin(
      ...Array.from({ length: MAX_RPC_DEPTH + 1 }, () => [0x07, 0, 0, 0, 1]).flat(),
      0,
    );
    expect(() => decodeRpcPayload(deep)).toThrow(/deeper than/);
    const ok = bin(...Array.from({ length: MAX_RPC_DEPTH }, () => [0x07, 0, 0, 0, 1]).flat(), 0);
    expect(() => decodeRpcPayload(ok)).not.toThrow();
    expect(() => decodeRpcPayload(new Uint8Array(MAX_RPC_PAYLOAD_BYTES + 1))).toThrow(/exceeds/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeRpcPayload(cyclic)).toThrow(/deeper than/);
    expect(() => encodeRpcPayload({ big: new Uint8Array(MAX_RPC_PAYLOAD_BYTES) })).toThrow(
      /exceeds/,
    );
    expect(() => encodeRpcPayload({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => encodeRpcPayload({ n: 1n })).toThrow(/bigint/);
    expect(() => encodeRpcPayload({ b: new Uint16Array(2) })).toThrow(/Uint8Array/);
    expect(() => encodeRpcPayload({ ["k".repeat(256)]: 1 })).toThrow(/key of 256 bytes/);
  });

  it("encodes as JSON.stringify does where a value has no form", () => {
    const back = decodeRpcPayload(
      encodeRpcPayload({ a: undefined, f: () => 1, l: [undefined, 1], d: { toJSON: () => "x" } }),
    );
    expect(back).toEqual({ l: [null, 1], d: "x" });
  });
});

describe("node payloads in either format", () => {
  const call = {
    op: "step",
    args: { sessionId: new Uint8Array(32).fill(7), phase: 3 },
    from: "n-1",
  };

  it("tells binary from JSON by the first byte and reads both alike", () => {
    const b = decodeNodePayload(encodeNodePayload(call));
    const j = decodeNodePayload(encodeJson(call));
    expect(b.format).toBe("binary");
    expect(j.format).toBe("json");
    expect(b.value).toEqual(call);
    expect(j.value).toEqual(call);
    expect(encodeNodePayload(call, "json")[0]).toBe(0x7b);
  });

  it("is smaller than base64 in JSON for protocol messages", () => {
    const step = { ...call, args: { ...call.args, messages: [new Uint8Array(6_000)] } };
    expect(encodeNodePayload(step).length).toBeLessThan(encodeJson(step).length * 0.8);
  });
});
