/**
 * The share-state statement encoding (src/shared/wire/share-state.ts): the
 * frozen vectors (test/vectors/share-state.json, written once by
 * generate-share-state.ts) encode, parse and verify as pinned, and the parser
 * refuses every non-canonical or out-of-bounds encoding.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  MAX_SHARE_STATE_BYTES,
  MAX_SIGNED_SHARE_STATE_BYTES,
  SHARE_STATE_LABEL,
  encodeShareState,
  encodeSignedShareState,
  parseShareStateUnverified,
  parseSignedShareStateUnverified,
  type ShareState,
} from "../../src/shared/wire/share-state.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/share-state.json"), "utf8"),
) as {
  channelKey: Json;
  statements: { description: string; fields: Json; hex: string; signed: string }[];
};
const channelKey = fromJson(vectors.channelKey) as { ed25519Public: Uint8Array };

describe("share-state statement vectors", () => {
  for (const v of vectors.statements) {
    it(v.description, () => {
      const fields = fromJson(v.fields) as ShareState;
      expect(toHex(encodeShareState(fields))).toBe(v.hex);
      expect(parseShareStateUnverified(fromHex(v.hex))).toEqual(fields);
      const signed = parseSignedShareStateUnverified(fromHex(v.signed));
      expect(toHex(signed.encoding)).toBe(v.hex);
      expect(signed.statement).toEqual(fields);
      expect(
        ed25519.verify(signed.signature, signed.encoding, channelKey.ed25519Public, {
          zip215: false,
        }),
      ).toBe(true);
    });
  }

  it("starts with its domain label, which no wallet statement shares", () => {
    for (const v of vectors.statements)
      expect(v.hex.startsWith(toHex(SHARE_STATE_LABEL))).toBe(true);
    expect(new TextDecoder().decode(SHARE_STATE_LABEL)).not.toContain("wallet-statement");
  });
});

describe("share-state statement parsing", () => {
  const base = fromJson(vectors.statements[0]!.fields) as ShareState;
  const good = encodeShareState(base);
  /** Offsets: label 18, session 32, ceremony at 50, id length at 51, id from 52. */
  const idAt = 52;
  const tailAt = idAt + base.walletId.length;
  const patched = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const refuse = (b: unknown, message: RegExp) =>
    expect(() => parseShareStateUnverified(b)).toThrow(message);

  it("refuses truncation, trailing bytes and oversize input", () => {
    refuse(good.subarray(0, good.length - 1), /must be \d+ bytes/);
    refuse(Uint8Array.from([...good, 0]), /must be \d+ bytes/);
    refuse(new Uint8Array(MAX_SHARE_STATE_BYTES + 1), /share-state statement must be/);
    refuse("not bytes", /share-state statement must be/);
  });

  it("refuses another label (a wallet statement is never read as one)", () => {
    refuse(patched(0, 0x54), /label mismatch/);
  });

  it("refuses a ceremony other than sign or refresh (DKG has no loaded share)", () => {
    for (const code of [0, 1, 4, 255]) refuse(patched(50, code), /ceremony must be/);
  });

  it("refuses a wallet id outside the id pattern", () => {
    refuse(patched(idAt, 0x2f), /id pattern/);
  });

  it("refuses party index 0 and above 16", () => {
    refuse(patched(tailAt, 0), /party index/);
    refuse(patched(tailAt, 17), /party index/);
  });

  it("refuses a policy flag above 1, and a non-zero policy slot without the flag", () => {
    const flagAt = tailAt + 1 + 4 + 32;
    refuse(patched(flagAt, 2), /policy flag/);
    refuse(patched(flagAt, 0), /all zero/);
  });

  it("the encoder refuses what the parser refuses", () => {
    expect(() => encodeShareState({ ...base, partyIndex: 0 })).toThrow(/party index/);
    expect(() => encodeShareState({ ...base, generation: -1 })).toThrow(/generation/);
    expect(() => encodeShareState({ ...base, sessionId: new Uint8Array(31) })).toThrow(
      /session id/,
    );
    expect(() => encodeShareState({ ...base, ceremony: "dkg" as never })).toThrow(/ceremony/);
  });

  it("a signed statement: exactly a 64-byte signature after the encoding, bounded", () => {
    expect(() => encodeSignedShareState(good, new Uint8Array(63))).toThrow(/64 bytes/);
    expect(() => parseSignedShareStateUnverified(new Uint8Array(64))).toThrow(/at most/);
    expect(() =>
      parseSignedShareStateUnverified(new Uint8Array(MAX_SIGNED_SHARE_STATE_BYTES + 1)),
    ).toThrow(/at most/);
  });
});
