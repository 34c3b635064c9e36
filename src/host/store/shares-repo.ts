/**
 * Sealed key shares, one row per (wallet, node, generation).
 *
 * Life cycle: a DKG stages the first share as 'pending' under its session (stageDkgShare) and
 * activates it once every holder stored theirs (commitDkgShare; a rollback deletes it with
 * abortRefresh's session filter); insertActiveShare stores one active at once (tests, imports of
 * old data). A refresh stages the
 * next generation as 'pending' (stagePendingShare), then either commits (commitRefresh: in one
 * transaction the pending share becomes active, the wallet's generation is bumped and the old
 * share is deleted) or aborts (abortRefresh: the session's pending rows are deleted, the old share
 * stays active). The old share is therefore never deleted before its successor is committed.
 * A pending row names its refresh session (migration 7; null on older rows), so a rollback
 * removes only its own session's rows and a node can ask its peers what became of it.
 * 'retired' is allowed by the schema but not written by this version. A row may name the approval
 * policy its share is sealed with (migration 9: a policy change's refresh); NULL means the
 * wallet's, as created.
 *
 * Rows hold only sealed shares and KMS CiphertextBlobs: nothing here can be decrypted without the
 * enclave's attestation.
 */
import { MAX_POLICY_BYTES } from "../../shared/wire/approval.ts";
import { col, type Db, type Row } from "./db.ts";
import { StoreError, isConstraintError } from "./errors.ts";
import {
  checkBytes,
  checkGeneration,
  checkId,
  checkPartyIndex,
  checkSessionHex,
  checkTimestamp,
} from "./validate.ts";
import { requireWallet } from "./wallets-repo.ts";

/** Matches the enclave's MAX_SEALED_BYTES. */
const MAX_SEALED_SHARE_BYTES = 2 * 1024 * 1024;
/** KMS CiphertextBlobs are at most 6144 bytes. */
const MAX_KMS_BLOB_BYTES = 8 * 1024;
/** A key ARN is at most 2048 characters. */
const MAX_KMS_KEY_ID_CHARS = 2048;

export type ShareStatus = "pending" | "active" | "retired";

export interface StoredShare {
  walletId: string;
  nodeId: string;
  partyIndex: number;
  generation: number;
  status: ShareStatus;
  /** seal.ts blob: version | nonce | ciphertext | tag. */
  sealedShare: Uint8Array;
  /** KMS CiphertextBlob of the data key that sealed the share. */
  kmsCiphertextBlob: Uint8Array;
  kmsKeyId: string;
  /** The DKG or refresh session that staged it (hex); null for rows from before migration 7 (and DKG shares stored active then). */
  sessionId: string | null;
  /** The policy encoding the share is sealed with when a policy change gave it one; null: the wallet's. */
  policy: Uint8Array | null;
  createdAt: number;
}

export interface NewShare {
  walletId: string;
  nodeId: string;
  partyIndex: number;
  generation: number;
  sealedShare: Uint8Array;
  kmsCiphertextBlob: Uint8Array;
  kmsKeyId: string;
  /** The refresh session (hex) a pending share belongs to. */
  sessionId?: string;
  /** A policy change's new policy encoding, which the share is sealed with. */
  policy?: Uint8Array;
}

export interface RefreshCommit {
  fromGeneration: number;
  toGeneration: number;
  /** True when this generation had already been committed for the node: nothing changed. */
  alreadyCommitted: boolean;
}

const STATUSES: readonly string[] = ["pending", "active", "retired"];
const SELECT = `SELECT wallet_id, node_id, party_index, generation, status, sealed_share, kms_ciphertext_blob, kms_key_id, session_id, policy, created_at FROM shares`;

function toShare(r: Row): StoredShare {
  const status = col.str(r, "status");
  if (!STATUSES.includes(status))
    throw new StoreError("schema", `share status ${status} is unknown`);
  return {
    walletId: col.str(r, "wallet_id"),
    nodeId: col.str(r, "node_id"),
    partyIndex: col.int(r, "party_index"),
    generation: col.int(r, "generation"),
    status: status as ShareStatus,
    sealedShare: col.bytes(r, "sealed_share"),
    kmsCiphertextBlob: col.bytes(r, "kms_ciphertext_blob"),
    kmsKeyId: col.str(r, "kms_key_id"),
    sessionId: col.strOrNull(r, "session_id"),
    policy: col.bytesOrNull(r, "policy"),
    createdAt: col.int(r, "created_at"),
  };
}

