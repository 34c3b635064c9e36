/**
 * Resharing a wallet to a new committee (issue 11 item 4, docs/RESHARING.md),
 * the host's part: it only relays. The coordinator runs the `reshare`
 * ceremony (src/enclave/lifecycle-reshare.ts) across the new committee: every
 * current holder deals from its loaded share and keeps its party index as its
 * seat, every added node joins as a new member at the next free index (in
 * the order the request lists them). Then the new shares are stored and
 * committed exactly as a refresh's (coordinator.ts persistAndCommit): every
 * member's enclave activates its new share only with all n_new seal receipts
 * and the commit certificate of all n_new statements, which it verifies
 * itself; each old holder's host deletes its old share in the same store
 * transaction that activates the new one (shares-repo.ts commitRefresh), so
 * an old share goes only after this holder's own enclave verified that the
 * new generation is committed by every new holder, never on another host's
 * word. The added nodes store their first share as a DKG's (wallet row
 * created there). Then every member records its own index (members-repo.ts),
 * and the coordinator audits `wallet_reshared` with the approvers' key ids.
 *
 * A holder that leaves the committee does not deal (the core wants every
 * dealer seated); the holders that stay deal, at least t_old of them (the
 * enclaves and the core refuse fewer). Right after the commit the coordinator
 * asks each online leaving holder to check (checkReplaced): its own enclave
 * deletes nothing but verifies that the new generation's n_new statements and
 * every new holder's active proof for its fresh nonce show a committed
 * sharing of the same key without its machine (src/enclave/supersession.ts),
 * and only then does its host securely delete its rows and audit
 * `left_committee`; an offline one does the same when it next reports its old
 * generation. Holders that stay keep their index, so a leaving holder must
 * hold one of the highest (docs/RESHARING.md "Limits").
 *
 * Approvals: a `reshare` approval (approval.ts operation 8) naming the
 * wallet, t_new and every member's node id and PCR4 (reshare.ts
 * reshareCommitteeDigest), under the wallet's policy or the administrators';
 * every member's enclave checks it.
 */
import { randomBytes } from "node:crypto";
import { ethAddress } from "../shared/public-key.ts";
import { toHex } from "../shared/hex.ts";
import { parseApprovalUnverified } from "../shared/wire/approval.ts";
import type { CeremonyStartRequest } from "../shared/wire/enclave-ops.ts";
import { DEFAULT_KEY_TYPE } from "../shared/wire/key-type.ts";
import type { HeldWallet } from "../shared/wire/node-rpc.ts";
import { isNodeId } from "../shared/wire/patterns.ts";
import {
  CeremonyError,
  persistAndCommit,
  prepareAll,
  runAttestedCeremony,
  type ApprovalRelay,
  type CoordinatorOptions,
  type Member,
} from "./coordinator.ts";
import type { Participant, WalletRecord } from "./participant.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import { currentHolders, nodesByParty, RequestError, walletHolders } from "./planning.ts";
import { appendAudit, type Db } from "./store/index.ts";
import { walletVouchers } from "./wallet-vouchers.ts";

export interface ReshareRequest {
  walletId: string;
  /** The new threshold. */
  threshold: number;
  /** The whole new committee: the current holders that stay and the nodes to add. */
  nodes: readonly string[];
  requestId: string;
  /** The `reshare` approvals, relayed to every member. */
  approval: ApprovalRelay;
  client?: string;
}

export interface ResharePlan {
  wallet: HeldWallet;
  generation: number;
  /** The current holders that stay, by party index (1..k): the dealers, each at its own index. */
  dealers: HeldWallet[];
  /** The nodes added, at indices k + 1.. in request order. */
  added: string[];
  /** Online current holders left out of the committee (an offline one checks when it is back). */
  leaving: string[];
  /** Node id by seat (index 0 is seat 1). */
  committee: string[];
}

/** Whether a reshare start names this member's seat among the dealers' (node-host.ts). */
export function isReshareDealer(req: Pick<CeremonyStartRequest, "reshareSeats" | "partyIndex">) {
  return Array.isArray(req.reshareSeats) && req.reshareSeats.includes(req.partyIndex as number);
}

function bad(message: string): never {
  throw new RequestError("bad_request", message);
}

