/**
 * What a pending refresh/reshare share becomes when it commits (migration 13), as this node's
 * own enclave finished the session: the threshold, size and public package (its phase-4 reply)
 * and, for a reshare, the committee's node ids in seat order (its start, which the enclave
 * checked against the approval). Kept in the transaction that stores the pending share, so a
 * commit settled after a restart applies it too, and settling a reshare asks every named
 * member, never a count taken from the old wallet row (NodeHost.resolveOne).
 */
import { col, type Db } from "./db.ts";
import { MAX_PUBLIC_PACKAGE_BYTES } from "../../shared/wire/node-rpc.ts";
import { isNodeId } from "../../shared/wire/patterns.ts";
import { StoreError } from "./errors.ts";
import { checkBytes, checkId, checkInt, checkSessionHex, MAX_PARTY_INDEX } from "./validate.ts";

export interface PendingShape {
  threshold: number;
  parties: number;
  publicPackage: Uint8Array;
  /** A reshare's committee, node ids in seat order (length = parties); null: the wallet's own holders. */
  committee: string[] | null;
}

function checkCommittee(c: readonly string[], parties: number): string {
  if (c.length !== parties || !c.every((n) => isNodeId(n)) || new Set(c).size !== c.length)
    throw new StoreError(
      "invalid",
      "a pending shape's committee must name `parties` distinct node ids",
    );
  return c.join(",");
}

export function keepPendingShape(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
  s: PendingShape,
  now: number = Date.now(),
): void {
  const parties = checkInt(s.parties, 2, MAX_PARTY_INDEX, "parties");
  db.run(
    `INSERT INTO pending_shapes (wallet_id, node_id, session_id, threshold, parties, public_package, committee, created_at)
     VALUES (:w, :n, :s, :t, :p, :pkg, :c, :now)
     ON CONFLICT (wallet_id, node_id, session_id) DO UPDATE SET threshold = :t, parties = :p,
       public_package = :pkg, committee = :c`,
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      s: checkSessionHex(sessionId, "session id"),
      t: checkInt(s.threshold, 2, parties, "threshold"),
      p: parties,
      pkg: checkBytes(s.publicPackage, "public package", 1, MAX_PUBLIC_PACKAGE_BYTES),
      c: s.committee === null ? null : checkCommittee(s.committee, parties),
      now,
    },
  );
}

export function pendingShape(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
): PendingShape | undefined {
  const r = db.get(
    `SELECT threshold, parties, public_package, committee FROM pending_shapes
       WHERE wallet_id = :w AND node_id = :n AND session_id = :s`,
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      s: checkSessionHex(sessionId, "session id"),
    },
  );
  if (!r) return undefined;
  const committee = col.strOrNull(r, "committee");
  return {
    threshold: col.int(r, "threshold"),
    parties: col.int(r, "parties"),
    publicPackage: col.bytes(r, "public_package"),
    committee: committee === null ? null : committee.split(","),
  };
}

/** Drops the session's shape once its pending share is decided (committed or rolled back). */
export function dropPendingShape(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
): void {
  db.run("DELETE FROM pending_shapes WHERE wallet_id = :w AND node_id = :n AND session_id = :s", {
    w: checkId(walletId, "wallet id"),
    n: checkId(nodeId, "node id"),
    s: checkSessionHex(sessionId, "session id"),
  });
}
