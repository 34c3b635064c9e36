/**
 * Migration 4 (src/host/store/migrations.ts): the wallet's approval policy
 * encoding is stored with the wallet and read back byte for byte; a wallet
 * created before approvals (or without a policy) reads without one; the
 * schema refuses an empty or oversized policy.
 */
import { describe, expect, it } from "vitest";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import {
  commitRefresh,
  currentShare,
  getWallet,
  insertActiveShare,
  insertWallet,
  stagePendingShare,
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

describe("share rows name the policy they are sealed with (migration 9)", () => {
  const p1 = encodePolicy({ quorum: 1, approvers: [approverKeyOf(KeySigner.generate())] });
  const p2 = encodePolicy({ quorum: 1, approvers: [approverKeyOf(KeySigner.generate())] });
  const share = (generation: number) => ({
    walletId: "w-change",
    nodeId: "node-1",
    partyIndex: 1,
    generation,
    sealedShare: Uint8Array.of(generation + 1),
    kmsCiphertextBlob: Uint8Array.of(9),
    kmsKeyId: "key",
  });

  it("a policy change's pending row keeps the new policy until it commits; the current row keeps none (the wallet's)", () => {
    const db = openDatabase({ path: ":memory:" });
    expect(migrate(db).applied).toContain(9);
    insertWallet(db, { ...record("w-change"), policy: p1 });
    insertActiveShare(db, share(0));
    stagePendingShare(db, { ...share(1), sessionId: "ab".repeat(32), policy: p2 });
    // Until the commit the current share is generation 0, sealed with the wallet's policy.
    expect(currentShare(db, "w-change", "node-1").policy).toBeNull();
    commitRefresh(db, "w-change", "node-1", 1);
    const now = currentShare(db, "w-change", "node-1");
    expect(now.generation).toBe(1);
    expect(toHex(now.policy!)).toBe(toHex(p2));
    // The wallet row still says what it was created with; the share row is what loads.
    expect(toHex(getWallet(db, "w-change")!.policy!)).toBe(toHex(p1));
    expect(() =>
      stagePendingShare(db, { ...share(2), policy: new Uint8Array(MAX_POLICY_BYTES + 1) }),
    ).toThrow();
    db.close();
  });
});
