/**
 * Wallet membership (migration 11): which node holds each party index of a wallet, as recorded
 * by the nodes that took part in a share repair (share-repair.ts) and by a node whose share a
 * repair replaced. Without a row, membership is what it always was: whoever reports the
 * wallet's highest generation.
 */
import { col, type Db } from "./db.ts";
import { checkGeneration, checkId, checkInt, MAX_PARTY_INDEX } from "./validate.ts";

export interface WalletMember {
  partyIndex: number;
  nodeId: string;
  generation: number;
}

/** Records who holds each listed party index of the wallet since `generation` (replacing older rows). */
export function recordWalletMembers(
  db: Db,
  walletId: string,
  members: readonly { partyIndex: number; nodeId: string }[],
  generation: number,
  now: number = Date.now(),
): void {
  const w = checkId(walletId, "wallet id");
  const g = checkGeneration(generation);
  db.transaction(() => {
    for (const m of members)
      db.run(
        `INSERT INTO wallet_members (wallet_id, party_index, node_id, generation, updated_at)
         VALUES (:w, :p, :n, :g, :now)
         ON CONFLICT (wallet_id, party_index) DO UPDATE SET node_id = :n, generation = :g, updated_at = :now
         WHERE wallet_members.generation <= :g`,
        {
          w,
          p: checkInt(m.partyIndex, 1, MAX_PARTY_INDEX, "party index"),
          n: checkId(m.nodeId, "node id"),
          g,
          now,
        },
      );
  });
}

export function walletMembers(db: Db, walletId: string): WalletMember[] {
  return db
    .all(
      "SELECT party_index, node_id, generation FROM wallet_members WHERE wallet_id = :w ORDER BY party_index",
      { w: checkId(walletId, "wallet id") },
    )
    .map((r) => ({
      partyIndex: col.int(r, "party_index"),
      nodeId: col.str(r, "node_id"),
      generation: col.int(r, "generation"),
    }));
}
