/**
 * The active proof encoding (src/shared/wire/active-proof.ts): the frozen vectors
 * (test/vectors/active-proof.json, written once by generate-active-proof.ts) encode, parse and
 * verify as pinned; the label keeps them apart from every other signed statement; the parser
 * refuses a wrong length, label, wallet id length, party index or key, and the encoder what the
 * parser would refuse.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  ACTIVE_PROOF_LABEL,
  ActiveProofError,
  MAX_SIGNED_ACTIVE_PROOF_BYTES,
  encodeActiveProof,
  encodeSignedActiveProof,
  parseActiveProofUnverified,
  parseSignedActiveProofUnverified,
  type ActiveProof,
} from "../../src/shared/wire/active-proof.ts";
import { SEAL_RECEIPT_LABEL } from "../../src/shared/wire/seal-receipt.ts";
import { SHARE_STATE_LABEL } from "../../src/shared/wire/share-state.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";
import { thrown } from "../helpers/thrown.ts";

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/active-proof.json"), "utf8"),
) as {
  channelKey: Json;
  proofs: { description: string; fields: Json; hex: string; signed: string }[];
};
const channelKey = fromJson(vectors.channelKey) as { ed25519Public: Uint8Array };

describe("active proof vectors", () => {
  for (const v of vectors.proofs) {
    it(v.description, () => {
      const fields = fromJson(v.fields) as ActiveProof;
      expect(toHex(encodeActiveProof(fields))).toBe(v.hex);
      expect(parseActiveProofUnverified(fromHex(v.hex))).toEqual(fields);
      const signed = parseSignedActiveProofUnverified(fromHex(v.signed));
      expect(toHex(signed.encoding)).toBe(v.hex);
      expect(signed.proof).toEqual(fields);
      expect(
        ed25519.verify(signed.signature, signed.encoding, channelKey.ed25519Public, {
          zip215: false,
        }),
      ).toBe(true);
    });
  }

  it("starts with its own domain label, which no seal receipt or share-state statement shares", () => {
    for (const v of vectors.proofs) expect(v.hex.startsWith(toHex(ACTIVE_PROOF_LABEL))).toBe(true);
    for (const other of [SEAL_RECEIPT_LABEL, SHARE_STATE_LABEL])
      expect(toHex(ACTIVE_PROOF_LABEL).startsWith(toHex(other))).toBe(false);
  });
});

describe("active proof parsing", () => {
  const base = fromJson(vectors.proofs[0]!.fields) as ActiveProof;
  const good = encodeActiveProof(base);
  const refused = (b: unknown) => thrown(ActiveProofError, () => parseActiveProofUnverified(b));
  /** Offsets: label 19, nonce 32, id length at 51, id from 52. */
  const idLengthAt = 51;
  const tailAt = 52 + base.walletId.length;

  it("refuses a wrong length, label, id length, party index, parties or key", () => {
    expect(refused(good.subarray(0, good.length - 1)).message).toMatch(/must be \d+ bytes/);
    expect(refused(Uint8Array.from([...good, 0])).message).toMatch(/must be \d+ bytes/);
    const label = Uint8Array.from(good);
    label[0]! ^= 1;
    expect(refused(label).message).toMatch(/label mismatch/);
    const idLength = Uint8Array.from(good);
    idLength[idLengthAt] = base.walletId.length + 1;
    expect(refused(idLength).message).toMatch(/must be \d+ bytes/);
    for (const party of [0, 17]) {
      const p = Uint8Array.from(good);
      p[tailAt] = party;
      expect(refused(p).message).toMatch(/party index/);
    }
    // The sharing's n: 1..16 and never below the signer's own index (base is party 1 of 3).
    for (const parties of [0, 17]) {
      const p = Uint8Array.from(good);
      p[tailAt + 38] = parties;
      expect(refused(p).message).toMatch(/parties must be/);
    }
    const above = Uint8Array.from(good);
    above[tailAt] = 4;
    expect(refused(above).message).toMatch(/parties must be/);
    expect(refused("not bytes").code).toBe("bad_request");
    expect(() =>
      parseSignedActiveProofUnverified(new Uint8Array(MAX_SIGNED_ACTIVE_PROOF_BYTES + 1)),
    ).toThrow(ActiveProofError);
  });

  it("the encoder refuses what the parser would", () => {
    const bad = (over: Partial<ActiveProof>) =>
      thrown(ActiveProofError, () => encodeActiveProof({ ...base, ...over })).message;
    expect(bad({ nonce: new Uint8Array(31) })).toMatch(/nonce/);
    expect(bad({ walletId: "no spaces" })).toMatch(/wallet id/);
    expect(bad({ partyIndex: 17 })).toMatch(/party index/);
    expect(bad({ generation: 2 ** 32 })).toMatch(/generation/);
    expect(bad({ publicKey: new Uint8Array(32) })).toMatch(/public key/);
    expect(bad({ parties: 0 })).toMatch(/parties/);
    expect(bad({ publicPackageHash: new Uint8Array(31) })).toMatch(/public package hash/);
    expect(() => encodeSignedActiveProof(good, new Uint8Array(63))).toThrow(ActiveProofError);
  });
});