/** Checks the request against the wallet's live holders; every refusal names what is wrong. */
export function planReshare(
  live: readonly string[],
  r: Pick<ReshareRequest, "walletId" | "threshold" | "nodes">,
  holders: HeldWallet[],
): ResharePlan {
  const { generation, current } = currentHolders(r.walletId, holders);
  const wallet = current[0]!;
  const nodes = [...r.nodes];
  if (nodes.length < 2 || nodes.length > 16 || !nodes.every((n) => isNodeId(n)))
    bad("nodes must list 2..16 node ids: the whole new committee");
  if (new Set(nodes).size !== nodes.length) bad("nodes lists a node twice");
  if (!Number.isInteger(r.threshold) || r.threshold < 2 || r.threshold > nodes.length)
    bad(`threshold must be 2..${nodes.length} (the new committee's size)`);
  const byParty = [...current].sort((a, b) => a.partyIndex - b.partyIndex);
  // Holders that stay deal at their own index, which must be 1..k: a stayer is never renumbered
  // (the host side of a moved index is not built), so a leaving holder is one of the last.
  const stay = byParty.filter((h) => nodes.includes(h.nodeId));
  const leaving = byParty.filter((h) => !nodes.includes(h.nodeId));
  const indices = new Set(byParty.map((h) => h.partyIndex));
  if (indices.size !== byParty.length)
    throw new RequestError(
      "not_enough_nodes",
      `two online nodes claim one party index of wallet ${r.walletId}`,
    );
  const last = Math.max(0, ...stay.map((h) => h.partyIndex));
  const missing = Array.from({ length: last }, (_, k) => k + 1).filter((p) => !indices.has(p));
  if (missing.length > 0)
    throw new RequestError(
      "not_enough_nodes",
      `a reshare needs every holder that stays in wallet ${r.walletId}'s committee online (each deals); parties ${missing.join(", ")} are not`,
    );
  const renumbered = leaving.filter((h) => h.partyIndex < last);
  if (renumbered.length > 0)
    bad(
      `a leaving holder must hold one of the highest party indices (holders that stay keep theirs): ${renumbered.map((h) => `${h.nodeId} holds party ${h.partyIndex}`).join(", ")}`,
    );
  if (stay.length < wallet.threshold)
    bad(
      `a reshare needs at least ${wallet.threshold} current holders (the old threshold) staying to deal; ${stay.length} stay`,
    );
  const added = nodes.filter((n) => !byParty.some((h) => h.nodeId === n));
  const offline = added.filter((n) => !live.includes(n));
  if (offline.length > 0)
    throw new RequestError(
      "not_enough_nodes",
      `nodes to add are not online: ${offline.join(", ")}`,
      offline[0],
    );
  if (added.length === 0 && r.threshold === wallet.threshold && nodes.length === wallet.parties)
    bad(
      `wallet ${r.walletId} already is ${wallet.threshold}-of-${wallet.parties} on these nodes: a refresh renews its shares`,
    );
  return {
    wallet,
    generation,
    dealers: stay,
    added,
    leaving: leaving.map((h) => h.nodeId),
    committee: [...stay.map((h) => h.nodeId), ...added],
  };
}

/** The approver key ids of the approvals presented, for the audit (each enclave checked them). */
function approverKeyIdsOf(relay: ApprovalRelay): string[] {
  return (relay.approvals ?? []).flatMap((a) => {
    try {
      return [toHex(parseApprovalUnverified(a).keyId)];
    } catch {
      return [];
    }
  });
}

