/**
 * Wallet membership (migration 11): which node holds a party index of a wallet since which
 * generation. Only what the writing node can check for itself is recorded: a holder of a share
 * repair's refresh records its own index (share-repair.ts recordMembers), and a node whose share
 * a repair replaced records who holds its old index now. The one reader that matters is
 * `replacedBy`: a node whose own party index is recorded for another node at a newer generation
 * than its active share refuses that wallet (node-host.ts: it no longer reports it, loads it or
 * starts a ceremony of it). Without a row, membership is what it always was: whoever reports
 * the wallet's highest generation.
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

/**
 * The node that holds `nodeId`'s party index of the wallet now, when one is recorded at a newer
 * generation than `nodeId`'s active share (a share repair replaced it): that node refuses the
 * wallet. Null: not replaced (or no active share here).
 */
export function replacedBy(
  db: Db,
  walletId: string,
  nodeId: string,
): { nodeId: string; partyIndex: number; generation: number } | null {
  const r = db.get(
    `SELECT m.node_id, m.party_index, m.generation FROM shares s
       JOIN wallet_members m ON m.wallet_id = s.wallet_id AND m.party_index = s.party_index
      WHERE s.wallet_id = :w AND s.node_id = :n AND s.status = 'active'
        AND m.node_id <> :n AND m.generation > s.generation`,
    { w: checkId(walletId, "wallet id"), n: checkId(nodeId, "node id") },
  );
  return r
    ? {
        nodeId: col.str(r, "node_id"),
        partyIndex: col.int(r, "party_index"),
        generation: col.int(r, "generation"),
      }
    : null;
}