const conflict = (msg: string) => new StoreError("conflict", msg);

function checkNewShare(s: NewShare, now: number) {
  return {
    w: checkId(s.walletId, "wallet id"),
    n: checkId(s.nodeId, "node id"),
    i: checkPartyIndex(s.partyIndex),
    g: checkGeneration(s.generation),
    sealed: checkBytes(s.sealedShare, "sealed share", 1, MAX_SEALED_SHARE_BYTES),
    blob: checkBytes(s.kmsCiphertextBlob, "KMS ciphertext blob", 1, MAX_KMS_BLOB_BYTES),
    key: checkId(s.kmsKeyId, "KMS key id", MAX_KMS_KEY_ID_CHARS),
    session: s.sessionId === undefined ? null : checkSessionHex(s.sessionId),
    policy:
      s.policy === undefined ? null : checkBytes(s.policy, "approval policy", 1, MAX_POLICY_BYTES),
    now: checkTimestamp(now),
  };
}

function insert(db: Db, s: NewShare, status: "pending" | "active", now: number): StoredShare {
  const p = checkNewShare(s, now);
  try {
    db.run(
      `INSERT INTO shares (wallet_id, node_id, party_index, generation, status, sealed_share, kms_ciphertext_blob, kms_key_id, session_id, policy, created_at)
       VALUES (:w, :n, :i, :g, :status, :sealed, :blob, :key, :session, :policy, :now)`,
      { ...p, status },
    );
  } catch (e) {
    if (isConstraintError(e)) {
      throw conflict(
        `cannot store share of wallet ${s.walletId} for node ${s.nodeId} at generation ${s.generation}: ${(e as Error).message}`,
      );
    }
    throw e;
  }
  return shareAt(db, s.walletId, s.nodeId, s.generation)!;
}

function shareAt(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
): StoredShare | undefined {
  const r = db.get(`${SELECT} WHERE wallet_id = :w AND node_id = :n AND generation = :g`, {
    w: walletId,
    n: nodeId,
    g: generation,
  });
  return r && toShare(r);
}

function activeShare(db: Db, walletId: string, nodeId: string): StoredShare | undefined {
  const r = db.get(`${SELECT} WHERE wallet_id = :w AND node_id = :n AND status = 'active'`, {
    w: walletId,
    n: nodeId,
  });
  return r && toShare(r);
}

/** Stores a DKG's share as active. The wallet must exist at this generation and the node hold no share of it yet. */
export function insertActiveShare(db: Db, s: NewShare, now: number = Date.now()): StoredShare {
  return insertFirstShare(db, s, "active", now);
}

/** A node's first share of a wallet, at the wallet's generation. */
function insertFirstShare(
  db: Db,
  s: NewShare,
  status: "pending" | "active",
  now: number,
): StoredShare {
  checkNewShare(s, now);
  return db.transaction(() => {
    const wallet = requireWallet(db, s.walletId);
    if (wallet.currentGeneration !== s.generation) {
      throw conflict(
        `wallet ${s.walletId} is at generation ${wallet.currentGeneration}, not ${s.generation}`,
      );
    }
    if (listShares(db, s.walletId, s.nodeId).length > 0)
      throw conflict(`node ${s.nodeId} already holds a share of wallet ${s.walletId}`);
    return insert(db, s, status, now);
  });
}

/**
 * Stages a DKG's share as pending (all-or-nothing across holders): the wallet must exist at this
 * generation and the node hold no share of it yet. The wallet stays invisible on this node
 * (currentShare, currentShareInfo need an active share) until commitDkgShare.
 */
export function stageDkgShare(
  db: Db,
  s: NewShare & { sessionId: string },
  now: number = Date.now(),
): StoredShare {
  return insertFirstShare(db, s, "pending", now);
}

/**
 * Activates the node's pending DKG share of session `sessionId`: from now on the wallet is usable
 * on this node. Repeating a commit that already happened is a no-op reported as `alreadyCommitted`.
 */
