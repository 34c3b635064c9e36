/**
 * A DKG's all-or-nothing commit on one node, in the store (NodeHost drives it: persist, commit,
 * rollback, and settling a pending share from the peers' answers as for a refresh).
 *
 * A DKG's share is stored pending under its session on every holder (stageDkg); the wallet is
 * usable, and listed, on a node only once its share is active (commitDkg), which the
 * coordinator asks for only after every holder stored. When any holder fails, each removes its
 * pending share (rollbackDkg), so no wallet with fewer holders than parties is ever left.
 * Each decision is recorded in refresh_outcomes (migration 7: the table names a session of the
 * wallet, DKG or refresh) and never reversed; the wallet row stays as the home of that record,
 * holding no share and listed nowhere, and a later DKG of the same wallet id replaces its
 * public data (putDkgWallet).
 */
import {
  abortRefresh,
  appendAudit,
  commitDkgShare,
  deleteWalletStatements,
  dropPendingShape,
  getWallet,
  listShares,
  putDkgWallet,
  recordRefreshOutcome,
  refreshOutcome,
  stageDkgShare,
  StoreError,
  type Db,
  type NewShare,
} from "./store/index.ts";
import { toHex } from "../shared/hex.ts";
import type { WalletRecord } from "./participant.ts";

/** Stores this node's DKG share pending, with the wallet row; refused once the session is decided here. */
export function stageDkg(
  db: Db,
  session: string,
  wallet: WalletRecord,
  share: NewShare,
  keepStatement: () => void,
): void {
  db.transaction(() => {
    const decided = getWallet(db, wallet.walletId)
      ? refreshOutcome(db, wallet.walletId, share.nodeId, session)
      : undefined;
    if (decided)
      throw new StoreError(
        "conflict",
        `DKG ${session.slice(0, 16)} of wallet ${wallet.walletId} was already ${decided.outcome} on node ${share.nodeId}`,
      );
    putDkgWallet(db, { ...wallet, generation: share.generation });
    stageDkgShare(db, { ...share, sessionId: session });
    keepStatement();
  });
}

/**
 * Activates the session's pending share; false when it already was. Never after a rollback of
 * it. The session's kept shape (pending_shapes) goes with the decision.
 */
export function commitDkg(db: Db, nodeId: string, walletId: string, session: string): boolean {
  const r = db.transaction(() => {
    dropPendingShape(db, walletId, nodeId, session);
    const decided = refreshOutcome(db, walletId, nodeId, session);
    if (decided?.outcome === "rolled_back")
      throw new StoreError(
        "conflict",
        `DKG ${session.slice(0, 16)} of wallet ${walletId} was rolled back on node ${nodeId}; it cannot commit`,
      );
    const c = commitDkgShare(db, walletId, nodeId, session);
    recordRefreshOutcome(db, walletId, nodeId, session, "committed", c.generation);
    return c;
  });
  if (r.alreadyCommitted) return false;
  const w = getWallet(db, walletId)!;
  const share = listShares(db, walletId, nodeId).find((x) => x.status === "active")!;
  appendAudit(db, nodeId, {
    event: "wallet_created",
    walletId,
    threshold: w.threshold,
    parties: w.parties,
    publicKeyHex: toHex(w.publicKey),
  });
  appendAudit(db, nodeId, {
    event: "share_stored",
    walletId,
    generation: share.generation,
    partyIndex: share.partyIndex,
    status: "active",
  });
  return true;
}

/**
 * Removes the session's pending share (and this node's statement of it, and its kept shape),
 * recorded as rolled back; never after a commit of it. False when this node never stored anything of the wallet
 * (no row to record it under: the enclave's aborted session is then the fence, NodeHost's too).
 */
export function rollbackDkg(
  db: Db,
  nodeId: string,
  walletId: string,
  session: string,
  reason: string,
): boolean {
  if (!getWallet(db, walletId)) return false;
  const recorded = db.transaction(() => {
    dropPendingShape(db, walletId, nodeId, session);
    const decided = refreshOutcome(db, walletId, nodeId, session);
    if (decided?.outcome === "committed")
      throw new StoreError(
        "conflict",
        `DKG ${session.slice(0, 16)} of wallet ${walletId} was committed on node ${nodeId}; it cannot roll back`,
      );
    if (decided) return false;
    abortRefresh(db, walletId, nodeId, session);
    if (listShares(db, walletId, nodeId).length === 0) deleteWalletStatements(db, walletId, nodeId);
    const generation = getWallet(db, walletId)!.currentGeneration;
    recordRefreshOutcome(db, walletId, nodeId, session, "rolled_back", generation);
    return true;
  });
  if (recorded) appendAudit(db, nodeId, { event: "dkg_aborted", walletId, reason });
  return true;
}

/** Whether a pending share is a DKG's: a refresh's always sits next to the node's active share. */
export function isDkgPending(db: Db, walletId: string, nodeId: string): boolean {
  return !listShares(db, walletId, nodeId).some((x) => x.status === "active");
}
