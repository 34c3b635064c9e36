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
 * hold one of the highest (docs/RESHARING.md "Limits"). A leaver keeps a working share of the
 * old sharing until it deletes, so leavers (online and offline) reaching t_old, and any
 * offline leaver, need the request's explicit flag; the audit and the answer list every
 * leaver with whether it deleted.
 *
 * Approvals: a `reshare` approval (approval.ts operation 8) naming the
 * wallet, t_new and every member's node id and PCR4 (reshare.ts
 * reshareCommitteeDigest), under the wallet's policy or the administrators';
 * every member's enclave checks it.
 */
import { randomBytes } from "node:crypto";
import { ethAddress } from "../shared/public-key.ts";
import { toHex } from "../shared/hex.ts";
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
import {
  approverKeyIdsOf,
  recordMembersEverywhere,
  REPLACE_CHECK_INTERVAL_MS,
} from "./share-repair.ts";
import { walletMembers } from "./store/members-repo.ts";
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
  /**
   * Lets as many holders leave as the old threshold (or more). Each leaver keeps a share of the
   * old sharing until its own enclave verifies the new one and its host deletes it; together
   * t_old of them could sign with the old sharing meanwhile, so this weakens the wallet until
   * they have all deleted (the reply's `leaving` says who has).
   */
  allowOldQuorumLeaving?: boolean;
  /**
   * Lets holders that are offline now leave: nobody can ask them to delete until they are back
   * (each checks when it next reports its old generation), so their old shares stay meanwhile.
   */
  allowOfflineLeaving?: boolean;
}

/** A holder the reshare left out: online ones are asked to check right after the commit. */
export interface Leaver {
  partyIndex: number;
  /** Absent for an offline leaver this coordinator has no membership record of. */
  nodeId?: string;
  online: boolean;
  /** Whether its own enclave verified the new sharing and its host deleted its rows (online only). */
  replaced: boolean;
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
  /** Each online leaver's party index, in `leaving`'s order. */
  leavingParties: number[];
  /** Party indices of the old committee held by no online node: offline leavers. */
  offlineLeaving: number[];
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
  r: Pick<
    ReshareRequest,
    "walletId" | "threshold" | "nodes" | "allowOldQuorumLeaving" | "allowOfflineLeaving"
  >,
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
  // The old committee's indices no online node reports: offline leavers (a stayer is online,
  // checked above). Nobody can ask them to delete now, and together with the online leavers
  // they may reach t_old and could still sign with the old sharing: both need the caller's word.
  const offlineLeaving = Array.from({ length: wallet.parties }, (_, k) => k + 1).filter(
    (p) => !indices.has(p),
  );
  if (offlineLeaving.length > 0 && r.allowOfflineLeaving !== true)
    bad(
      `parties ${offlineLeaving.join(", ")} of wallet ${r.walletId} are offline and would leave without being asked to delete their old shares; bring them online first or set allowOfflineLeaving`,
    );
  const leavers = leaving.length + offlineLeaving.length;
  if (leavers >= wallet.threshold && r.allowOldQuorumLeaving !== true)
    bad(
      `${leavers} holders would leave, at least the old threshold ${wallet.threshold}: together they could sign with the old sharing until each deletes it; set allowOldQuorumLeaving to accept that`,
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
    leavingParties: leaving.map((h) => h.partyIndex),
    offlineLeaving,
    committee: [...stay.map((h) => h.nodeId), ...added],
  };
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
  await recordMembersEverywhere(peers, r.walletId, g, holders);
  const leaving = await checkLeavers(peers, self.db, r.walletId, plan);
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
    ...leaverFields(leaving),
    ...(approverKeyIds.length > 0 ? { approverKeyIds } : {}),
    ...(r.client === undefined ? {} : { client: r.client }),
  });
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
    leaving,
    nodes: nodesByParty(now),
    vouchers: walletVouchers(now),
  };
}

/**
 * Each node's `ask` answer, asking again once, after `retryMs`, those that said no (one wait for
 * all of them, so at most two asks per node and one wait per reshare).
 */
export async function askTwice(
  nodes: readonly string[],
  ask: (nodeId: string) => Promise<boolean>,
  retryMs: number,
): Promise<boolean[]> {
  const yes = await Promise.all(nodes.map(ask));
  if (!yes.includes(false)) return yes;
  await new Promise((res) => setTimeout(res, retryMs));
  return Promise.all(nodes.map(async (n, k) => yes[k] || ask(n)));
}

/**
 * Asks each online leaver to check (checkReplaced) right after the commit: a leaving holder
 * deletes its rows only on its own enclave's verdict on every new holder's statement and
 * active proof (share-repair.ts checkReplacedHere). A node answers not-replaced without
 * checking while another check of the wallet ran there within REPLACE_CHECK_INTERVAL_MS or a
 * ceremony holds the wallet, so one that says not-replaced is asked once more after the
 * interval (bounded: one retry, one wait for all); one still not replaced, or offline, checks
 * again when a later request finds it reporting the old generation. Offline leavers are named
 * from this coordinator's own membership record of the old generation when it has one.
 */
async function checkLeavers(
  peers: PeerDirectory,
  db: Db,
  walletId: string,
  plan: ResharePlan,
): Promise<Leaver[]> {
  const replaced = await askTwice(
    plan.leaving,
    async (n) =>
      (await peers.ask(n, "checkReplaced", { walletId }).catch(() => null))?.replaced === true,
    REPLACE_CHECK_INTERVAL_MS + 250,
  );
  const online: Leaver[] = plan.leaving.map((nodeId, k) => ({
    partyIndex: plan.leavingParties[k]!,
    nodeId,
    online: true,
    replaced: replaced[k]!,
  }));
  // Only records of the old generation or before: an added node may hold that index now.
  const recorded = walletMembers(db, walletId).filter((m) => m.generation <= plan.generation);
  const offline: Leaver[] = plan.offlineLeaving.map((partyIndex) => {
    const nodeId = recorded.find((m) => m.partyIndex === partyIndex)?.nodeId;
    return {
      partyIndex,
      ...(nodeId === undefined ? {} : { nodeId }),
      online: false,
      replaced: false,
    };
  });
  return [...online, ...offline].sort((a, b) => a.partyIndex - b.partyIndex);
}

/** The audit's view of the leavers (audit.ts wallet_reshared): flat lists its schema bounds. */
function leaverFields(leaving: readonly Leaver[]): Record<string, unknown> {
  if (leaving.length === 0) return {};
  const on = leaving.filter((l) => l.online);
  const off = leaving.filter((l) => !l.online);
  return {
    leaving: on.map((l) => l.nodeId!),
    leftReplaced: on.filter((l) => l.replaced).map((l) => l.nodeId!),
    ...(off.length > 0 ? { offlineLeaving: off.map((l) => l.partyIndex) } : {}),
  };
}
