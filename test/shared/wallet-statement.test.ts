/**
 * The wallet statement encoding (src/shared/wire/wallet-statement.ts): the
 * frozen vectors (test/vectors/wallet-statement.json, written once by
 * generate-wallet-statement.ts) encode, parse and verify as pinned, and the
 * parser refuses every non-canonical or out-of-bounds encoding.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  MAX_SIGNED_WALLET_STATEMENT_BYTES,
  MAX_WALLET_STATEMENT_BYTES,
  WALLET_STATEMENT_LABEL,
  encodeWalletStatement,
  parseSignedWalletStatementUnverified,
  parseWalletStatementUnverified,
  type WalletStatement,
} from "../../src/shared/wire/wallet-statement.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/wallet-statement.json"), "utf8"),
) as {
  channelKey: Json;
  statements: { description: string; fields: Json; hex: string; signed: string }[];
};
const channelKey = fromJson(vectors.channelKey) as { ed25519Public: Uint8Array };

describe("wallet statement vectors", () => {
  for (const v of vectors.statements) {
    it(v.description, () => {
      const fields = fromJson(v.fields) as WalletStatement;
      expect(toHex(encodeWalletStatement(fields))).toBe(v.hex);
      expect(parseWalletStatementUnverified(fromHex(v.hex))).toEqual(fields);
      const signed = parseSignedWalletStatementUnverified(fromHex(v.signed));
      expect(toHex(signed.encoding)).toBe(v.hex);
      expect(signed.statement).toEqual(fields);
      expect(
        ed25519.verify(signed.signature, signed.encoding, channelKey.ed25519Public, {
          zip215: false,
        }),
      ).toBe(true);
    });
  }

  it("starts with its domain label", () => {
    for (const v of vectors.statements)
      expect(v.hex.startsWith(toHex(WALLET_STATEMENT_LABEL))).toBe(true);
  });
});

describe("wallet statement parsing", () => {
  const base = fromJson(vectors.statements[0]!.fields) as WalletStatement;
  const good = encodeWalletStatement(base);
  const tail = good.length - 137;
  const patched = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const refuse = (b: unknown, message: RegExp) =>
    expect(() => parseWalletStatementUnverified(b)).toThrow(message);

  it("refuses truncation, trailing bytes and oversize input", () => {
    refuse(good.subarray(0, good.length - 1), /must be \d+ bytes/);
    refuse(Uint8Array.from([...good, 0]), /must be \d+ bytes/);
    refuse(new Uint8Array(MAX_WALLET_STATEMENT_BYTES + 1), /wallet statement must be/);
    refuse("not bytes", /wallet statement must be/);
  });

  it("refuses another label", () => {
    refuse(patched(0, 0x54), /label mismatch/);
  });

  it("refuses a wallet id outside the id pattern", () => {
    refuse(patched(24, 0x2f), /id pattern/);
  });

  it("refuses t > n, t < 2, a party index outside 1..n and n above the maximum", () => {
    refuse(patched(tail, 6), /threshold/);
    refuse(patched(tail, 1), /threshold/);
    refuse(patched(tail + 2, 0), /party index/);
    refuse(patched(tail + 2, 6), /party index/);
    refuse(patched(tail + 1, 17), /parties/);
  });

  it("refuses a policy flag other than 0 or 1, and a non-zero slot without a policy", () => {
    const flagAt = good.length - 33;
    refuse(patched(flagAt, 2), /policy flag/);
    refuse(patched(flagAt, 0), /all zero/);
  });

  it("refuses an encoding of invalid fields", () => {
    expect(() => encodeWalletStatement({ ...base, publicKey: new Uint8Array(32) })).toThrow(
      /public key/,
    );
    expect(() => encodeWalletStatement({ ...base, generation: 2 ** 32 })).toThrow(/generation/);
    expect(() => encodeWalletStatement({ ...base, walletId: "" })).toThrow(/id pattern/);
  });

  it("bounds a signed statement and needs its 64-byte signature", () => {
    expect(() => parseSignedWalletStatementUnverified(good)).toThrow(/wallet statement/);
    expect(() =>
      parseSignedWalletStatementUnverified(new Uint8Array(MAX_SIGNED_WALLET_STATEMENT_BYTES + 1)),
    ).toThrow(/at most/);
  });

  it("gives one encoding per statement: a different generation changes the bytes", () => {
    expect(toHex(encodeWalletStatement({ ...base, generation: 1 }))).not.toBe(toHex(good));
  });
});
