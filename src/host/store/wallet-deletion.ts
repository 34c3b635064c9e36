/**
 * Deleting a retired wallet's rows on this node (src/host/wallet-retirement.ts): its shares
 * (sealed share and KMS CiphertextBlob), its wallet statements (and the attestation documents
 * no statement names any more) and refresh outcomes, and the
 * wallet row itself once no node's share of it is left in this database.
 *
 * Secure delete: the sealed bytes are first overwritten in place with zeros of the same length,
 * then deleted, with `PRAGMA secure_delete = ON` (db.ts) so SQLite zeroes the freed cells too.
 * An embedded file runs in WAL mode, where the old page images stay in the -wal file until a
 * checkpoint; deletion ends with a TRUNCATE checkpoint, which copies the zeroed pages into the
 * database and truncates the WAL. What no database can promise: that the file system or a
 * backup did not keep older copies. A sealed share is useless without its KMS data key, which
 * only that node's attested enclave can obtain (docs/ARCHITECTURE.md, "Wallet retirement").
 */
import type { Db } from "./db.ts";
import { deleteWalletStatements } from "./statements-repo.ts";
import { checkId } from "./validate.ts";

export interface DeletedRows {
  shares: number;
  statements: number;
  /** Whether the wallet row went too (no other node's share of it remained here). */
  wallet: boolean;
}

/** Overwrites and deletes `nodeId`'s rows of the wallet; one transaction. */
export function deleteWalletRows(db: Db, walletId: string, nodeId: string): DeletedRows {
  const p = { w: checkId(walletId, "wallet id"), n: checkId(nodeId, "node id") };
  const out = db.transaction(() => {
    db.run(
      `UPDATE shares SET sealed_share = zeroblob(length(sealed_share)),
         kms_ciphertext_blob = zeroblob(length(kms_ciphertext_blob))
       WHERE wallet_id = :w AND node_id = :n`,
      p,
    );
    const shares = db.run("DELETE FROM shares WHERE wallet_id = :w AND node_id = :n", p);
    // With the attestation documents no statement names any more.
    const statements = deleteWalletStatements(db, p.w, p.n);
    db.run("DELETE FROM refresh_outcomes WHERE wallet_id = :w AND node_id = :n", p);
    db.run("DELETE FROM pending_shapes WHERE wallet_id = :w AND node_id = :n", p);
    const others = db.get("SELECT count(*) AS c FROM shares WHERE wallet_id = :w", { w: p.w });
    let wallet = false;
    if (Number(others?.c ?? 0) === 0) {
      deleteWalletStatements(db, p.w);
      db.run("DELETE FROM refresh_outcomes WHERE wallet_id = :w", { w: p.w });
      wallet = db.run("DELETE FROM wallets WHERE wallet_id = :w", { w: p.w }) > 0;
    }
    return { shares, statements, wallet };
  });
  // Outside the transaction: a checkpoint cannot run inside one. A server database checkpoints itself.
  if (db.kind === "file" && !db.inTransaction) db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return out;
}

/**
 * The party this node retired of the wallet, from its own audit log (the `wallet_retired`
 * row is all that is left of the wallet here), or null: how a repeated retirement counts the
 * holders that retired earlier.
 */
export function retiredPartyOf(
  db: Db,
  walletId: string,
  nodeId: string,
): { partyIndex: number; generation: number } | null {
  const row = db.get(
    `SELECT detail FROM audit_log WHERE wallet_id = :w AND node_id = :n AND event = 'wallet_retired'
     ORDER BY id DESC LIMIT 1`,
    { w: checkId(walletId, "wallet id"), n: checkId(nodeId, "node id") },
  );
  if (!row || typeof row.detail !== "string") return null;
  const d = JSON.parse(row.detail) as { partyIndex?: unknown; generation?: unknown };
  return Number.isInteger(d.partyIndex) && Number.isInteger(d.generation)
    ? { partyIndex: d.partyIndex as number, generation: d.generation as number }
    : null;
}
