/**
 * The seal receipts a holder's enclave activated a committed DKG/refresh share with
 * (refresh_outcomes.proof, migration 12; format src/shared/wire/commit-proof.ts), handed on
 * with this node's "committed" answer so a peer settling from it can have its own enclave
 * check that every holder stored the share (NodeHost.resolveOne).
 */
import { col, type Db } from "./db.ts";
import { decodeCommitProof, encodeCommitProof } from "../../shared/wire/commit-proof.ts";
import { checkId, checkSessionHex } from "./validate.ts";

/** Keeps the proof on the node's committed outcome row of the session (a no-op without one). */
export function keepCommitProof(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
  receipts: readonly Uint8Array[],
): void {
  db.run(
    `UPDATE refresh_outcomes SET proof = :p
       WHERE wallet_id = :w AND node_id = :n AND session_id = :s AND outcome = 'committed'`,
    {
      p: encodeCommitProof(receipts),
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      s: checkSessionHex(sessionId, "session id"),
    },
  );
}

/** The receipts kept with the node's commit of the session, or undefined (none, or unreadable). */
export function commitProof(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
): Uint8Array[] | undefined {
  const r = db.get(
    `SELECT proof FROM refresh_outcomes
       WHERE wallet_id = :w AND node_id = :n AND session_id = :s AND outcome = 'committed' AND proof IS NOT NULL`,
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      s: checkSessionHex(sessionId, "session id"),
    },
  );
  if (!r) return undefined;
  try {
    return decodeCommitProof(col.bytes(r, "proof"));
  } catch {
    // A damaged proof proves nothing; the peer asking stays pending rather than trust it.
    return undefined;
  }
}
