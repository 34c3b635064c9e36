/**
 * The copy-once frame writer (body.ts encodeBodyAfter + frame.ts
 * encodeFrameAround, what rpc-server and rpc-client send): the same bytes as
 * encodeFrame around encodeBody, for the frozen frame vectors and for bodies
 * with large protocol messages, and the same refusals.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  decodeBody,
  encodeBody,
  encodeBodyAfter,
  type BodyMap,
  type BodyValue,
} from "../../src/shared/wire/body.ts";
import {
  encodeFrame,
  encodeFrameAround,
  FRAME_HEADER_LEN,
  FrameType,
  type FrameType as FrameTypeCode,
} from "../../src/shared/wire/frame.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";

const vectors = JSON.parse(
  readFileSync(new URL("../vectors/host-enclave-frame.json", import.meta.url), "utf8"),
) as {
  cases: { fields: { typeCode: number; correlationId: number; body: string }; hex: string }[];
};

const around = (type: FrameTypeCode, id: number, map: BodyMap, max?: number) =>
  encodeFrameAround(type, id, encodeBodyAfter(FRAME_HEADER_LEN, map, max), max);

describe("encodeFrameAround(encodeBodyAfter(...))", () => {
  it("writes the frozen vectors byte for byte", () => {
    for (const c of vectors.cases) {
      const f = c.fields;
      const map = decodeBody(fromHex(f.body));
      expect(toHex(around(f.typeCode as FrameTypeCode, f.correlationId, map))).toBe(c.hex);
    }
  });

  it("equals encodeFrame around encodeBody for bodies of large messages", () => {
    const big = (n: number, fill: number) => new Uint8Array(n).fill(fill);
    const map: BodyMap = new Map<string, BodyValue>([
      ["sessionId", big(32, 7)],
      ["phase", 2],
      ["messages", [big(30_000, 1), big(140_000, 2), big(0, 0)]],
      ["walletId", "w-1"],
    ]);
    const expected = encodeFrame({
      type: FrameType.CEREMONY_STEP,
      correlationId: 0xfffffffe,
      body: encodeBody(map),
    });
    expect(Buffer.from(around(FrameType.CEREMONY_STEP, 0xfffffffe, map))).toEqual(
      Buffer.from(expected),
    );
  });

  it("refuses what encodeFrame refuses", () => {
    const map: BodyMap = new Map();
    expect(() => around(0x42 as FrameTypeCode, 1, map)).toThrow(RangeError);
    expect(() => around(FrameType.HEALTH, -1, map)).toThrow(RangeError);
    expect(() => around(FrameType.HEALTH, 2 ** 32, map)).toThrow(RangeError);
    expect(() =>
      encodeFrameAround(FrameType.HEALTH, 1, new Uint8Array(FRAME_HEADER_LEN - 1)),
    ).toThrow(TypeError);
    // A body over the limit is refused while encoding it, as encodeBody does.
    expect(() => around(FrameType.HEALTH, 1, new Map([["x", new Uint8Array(100)]]), 50)).toThrow();
    expect(() =>
      encodeFrameAround(FrameType.HEALTH, 1, new Uint8Array(FRAME_HEADER_LEN + 60), 50),
    ).toThrow(RangeError);
  });
});
