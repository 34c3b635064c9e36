/**
 * Each holder's final word on a refresh session (migration 7): 'committed' (its pending share
 * became current) or 'rolled_back' (discarded, or never stored: then the row is a fence that
 * refuses a persist of that session arriving later). Peers ask for it (node-rpc ceremonyOutcome)
 * to finish a refresh whose coordinator died between commits; a decision is never reversed.
 */
import { col, type Db } from "./db.ts";
import { StoreError } from "./errors.ts";
import { checkGeneration, checkId, checkSessionHex, checkTimestamp } from "./validate.ts";

export type RefreshDecision = "committed" | "rolled_back";

export interface RefreshOutcome {
  outcome: RefreshDecision;
  generation: number;
  decidedAt: number;
}

export function refreshOutcome(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
): RefreshOutcome | undefined {
  const r = db.get(
    "SELECT outcome, generation, decided_at FROM refresh_outcomes WHERE wallet_id = :w AND node_id = :n AND session_id = :s",
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      s: checkSessionHex(sessionId, "session id"),
    },
  );
  if (!r) return undefined;
  const outcome = col.str(r, "outcome");
  if (outcome !== "committed" && outcome !== "rolled_back")
    throw new StoreError("schema", `refresh outcome ${outcome} is unknown`);
  return { outcome, generation: col.int(r, "generation"), decidedAt: col.int(r, "decided_at") };
}

/** Records the node's decision on a session; the opposite of an earlier decision is a conflict. */
export function recordRefreshOutcome(
  db: Db,
  walletId: string,
  nodeId: string,
  sessionId: string,
  outcome: RefreshDecision,
  generation: number,
  now: number = Date.now(),
): void {
  db.transaction(() => {
    const earlier = refreshOutcome(db, walletId, nodeId, sessionId);
    if (earlier?.outcome === outcome) return;
    if (earlier)
      throw new StoreError(
        "conflict",
        `refresh session ${sessionId.slice(0, 16)} of wallet ${walletId} was already ${earlier.outcome} on node ${nodeId}`,
      );
    db.run(
      `INSERT INTO refresh_outcomes (wallet_id, node_id, session_id, generation, outcome, decided_at)
       VALUES (:w, :n, :s, :g, :o, :now)`,
      {
        w: walletId,
        n: nodeId,
        s: sessionId,
        g: checkGeneration(generation),
        o: outcome,
        now: checkTimestamp(now),
      },
    );
  });
}
