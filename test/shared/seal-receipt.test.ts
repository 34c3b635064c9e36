/**
 * The seal receipt encoding (src/shared/wire/seal-receipt.ts): the frozen
 * vectors (test/vectors/seal-receipt.json, written once by
 * generate-seal-receipt.ts) encode, parse and verify as pinned, the parser
 * refuses every non-canonical or out-of-bounds encoding, and the enclave's
 * check (src/enclave/seal-receipts.ts) wants one valid receipt from every
 * party of the session.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  MAX_SEAL_RECEIPT_BYTES,
  MAX_SIGNED_SEAL_RECEIPT_BYTES,
  SEAL_RECEIPT_LABEL,
  encodeSealReceipt,
  encodeSignedSealReceipt,
  parseSealReceiptUnverified,
  parseSignedSealReceiptUnverified,
  type SealReceipt,
} from "../../src/shared/wire/seal-receipt.ts";
import { SHARE_STATE_LABEL } from "../../src/shared/wire/share-state.ts";
import {
  ownSealReceipt,
  verifySealReceipts,
  type ReceiptSession,
} from "../../src/enclave/seal-receipts.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/seal-receipt.json"), "utf8"),
) as {
  channelKey: Json;
  receipts: { description: string; fields: Json; hex: string; signed: string }[];
};
const channelKey = fromJson(vectors.channelKey) as { ed25519Public: Uint8Array };

describe("seal receipt vectors", () => {
  for (const v of vectors.receipts) {
    it(v.description, () => {
      const fields = fromJson(v.fields) as SealReceipt;
      expect(toHex(encodeSealReceipt(fields))).toBe(v.hex);
      expect(parseSealReceiptUnverified(fromHex(v.hex))).toEqual(fields);
      const signed = parseSignedSealReceiptUnverified(fromHex(v.signed));
      expect(toHex(signed.encoding)).toBe(v.hex);
      expect(signed.receipt).toEqual(fields);
      expect(
        ed25519.verify(signed.signature, signed.encoding, channelKey.ed25519Public, {
          zip215: false,
        }),
      ).toBe(true);
    });
  }

  it("starts with its own domain label, which no share-state statement shares", () => {
    for (const v of vectors.receipts)
      expect(v.hex.startsWith(toHex(SEAL_RECEIPT_LABEL))).toBe(true);
    expect(toHex(SEAL_RECEIPT_LABEL).startsWith(toHex(SHARE_STATE_LABEL))).toBe(false);
  });
});

describe("seal receipt parsing", () => {
  const base = fromJson(vectors.receipts[0]!.fields) as SealReceipt;
  const good = encodeSealReceipt(base);
  /** Offsets: label 19, session 32, ceremony at 51, id length at 52, id from 53. */
  const ceremonyAt = 51;
  const idLengthAt = 52;
  const tailAt = 53 + base.walletId.length;
  const patched = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const refuse = (b: unknown, message: RegExp) =>
    expect(() => parseSealReceiptUnverified(b)).toThrow(message);

  it("refuses truncation, trailing bytes and oversize input", () => {
    refuse(good.subarray(0, good.length - 1), /must be \d+ bytes/);
    refuse(Uint8Array.from([...good, 0]), /must be \d+ bytes/);
    refuse(new Uint8Array(MAX_SEAL_RECEIPT_BYTES + 1), /seal receipt must be/);
    refuse("not bytes", /seal receipt must be/);
    expect(() =>
      parseSignedSealReceiptUnverified(new Uint8Array(MAX_SIGNED_SEAL_RECEIPT_BYTES + 1)),
    ).toThrow(/at most/);
  });

  it("refuses another label, a sign ceremony, a wrong id length and party 0", () => {
    refuse(patched(0, 0x54), /label mismatch/);
    refuse(patched(ceremonyAt, 2), /ceremony must be dkg \(1\) or refresh \(3\)/);
    refuse(patched(idLengthAt, base.walletId.length + 1), /must be \d+ bytes/);
    refuse(patched(tailAt, 0), /party index/);
  });

  it("refuses to encode what it would not parse", () => {
    expect(() => encodeSealReceipt({ ...base, partyIndex: 17 })).toThrow(/party index/);
    expect(() => encodeSealReceipt({ ...base, sessionId: new Uint8Array(31) })).toThrow(
      /session id/,
    );
    expect(() => encodeSignedSealReceipt(good, new Uint8Array(63))).toThrow(/64 bytes/);
  });
});

describe("the enclave's check: a receipt from every party of the session", () => {
  const secrets = [1, 2, 3].map(() => ed25519.utils.randomSecretKey());
  const keys = new Map(secrets.map((s, i) => [i + 1, ed25519.getPublicKey(s)]));
  const session = (party: number): ReceiptSession => ({
    ceremony: "refresh",
    keys,
    sign: (m) => ed25519.sign(m, secrets[party - 1]!),
  });
  const subject: SealReceipt = {
    sessionId: new Uint8Array(32).fill(7),
    ceremony: "refresh",
    walletId: "w-receipts",
    partyIndex: 1,
    generation: 3,
    publicPackageHash: new Uint8Array(32).fill(9),
  };
  const receiptOf = (party: number, over: Partial<SealReceipt> = {}) =>
    ownSealReceipt(session(party), { ...subject, partyIndex: party, ...over });
  const all = [1, 2, 3].map((p) => receiptOf(p));

  it("accepts all n, in any order", () => {
    expect(() => verifySealReceipts(all, subject, session(1))).not.toThrow();
    expect(() => verifySealReceipts([...all].reverse(), subject, session(2))).not.toThrow();
  });

  it("refuses n - 1 (a holder that never sealed), a duplicate, or a receipt not signed by its party's key", () => {
    expect(() => verifySealReceipts(all.slice(0, 2), subject, session(1))).toThrow(
      /one receipt from each of the session's 3 parties/,
    );
    expect(() => verifySealReceipts([all[0], all[1], all[1]], subject, session(1))).toThrow(
      /party 2 appears twice/,
    );
    // Party 1's key signs a receipt naming party 3: the host cannot make up the missing one.
    const forged = ownSealReceipt(session(1), { ...subject, partyIndex: 3 });
    expect(() => verifySealReceipts([all[0], all[1], forged], subject, session(1))).toThrow(
      /party 3's receipt is not signed/,
    );
    expect(() => verifySealReceipts(undefined, subject, session(1))).toThrow(
      /seal receipts refused/,
    );
  });

  it("refuses a receipt of another session, generation or package", () => {
    for (const over of [
      { sessionId: new Uint8Array(32).fill(8) },
      { generation: 4 },
      { publicPackageHash: new Uint8Array(32).fill(1) },
      { ceremony: "dkg" as const },
    ])
      expect(() =>
        verifySealReceipts([all[0], all[1], receiptOf(3, over)], subject, session(1)),
      ).toThrow(/party 3's receipt is for another session/);
  });
});