/** Runs the reshare and its commit; records membership and audits on success. */
export async function coordinateReshare(
  peers: PeerDirectory,
  self: { nodeId: string; db: Db },
  r: ReshareRequest,
  copts: CoordinatorOptions,
): Promise<Record<string, unknown>> {
  const live = peers
    .liveNodes()
    .filter((n) => n.status !== "degraded")
    .map((n) => n.nodeId);
  const plan = planReshare(live, r, await walletHolders(peers, r.walletId));
  const { wallet: w, generation, committee } = plan;
  const threshold = r.threshold;
  const parties = committee.length;
  const addedNodes: Participant[] = plan.added.map((n) => peers.participant(n));
  // The dealers' shares loaded first (the enclave's start pins them), as a refresh's; each at
  // the index its enclave loaded.
  const dealing = await prepareAll(
    plan.dealers.map((h) => peers.participant(h.nodeId)),
    r.walletId,
    generation,
  );
  const members: Member[] = [
    ...dealing,
    ...addedNodes.map((participant, k) => ({
      participant,
      partyIndex: plan.dealers.length + k + 1,
    })),
  ];
  const dealers = dealing.map((m) => m.partyIndex).sort((a, b) => a - b);
  const sessionId = randomBytes(32);
  const { replies: finals, documents } = await runAttestedCeremony(
    "reshare",
    members,
    sessionId,
    (m) => ({
      kind: "reshare",
      sessionId,
      walletId: r.walletId,
      threshold,
      parties,
      partyIndex: m.partyIndex,
      reshareDealers: dealers,
      reshareSeats: dealers,
      reshareNodes: committee.join(","),
      // A new member has no sealed share: it trusts these once every dealer's statement names them.
      ...(addedNodes.includes(m.participant)
        ? {
            publicPackage: w.publicPackage,
            ...(w.policy === undefined ? {} : { policy: w.policy }),
          }
        : {}),
    }),
    { ...copts, approval: r.approval },
  );
  if (
    new Set(finals.map((f) => toHex(f.publicPackage ?? new Uint8Array()))).size !== 1 ||
    finals.some(
      (f) =>
        f.publicKey === undefined ||
        toHex(f.publicKey) !== toHex(w.publicKey) ||
        toHex(f.chainCode ?? new Uint8Array()) !== toHex(w.chainCode),
    )
  ) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw new CeremonyError(
      "the reshare's results disagree or changed the public key",
      "inconsistent_result",
    );
  }
  // This coordinator's word only: each member's host stores and commits the shape its own
  // enclave finished with, refusing a record that differs (node-host.ts ownShape).
  const record: WalletRecord = {
    walletId: w.walletId,
    threshold,
    parties,
    publicKey: w.publicKey,
    publicPackage: finals[0]!.publicPackage!,
    chainCode: w.chainCode,
    ...(w.policy === undefined ? {} : { policy: w.policy }),
  };
  await persistAndCommit("refresh", members, sessionId, record, finals, documents, addedNodes);
  const g = finals[0]!.generation;
  const holders = members
    .map((m) => ({ partyIndex: m.partyIndex, nodeId: m.participant.nodeId }))
    .sort((a, b) => a.partyIndex - b.partyIndex);
  // Each member's own record; one that fails to write keeps the old rule (highest generation).
  await Promise.allSettled(
    holders.map((h) =>
      peers.ask(h.nodeId, "recordMembers", {
        walletId: r.walletId,
        generation: g,
        members: holders,
      }),
    ),
  );
  const approverKeyIds = approverKeyIdsOf(r.approval);
  appendAudit(self.db, self.nodeId, {
    event: "wallet_reshared",
    walletId: r.walletId,
    requestId: r.requestId,
    fromThreshold: w.threshold,
    fromParties: w.parties,
    threshold,
    parties,
    dealers: plan.dealers.map((h) => h.nodeId),
    added: plan.added,
    nodes: committee,
    generation: g,
    ...(approverKeyIds.length > 0 ? { approverKeyIds } : {}),
    ...(r.client === undefined ? {} : { client: r.client }),
  });
  // A leaving holder deletes its rows only on its own enclave's verdict on every new holder's
  // statement and active proof (share-repair.ts checkReplacedHere); one that fails or is
  // offline checks again when a later request finds it reporting the old generation.
  await Promise.allSettled(
    plan.leaving.map((n) => peers.ask(n, "checkReplaced", { walletId: r.walletId })),
  );
  const now = (await walletHolders(peers, r.walletId)).filter((h) => h.generation === g);
  return {
    walletId: r.walletId,
    keyType: DEFAULT_KEY_TYPE,
    publicKey: toHex(w.publicKey),
    address: ethAddress(w.publicKey),
    fromThreshold: w.threshold,
    fromParties: w.parties,
    threshold,
    parties,
    generation: g,
    dealers: plan.dealers.map((h) => h.nodeId),
    added: plan.added,
    nodes: nodesByParty(now),
    vouchers: walletVouchers(now),
  };
}