export function commitDkgShare(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
): { generation: number; alreadyCommitted: boolean } {
  const p = {
    w: checkId(walletId, "wallet id"),
    n: checkId(nodeId, "node id"),
    s: checkSessionHex(sessionId),
  };
  return db.transaction(() => {
    const wallet = requireWallet(db, walletId);
    const mine = listShares(db, walletId, nodeId);
    const active = mine.find((x) => x.status === "active");
    if (active?.sessionId === p.s) return { generation: active.generation, alreadyCommitted: true };
    if (active)
      throw conflict(`node ${nodeId} already holds an active share of wallet ${walletId}`);
    const staged = mine.find((x) => x.status === "pending" && x.sessionId === p.s);
    if (!staged || staged.generation !== wallet.currentGeneration)
      throw conflict(
        `no pending DKG share of wallet ${walletId} for node ${nodeId} from session ${p.s.slice(0, 16)}`,
      );
    db.run(
      "UPDATE shares SET status = 'active' WHERE wallet_id = :w AND node_id = :n AND session_id = :s AND status = 'pending'",
      p,
    );
    return { generation: staged.generation, alreadyCommitted: false };
  });
}

/**
 * Stages a refresh's output (generation g+1) as pending next to the node's active share at g.
 * The active share keeps serving until commitRefresh.
 */
export function stagePendingShare(db: Db, s: NewShare, now: number = Date.now()): StoredShare {
  checkNewShare(s, now);
  return db.transaction(() => {
    const wallet = requireWallet(db, s.walletId);
    const active = activeShare(db, s.walletId, s.nodeId);
    if (!active)
      throw conflict(`node ${s.nodeId} holds no active share of wallet ${s.walletId} to refresh`);
    if (s.generation !== active.generation + 1) {
      throw conflict(
        `a refresh of generation ${active.generation} produces generation ${active.generation + 1}, not ${s.generation}`,
      );
    }
    if (s.partyIndex !== active.partyIndex)
      throw conflict(
        `node ${s.nodeId} is party ${active.partyIndex} of wallet ${s.walletId}, not ${s.partyIndex}`,
      );
    // Another node sharing this store may already have committed, moving the wallet to g+1.
    if (
      wallet.currentGeneration !== active.generation &&
      wallet.currentGeneration !== s.generation
    ) {
      throw conflict(
        `wallet ${s.walletId} is at generation ${wallet.currentGeneration}; cannot stage generation ${s.generation}`,
      );
    }
    if (shareAt(db, s.walletId, s.nodeId, s.generation)) {
      throw conflict(
        `a share of wallet ${s.walletId} for node ${s.nodeId} is already staged at generation ${s.generation}; abortRefresh it first`,
      );
    }
    return insert(db, s, "pending", now);
  });
}

/**
 * In one transaction: activates the pending share at `newGeneration`, bumps the wallet's current
 * generation and deletes the node's older shares. Repeating a commit that already happened is a
 * no-op reported as `alreadyCommitted`.
 */
export function commitRefresh(
  db: Db,
  walletId: string,
  nodeId: string,
  newGeneration: number,
  now: number = Date.now(),
): RefreshCommit {
  checkId(walletId, "wallet id");
  checkId(nodeId, "node id");
  const g = checkGeneration(newGeneration, "new generation");
  if (g === 0) throw new StoreError("invalid", "a refresh commits generation 1 or later");
  checkTimestamp(now);
  return db.transaction(() => {
    const wallet = requireWallet(db, walletId);
    const target = shareAt(db, walletId, nodeId, g);
    if (target?.status === "active") {
      if (wallet.currentGeneration === g)
        return { fromGeneration: g - 1, toGeneration: g, alreadyCommitted: true };
      throw conflict(
        `node ${nodeId}'s share of wallet ${walletId} at generation ${g} is already active but the wallet is at ${wallet.currentGeneration}`,
      );
    }
    if (target?.status !== "pending")
      throw conflict(
        `no pending share of wallet ${walletId} for node ${nodeId} at generation ${g}; stage it first`,
      );
    if (wallet.currentGeneration !== g - 1 && wallet.currentGeneration !== g) {
      throw conflict(
        `wallet ${walletId} is at generation ${wallet.currentGeneration}; cannot commit generation ${g}`,
      );
    }
    const old = activeShare(db, walletId, nodeId);
    if (old?.generation !== g - 1)
      throw conflict(
        `node ${nodeId}'s active share of wallet ${walletId} is not at generation ${g - 1}`,
      );

    // Delete first: shares_one_active admits one active row per node.
    db.run("DELETE FROM shares WHERE wallet_id = :w AND node_id = :n AND generation < :g", {
      w: walletId,
      n: nodeId,
      g,
    });
    const activated = db.run(
      "UPDATE shares SET status = 'active' WHERE wallet_id = :w AND node_id = :n AND generation = :g AND status = 'pending'",
      {
        w: walletId,
        n: nodeId,
        g,
      },
    );
    if (activated !== 1)
      throw new StoreError("conflict", `pending share at generation ${g} vanished during commit`);
    db.run(
      "UPDATE wallets SET current_generation = :g, updated_at = :now WHERE wallet_id = :w AND current_generation = :prev",
      {
        w: walletId,
        g,
        prev: g - 1,
        now,
      },
    );
    return { fromGeneration: g - 1, toGeneration: g, alreadyCommitted: false };
  });
}

