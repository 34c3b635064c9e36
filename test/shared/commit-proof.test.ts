/**
 * The commit proof's stored encoding and the bound on a peer's receipts
 * (src/shared/wire/commit-proof.ts): round trip, every malformed input refused with
 * CommitProofError (never another exception), nothing past the bounds accepted.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  boundedProofReceipts,
  CommitProofError,
  decodeCommitProof,
  encodeCommitProof,
  MAX_COMMIT_PROOF_BYTES,
} from "../../src/shared/wire/commit-proof.ts";
import { MAX_SIGNED_SEAL_RECEIPT_BYTES } from "../../src/shared/wire/seal-receipt.ts";
import { MAX_PARTIES } from "../../src/shared/wire/protocol-message.ts";

const receipt = fc.uint8Array({ minLength: 1, maxLength: MAX_SIGNED_SEAL_RECEIPT_BYTES });

describe("commit proof", () => {
  it("round-trips any 1..MAX_PARTIES receipts", () => {
    fc.assert(
      fc.property(fc.array(receipt, { minLength: 1, maxLength: MAX_PARTIES }), (rs) => {
        const b = encodeCommitProof(rs);
        expect(b.length).toBeLessThanOrEqual(MAX_COMMIT_PROOF_BYTES);
        expect(decodeCommitProof(b)).toEqual(rs);
      }),
      { numRuns: 200, seed: 12 },
    );
  });

  it("refuses every malformed encoding with CommitProofError only", () => {
    const good = encodeCommitProof([Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
    const bad = [
      good.slice(0, 1),
      good.slice(0, good.length - 1), // truncated
      Uint8Array.of(...good, 0), // trailing byte
      Uint8Array.of(2, ...good.slice(1)), // unknown version
      Uint8Array.of(1, 0), // no receipts
      Uint8Array.of(1, 1, 0, 0), // an empty receipt
      Uint8Array.of(1, 1, 0xff, 0xff, 1), // a receipt longer than any signed receipt
      new Uint8Array(MAX_COMMIT_PROOF_BYTES + 1),
    ];
    for (const b of bad) expect(() => decodeCommitProof(b)).toThrow(CommitProofError);
    expect(() => decodeCommitProof("not bytes")).toThrow(CommitProofError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        try {
          decodeCommitProof(b);
        } catch (e) {
          expect(e).toBeInstanceOf(CommitProofError);
        }
      }),
      { numRuns: 2_000, seed: 13 },
    );
    expect(() => encodeCommitProof([])).toThrow(CommitProofError);
  });

  it("bounds a peer's receipts: a list of 1..MAX_PARTIES byte strings, each no longer than a signed receipt", () => {
    expect(boundedProofReceipts([Uint8Array.of(1)])).toEqual([Uint8Array.of(1)]);
    for (const v of [
      undefined,
      [],
      "x",
      [new Uint8Array(0)],
      [new Uint8Array(MAX_SIGNED_SEAL_RECEIPT_BYTES + 1)],
      [Uint8Array.of(1), "x"],
      Array.from({ length: MAX_PARTIES + 1 }, () => Uint8Array.of(1)),
    ])
      expect(boundedProofReceipts(v)).toBeUndefined();
  });
});
