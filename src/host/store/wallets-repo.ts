/** Wallets: public data of a key (group key, chain code, public package) and its current share generation. */
import { col, type Db, type Row } from "./db.ts";
import { StoreError, isConstraintError } from "./errors.ts";
import { CHAIN_CODE_BYTES } from "../../shared/public-key.ts";
import { MAX_POLICY_BYTES } from "../../shared/wire/approval.ts";
import { MAX_PUBLIC_PACKAGE_BYTES, type WalletRecord } from "../../shared/wire/node-rpc.ts";
import {
  checkBytes,
  checkGeneration,
  checkId,
  checkInt,
  checkPublicKey,
  checkTimestamp,
  MAX_PARTY_INDEX,
} from "./validate.ts";

/** A stored wallet: its public data (as every participant gets it) and its share generation. */
export interface Wallet extends WalletRecord {
  currentGeneration: number;
  createdAt: number;
  updatedAt: number;
}

export interface NewWallet extends WalletRecord {
  /** The DKG's generation; the core starts at 0. */
  generation?: number;
}

/** A wallet created before approvals has no policy (migration 4): the field is then absent. */
function policyOf(r: Row): { policy?: Uint8Array } {
  const policy = col.bytesOrNull(r, "policy");
  return policy === null ? {} : { policy };
}

function toWallet(r: Row): Wallet {
  const walletId = col.str(r, "wallet_id");
  // NULL only for a pre-version-2 row whose package migration 2 could not read; never guess one.
  if (r.chain_code === null)
    throw new StoreError(
      "schema",
      `wallet ${walletId} has no chain code (its public package is not of the form migration 2 reads)`,
    );
  return {
    walletId,
    threshold: col.int(r, "threshold"),
    parties: col.int(r, "parties"),
    publicKey: col.bytes(r, "public_key"),
    publicPackage: col.bytes(r, "public_package"),
    chainCode: col.bytes(r, "chain_code"),
    ...policyOf(r),
    currentGeneration: col.int(r, "current_generation"),
    createdAt: col.int(r, "created_at"),
    updatedAt: col.int(r, "updated_at"),
  };
}

const SELECT =
  "SELECT wallet_id, threshold, parties, public_key, public_package, chain_code, policy, current_generation, created_at, updated_at FROM wallets";

/** A wallet's columns, each checked. */
function walletRow(w: NewWallet, now: number) {
  const parties = checkInt(w.parties, 2, MAX_PARTY_INDEX, "parties");
  return {
    wallet_id: checkId(w.walletId, "wallet id"),
    threshold: checkInt(w.threshold, 2, parties, "threshold"),
    parties,
    public_key: checkPublicKey(w.publicKey),
    public_package: checkBytes(w.publicPackage, "public package", 1, MAX_PUBLIC_PACKAGE_BYTES),
    chain_code: checkBytes(w.chainCode, "chain code", CHAIN_CODE_BYTES, CHAIN_CODE_BYTES),
    policy:
      w.policy === undefined ? null : checkBytes(w.policy, "approval policy", 1, MAX_POLICY_BYTES),
    current_generation: checkGeneration(w.generation ?? 0),
    now: checkTimestamp(now),
  };
}

export function insertWallet(db: Db, w: NewWallet, now: number = Date.now()): Wallet {
  const row = walletRow(w, now);
  try {
    db.run(
      `INSERT INTO wallets (wallet_id, threshold, parties, public_key, public_package, chain_code, policy, current_generation, created_at, updated_at)
       VALUES (:wallet_id, :threshold, :parties, :public_key, :public_package, :chain_code, :policy, :current_generation, :now, :now)`,
      row,
    );
  } catch (e) {
    if (isConstraintError(e) && getWallet(db, w.walletId))
      throw new StoreError("conflict", `wallet ${w.walletId} already exists`);
    throw e;
  }
  return requireWallet(db, w.walletId);
}

/**
 * The wallet row a DKG's persist stores its share under: inserted when absent; when present but
 * no share of it is left in this store (what a rolled-back DKG of the same id leaves: the row
 * and its session fence), its public data is replaced by this DKG's; when another node sharing
 * this store already holds a share of it, it must be the same key.
 */
export function putDkgWallet(db: Db, w: NewWallet, now: number = Date.now()): Wallet {
  return db.transaction(() => {
    const have = getWallet(db, w.walletId);
    if (!have) return insertWallet(db, w, now);
    const held = db.get("SELECT count(*) AS c FROM shares WHERE wallet_id = :w", {
      w: have.walletId,
    });
    if (Number(held?.c ?? 0) > 0) {
      if (Buffer.compare(Buffer.from(have.publicKey), Buffer.from(w.publicKey)) !== 0)
        throw new StoreError("conflict", `wallet ${w.walletId} already exists with another key`);
      return have;
    }
    db.run(
      `UPDATE wallets SET threshold = :threshold, parties = :parties, public_key = :public_key,
         public_package = :public_package, chain_code = :chain_code, policy = :policy,
         current_generation = :current_generation, updated_at = :now WHERE wallet_id = :wallet_id`,
      walletRow(w, now),
    );
    return requireWallet(db, w.walletId);
  });
}

/**
 * A committed refresh's wallet shape: its threshold and size (a reshare changes them,
 * src/host/wallet-reshare.ts) and its public package (every refresh changes it). The key
 * and chain code never change; the caller commits in the same transaction.
 */
export function updateWalletShape(
  db: Db,
  walletId: string,
  s: { threshold: number; parties: number; publicPackage: Uint8Array },
  now: number = Date.now(),
): void {
  const parties = checkInt(s.parties, 2, MAX_PARTY_INDEX, "parties");
  db.run(
    `UPDATE wallets SET threshold = :threshold, parties = :parties, public_package = :public_package,
       updated_at = :now WHERE wallet_id = :wallet_id`,
    {
      wallet_id: checkId(walletId, "wallet id"),
      threshold: checkInt(s.threshold, 2, parties, "threshold"),
      parties,
      public_package: checkBytes(s.publicPackage, "public package", 1, MAX_PUBLIC_PACKAGE_BYTES),
      now: checkTimestamp(now),
    },
  );
}

export function getWallet(db: Db, walletId: string): Wallet | undefined {
  const r = db.get(`${SELECT} WHERE wallet_id = :w`, { w: checkId(walletId, "wallet id") });
  return r && toWallet(r);
}

export function requireWallet(db: Db, walletId: string): Wallet {
  const w = getWallet(db, walletId);
  if (!w) throw new StoreError("not_found", `no wallet ${walletId} in this store`);
  return w;
}

/** The wallet's current share generation (bumped by each committed refresh). */
export function generationOf(db: Db, walletId: string): number {
  return requireWallet(db, walletId).currentGeneration;
}

/** Every wallet this store holds, oldest first. */
export function listWalletIds(db: Db): string[] {
  return db
    .all("SELECT wallet_id FROM wallets ORDER BY created_at, wallet_id")
    .map((r) => col.str(r, "wallet_id"));
}