/**
 * Deletes the node's pending shares of the wallet (a failed or abandoned refresh): only session
 * `sessionId`'s when given, so a rollback never removes another refresh's rows. Returns how many.
 */
export function abortRefresh(db: Db, walletId: string, nodeId: string, sessionId?: string): number {
  const p = { w: checkId(walletId, "wallet id"), n: checkId(nodeId, "node id") };
  if (sessionId === undefined)
    return db.run(
      "DELETE FROM shares WHERE wallet_id = :w AND node_id = :n AND status = 'pending'",
      p,
    );
  return db.run(
    "DELETE FROM shares WHERE wallet_id = :w AND node_id = :n AND status = 'pending' AND session_id = :s",
    { ...p, s: checkSessionHex(sessionId) },
  );
}

/** The node's pending shares (of one wallet, or of all), oldest first. */
export function pendingShares(db: Db, nodeId: string, walletId?: string): StoredShare[] {
  const n = checkId(nodeId, "node id");
  const rows =
    walletId === undefined
      ? db.all(`${SELECT} WHERE node_id = :n AND status = 'pending' ORDER BY created_at`, { n })
      : db.all(
          `${SELECT} WHERE node_id = :n AND wallet_id = :w AND status = 'pending' ORDER BY created_at`,
          { n, w: checkId(walletId, "wallet id") },
        );
  return rows.map(toShare);
}

/** The node's active share at the wallet's current generation, or a StoreError saying why there is none. */
export function currentShare(db: Db, walletId: string, nodeId: string): StoredShare {
  checkId(walletId, "wallet id");
  checkId(nodeId, "node id");
  const r = db.get(
    `${SELECT} WHERE wallet_id = :w AND node_id = :n AND status = 'active'
       AND generation = (SELECT current_generation FROM wallets WHERE wallet_id = :w)`,
    { w: walletId, n: nodeId },
  );
  if (r) return toShare(r);
  const wallet = requireWallet(db, walletId);
  const stale = activeShare(db, walletId, nodeId);
  if (stale) {
    throw conflict(
      `node ${nodeId}'s active share of wallet ${walletId} is at generation ${stale.generation} but the wallet is at ${wallet.currentGeneration}: this node has not committed the refresh`,
    );
  }
  throw new StoreError("not_found", `node ${nodeId} holds no active share of wallet ${walletId}`);
}

/**
 * What a node's current share of a wallet says about it without the share itself (party index,
 * policy), or null when it holds none: the planning round asks it of every node for every
 * request, and the sealed share is hundreds of kilobytes (bench/storage.ts).
 */
export function currentShareInfo(
  db: Db,
  walletId: string,
  nodeId: string,
): { partyIndex: number; policy: Uint8Array | null } | null {
  const r = db.get(
    `SELECT party_index, policy FROM shares WHERE wallet_id = :w AND node_id = :n AND status = 'active'
       AND generation = (SELECT current_generation FROM wallets WHERE wallet_id = :w)`,
    { w: checkId(walletId, "wallet id"), n: checkId(nodeId, "node id") },
  );
  return r ? { partyIndex: col.int(r, "party_index"), policy: col.bytesOrNull(r, "policy") } : null;
}

/** All of a wallet's shares in this store (optionally one node's), by node then generation. */
export function listShares(db: Db, walletId: string, nodeId?: string): StoredShare[] {
  const rows =
    nodeId === undefined
      ? db.all(`${SELECT} WHERE wallet_id = :w ORDER BY node_id, generation`, {
          w: checkId(walletId, "wallet id"),
        })
      : db.all(`${SELECT} WHERE wallet_id = :w AND node_id = :n ORDER BY generation`, {
          w: checkId(walletId, "wallet id"),
          n: checkId(nodeId, "node id"),
        });
  return rows.map(toShare);
}
