/**
 * Migration 4 (src/host/store/migrations.ts): the wallet's approval policy
 * encoding is stored with the wallet and read back byte for byte; a wallet
 * created before approvals (or without a policy) reads without one; the
 * schema refuses an empty or oversized policy.
 */
import { describe, expect, it } from "vitest";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import {
  getWallet,
  insertWallet,
  MIGRATIONS,
  migrate,
  openDatabase,
} from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy, MAX_POLICY_BYTES } from "../../src/shared/wire/approval.ts";

const record = (walletId: string) => ({
  walletId,
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(0x11)),
  publicPackage: Uint8Array.of(1, 2, 3),
  chainCode: new Uint8Array(32).fill(0x22),
});

describe("wallet approval policy in the store (migration 4)", () => {
  const policy = encodePolicy({ quorum: 1, approvers: [approverKeyOf(KeySigner.generate())] });

  it("stores the policy with the wallet and reads it back; a wallet without one reads without", () => {
    const db = openDatabase({ path: ":memory:" });
    expect(migrate(db).applied).toContain(4);
    insertWallet(db, { ...record("w-policy"), policy });
    insertWallet(db, record("w-plain"));
    expect(toHex(getWallet(db, "w-policy")!.policy!)).toBe(toHex(policy));
    expect(getWallet(db, "w-plain")!.policy).toBeUndefined();
    expect(() =>
      insertWallet(db, { ...record("w-big"), policy: new Uint8Array(MAX_POLICY_BYTES + 1) }),
    ).toThrow();
    expect(() => insertWallet(db, { ...record("w-empty"), policy: new Uint8Array() })).toThrow();
    db.close();
  });

  it("a wallet stored before migration 4 has no policy after it", () => {
    const db = openDatabase({ path: ":memory:" });
    migrate(db, MIGRATIONS.slice(0, 3));
    db.run(
      `INSERT INTO wallets (wallet_id, threshold, parties, public_key, public_package, chain_code, current_generation, created_at, updated_at)
       VALUES ('w-old', 2, 3, :pk, X'010203', :cc, 0, 1, 1)`,
      { pk: record("x").publicKey, cc: record("x").chainCode },
    );
    expect(migrate(db, MIGRATIONS.slice(0, 4)).applied).toEqual([4]);
    // Later migrations apply on top before the store reads the row.
    migrate(db);
    expect(getWallet(db, "w-old")!.policy).toBeUndefined();
    db.close();
  });
});
