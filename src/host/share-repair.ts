/**
 * Node replacement by share repair (issue 11 item 1), the host's part: it
 * only relays. The coordinator picks t current holders of the wallet as
 * helpers and runs the `repair` ceremony among them and the new node (each
 * helper's term travels sealed end to end to the new node's attested
 * enclave: src/enclave/lifecycle-repair.ts); then at once the complete
 * refresh across all n, the new node joining with the hollow share its
 * enclave kept and the lost node left out, so whatever the lost node kept no
 * longer combines. The new node's host stores its first share of the wallet
 * the way a DKG's is (coordinator.ts persistAndCommit `firstShareAt`); every
 * holder then records who holds each party index (`recordMembers`,
 * store/members-repo.ts) and the coordinator audits `share_repaired`.
 *
 * A lost node that comes back still reports its old generation; a
 * coordinator that sees a holder of an older generation whose party index
 * another node holds now asks it to `checkReplaced`. That node gathers from
 * its peers the newer generation's enclave-signed statements and documents
 * (walletInfo) and, from every holder of it, an active proof its enclave
 * signed for a fresh nonce of this node's enclave (node RPC proveActive), and
 * its OWN enclave checks them (SUPERSEDED_SHARE, src/enclave/supersession.ts):
 * a newer generation of the same wallet key that every holder holds loaded
 * now, whose party index is this node's, held by an enclave of another
 * machine. Only on that verdict, and with no
 * pending share here, does it securely delete its rows of the wallet
 * (store/wallet-deletion.ts), record the new holder and audit
 * `share_replaced` with the evidence's generation; from then on it holds
 * nothing of the wallet. Its peers' hosts or the broker can withhold or forge
 * evidence, never make it delete: anything its enclave refuses leaves the
 * rows as they are (checkReplacedHere).
 *
 * A retried request (same request id, same client user) is answered with
 * the stored result of its first run and nothing is run again: the repair is
 * recorded as its coordinator's ceremony row (kind refresh, the repair's own
 * parameters hash), like a sign's, DKG's or refresh's (coordinateRepair).
 *
 * Approvals: a `repair` approval (approval.ts operation 7) naming the
 * wallet, the party and the new node's PCR4 (repair.ts repairTargetDigest),
 * under the wallet's policy or the administrators'; every helper's enclave
 * and the target's check it. The refresh that follows is an ordinary refresh
 * under the wallet's policy (`refreshApproval`, same request id).
 */
import { createHash, randomBytes } from "node:crypto";
import { ethAddress } from "../shared/public-key.ts";
import { DEFAULT_KEY_TYPE, withKeyType } from "../shared/wire/key-type.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { parseApprovalUnverified } from "../shared/wire/approval.ts";
import type { HeldWallet } from "../shared/wire/node-rpc.ts";
import { isNodeId } from "../shared/wire/patterns.ts";
import {
  CeremonyError,
  refreshWallet,
  runCeremony,
  type ApprovalRelay,
  type CoordinatorOptions,
  type Member,
} from "./coordinator.ts";
import type { WalletRecord } from "./participant.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import type { CeremonyEnds } from "./ceremony-ends.ts";
import {
  currentHolders,
  gatherRequestContext,
  nodesByParty,
  RequestError,
  walletHolders,
} from "./planning.ts";
import {
  appendAudit,
  deleteWalletRows,
  finishCeremony,
  getWallet,
  listShares,
  recordWalletMembers,
  startCeremony,
  walletMembers,
  type Db,
} from "./store/index.ts";
import { parseSignedWalletStatementUnverified } from "../shared/wire/wallet-statement.ts";
import { MAX_SIGNED_ACTIVE_PROOF_BYTES } from "../shared/wire/active-proof.ts";
import type { SupersededShareReply, SupersededShareRequest } from "../shared/wire/enclave-ops.ts";
import { walletVouchers } from "./wallet-vouchers.ts";

export interface RepairRequest {
  walletId: string;
  /** The party index to move. */
  party: number;
  /** The node whose enclave receives it. */
  toNode: string;
  requestId: string;
  /** The `repair` approvals, relayed to every participant. */
  approval: ApprovalRelay;
  /** The refresh's own approvals (under the wallet's policy). */
  refreshApproval: ApprovalRelay;
  client?: string;
}

export interface RepairPlan {
  wallet: HeldWallet;
  generation: number;
  /** The node that reported party K at the current generation, if any was online. */
  fromNode?: string;
  /** t holders that compute the terms (the coordinator first when it is one). */
  helpers: HeldWallet[];
  /** Every current holder but party K: the refresh's other n - 1 participants. */
  others: HeldWallet[];
}

function bad(message: string): never {
  throw new RequestError("bad_request", message);
}

/** Checks the request against the wallet's live holders; every refusal names what is wrong. */
export function planRepair(
  self: string,
  live: readonly string[],
  r: Pick<RepairRequest, "walletId" | "party" | "toNode">,
  holders: HeldWallet[],
): RepairPlan {
  const { generation, current } = currentHolders(r.walletId, holders);
  const wallet = current[0]!;
  if (!Number.isInteger(r.party) || r.party < 1 || r.party > wallet.parties)
    bad(`party must be a party index of wallet ${r.walletId}: 1..${wallet.parties}`);
  const already = current.find((h) => h.nodeId === r.toNode);
  if (already)
    bad(`node ${r.toNode} already holds party ${already.partyIndex} of wallet ${r.walletId}`);
  if (!live.includes(r.toNode))
    throw new RequestError("not_enough_nodes", `target node ${r.toNode} is not online`, r.toNode);
  const fromNode = current.find((h) => h.partyIndex === r.party)?.nodeId;
  const others = current.filter((h) => h.partyIndex !== r.party);
  const seen = new Set(others.map((h) => h.partyIndex));
  if (others.length < wallet.threshold)
    throw new RequestError(
      "not_enough_nodes",
      `a repair needs ${wallet.threshold} helpers holding generation ${generation}; ${others.length} are online`,
    );
  if (seen.size !== others.length || others.length !== wallet.parties - 1) {
    const missing = Array.from({ length: wallet.parties }, (_, k) => k + 1).filter(
      (p) => p !== r.party && !seen.has(p),
    );
    throw new RequestError(
      "not_enough_nodes",
      `the complete refresh after a repair needs every other holder online; parties ${missing.join(", ")} are not`,
    );
  }
  const byParty = [...others].sort((a, b) => a.partyIndex - b.partyIndex);
  const helpers = [
    ...byParty.filter((h) => h.nodeId === self),
    ...byParty.filter((h) => h.nodeId !== self),
  ].slice(0, wallet.threshold);
  return { wallet, generation, ...(fromNode === undefined ? {} : { fromNode }), helpers, others };
}

/** What a repair request asks for, hashed as requestParamsHash hashes the others (planning.ts). */
function repairParamsHash(r: Pick<RepairRequest, "walletId" | "party" | "toNode">): string {
  const params = { kind: "repair", walletId: r.walletId, party: r.party, toNode: r.toNode };
  return createHash("sha256").update(JSON.stringify(params)).digest("hex");
}

/** The approver key ids of the approvals presented, for the audit (each enclave checked them). */
export function approverKeyIdsOf(relay: ApprovalRelay): string[] {
  return (relay.approvals ?? []).flatMap((a) => {
    try {
      return [toHex(parseApprovalUnverified(a).keyId)];
    } catch {
      return [];
    }
  });
}

/**
 * Each holder's own record of who holds each party index at `generation` (repair, reshare);
 * one that fails to write keeps the old rule (highest generation).
 */
export async function recordMembersEverywhere(
  peers: PeerDirectory,
  walletId: string,
  generation: number,
  holders: { partyIndex: number; nodeId: string }[],
): Promise<void> {
  await Promise.allSettled(
    holders.map((h) =>
      peers.ask(h.nodeId, "recordMembers", { walletId, generation, members: holders }),
    ),
  );
}

/**
 * Runs the repair and the refresh once per request id: a retry of a request id (the client's
 * reply lost, say) is answered with the stored result of its first run, anywhere in the
 * cluster, and nothing is run again; one still running or failed is refused as for every other
 * ceremony (planning.ts priorOutcome), one with other parameters is a `conflict`. Recorded as
 * the coordinator's ceremony row of kind refresh (the store's kinds), with the repair's own
 * parameters hash and result.
 */
export async function coordinateRepair(
  peers: PeerDirectory,
  self: { nodeId: string; db: Db; ends?: CeremonyEnds },
  r: RepairRequest,
  copts: CoordinatorOptions,
): Promise<Record<string, unknown>> {
  if (!isNodeId(r.toNode)) bad("toNode must be a node id");
  const who =
    r.client === undefined ? undefined : { client: r.client, paramsHash: repairParamsHash(r) };
  const context = await gatherRequestContext(peers, "repair", r.requestId, r.walletId, who);
  if (context.prior !== undefined) return withKeyType(context.prior) as Record<string, unknown>;
  const live = peers
    .liveNodes()
    .filter((n) => n.status !== "degraded")
    .map((n) => n.nodeId);
  const plan = planRepair(self.nodeId, live, r, await walletHolders(peers, r.walletId));
  const ceremonyId = randomBytes(32).toString("hex");
  const of = {
    ceremonyId,
    kind: "refresh" as const,
    requestId: r.requestId,
    walletId: r.walletId,
  };
  const db = self.db;
  db.transaction(() => {
    startCeremony(db, {
      ...of,
      coordinator: self.nodeId,
      participants: [...plan.others.map((h) => h.nodeId), r.toNode],
      // Stored with or without a client: how a retry tells this row from a refresh's (NodeHost.lookupRequest).
      paramsHash: fromHex(repairParamsHash(r), 32),
      ...(who && { clientUser: who.client }),
    });
    appendAudit(db, self.nodeId, {
      event: "ceremony_started",
      ceremonyId,
      walletId: r.walletId,
      kind: "refresh",
      participants: [...plan.others.map((h) => h.nodeId), r.toNode],
      requestId: r.requestId,
      ...(r.client === undefined ? {} : { client: r.client }),
    });
  });
  let result: Record<string, unknown>;
  try {
    result = await runRepair(peers, self, r, copts, plan);
  } catch (e) {
    if (self.ends) self.ends.failed(of, e);
    else finishCeremony(db, ceremonyId, { status: "failed", error: (e as Error).message });
    throw e;
  }
  db.transaction(() => {
    finishCeremony(db, ceremonyId, {
      status: "succeeded",
      result: new TextEncoder().encode(JSON.stringify(result)),
    });
    appendAudit(db, self.nodeId, {
      event: "ceremony_finished",
      ceremonyId,
      walletId: r.walletId,
      kind: "refresh",
      status: "succeeded",
      requestId: r.requestId,
    });
  });
  return result;
}

/** The repair and its refresh (coordinateRepair); records membership and audits on success. */
async function runRepair(
  peers: PeerDirectory,
  self: { nodeId: string; db: Db },
  r: RepairRequest,
  copts: CoordinatorOptions,
  plan: RepairPlan,
): Promise<Record<string, unknown>> {
  const { wallet: w, generation } = plan;
  const target = peers.participant(r.toNode);
  const helperNodes = plan.helpers.map((h) => peers.participant(h.nodeId));
  // Their shares loaded first (the enclave's start needs them), as a sign's signers.
  const prepared = await Promise.all(helperNodes.map((n) => n.prepare(r.walletId)));
  prepared.forEach((p, k) => {
    if (p.generation !== generation)
      throw new CeremonyError(
        `${helperNodes[k]!.nodeId} holds generation ${p.generation}, wallet is at generation ${generation}`,
        "stale_share",
        { node: helperNodes[k]!.nodeId },
      );
  });
  const members: Member[] = [
    ...plan.helpers.map((h, k) => ({ participant: helperNodes[k]!, partyIndex: h.partyIndex })),
    { participant: target, partyIndex: r.party },
  ];
  const helperIndices = plan.helpers.map((h) => h.partyIndex).sort((a, b) => a - b);
  const sessionId = randomBytes(32);
  const finals = await runCeremony(
    "repair",
    members,
    sessionId,
    (m) => ({
      kind: "repair",
      sessionId,
      walletId: r.walletId,
      threshold: w.threshold,
      parties: w.parties,
      partyIndex: m.partyIndex,
      repairTarget: r.party,
      repairHelpers: helperIndices,
      // The target has no sealed policy: the helpers' terms must all name this one's hash.
      ...(m.participant === target && w.policy !== undefined ? { policy: w.policy } : {}),
    }),
    { ...copts, approval: r.approval },
  );
  const assembled = finals.at(-1)!;
  if (
    assembled.partyIndex !== r.party ||
    assembled.publicKey === undefined ||
    toHex(assembled.publicKey) !== toHex(w.publicKey)
  )
    throw new CeremonyError(
      `node ${r.toNode} assembled no share of party ${r.party} under the wallet's key`,
      "inconsistent_result",
      { node: r.toNode },
    );
  const record: WalletRecord = {
    walletId: w.walletId,
    threshold: w.threshold,
    parties: w.parties,
    publicKey: w.publicKey,
    publicPackage: w.publicPackage,
    chainCode: w.chainCode,
    ...(w.policy === undefined ? {} : { policy: w.policy }),
  };
  let g: number;
  try {
    g = await refreshWallet(
      plan.others.map((h) => peers.participant(h.nodeId)),
      record,
      generation,
      {
        ...copts,
        approval: r.refreshApproval,
        repaired: { node: target, partyIndex: r.party, repairSession: sessionId },
      },
    );
  } catch (e) {
    const err = e instanceof CeremonyError ? e : null;
    // Nothing was committed: the wallet is as it was, and the repair can be run again.
    throw new CeremonyError(
      `the repair of party ${r.party} of wallet ${r.walletId} rebuilt its share on ${r.toNode}, but the refresh that must follow failed, so nothing changed (approve and run the repair again, under a new request id): ${(e as Error).message}`,
      err?.code ?? "ceremony_failed",
      err?.blame ?? {},
      err?.reason,
    );
  }
  const holders = [
    ...plan.others.map((h) => ({ partyIndex: h.partyIndex, nodeId: h.nodeId })),
    { partyIndex: r.party, nodeId: r.toNode },
  ].sort((a, b) => a.partyIndex - b.partyIndex);
  await recordMembersEverywhere(peers, r.walletId, g, holders);
  // A lost node still online (a stolen machine, say) drops its rows now; one offline, when it returns.
  if (plan.fromNode !== undefined)
    await peers.ask(plan.fromNode, "checkReplaced", { walletId: r.walletId }).catch(() => null);
  const approverKeyIds = approverKeyIdsOf(r.approval);
  appendAudit(self.db, self.nodeId, {
    event: "share_repaired",
    walletId: r.walletId,
    requestId: r.requestId,
    partyIndex: r.party,
    ...(plan.fromNode === undefined ? {} : { fromNode: plan.fromNode }),
    toNode: r.toNode,
    helpers: plan.helpers.map((h) => h.nodeId),
    generation: g,
    ...(approverKeyIds.length > 0 ? { approverKeyIds } : {}),
    ...(r.client === undefined ? {} : { client: r.client }),
  });
  const now = (await walletHolders(peers, r.walletId)).filter((h) => h.generation === g);
  return {
    walletId: r.walletId,
    keyType: DEFAULT_KEY_TYPE,
    partyIndex: r.party,
    fromNode: plan.fromNode ?? null,
    toNode: r.toNode,
    helpers: plan.helpers.map((h) => h.nodeId),
    generation: g,
    publicKey: toHex(w.publicKey),
    address: ethAddress(w.publicKey),
    threshold: w.threshold,
    parties: w.parties,
    nodes: nodesByParty(now),
    vouchers: walletVouchers(now),
  };
}

/**
 * A coordinator's view of a wallet's holders: those reporting an older generation of a party
 * index that another node holds at the current one (a repaired party's lost node come back).
 */
export function replacedHolders(holders: readonly HeldWallet[]): string[] {
  if (holders.length === 0) return [];
  const top = Math.max(...holders.map((h) => h.generation));
  const current = holders.filter((h) => h.generation === top);
  return holders
    .filter(
      (h) =>
        h.generation < top &&
        // Its index held by another node (a repair), or beyond the committee (it left in a reshare).
        (current.some((c) => c.partyIndex === h.partyIndex && c.nodeId !== h.nodeId) ||
          current.every((c) => c.parties < h.partyIndex)),
    )
    .map((h) => h.nodeId);
}

/** One live peer's answer to walletInfo, beside the node that was asked (null: none). */
export interface AskedHolder {
  asked: string;
  answer: HeldWallet | null;
}

/** How a node asks one peer's enclave for its active proof of the wallet for `nonce` (node RPC proveActive). */
export type ActiveProofSource = (
  nodeId: string,
  walletId: string,
  nonce: Uint8Array,
) => Promise<Uint8Array | null>;

/** What checkReplaced needs of its NodeHost. */
export interface ReplacedNode {
  nodeId: string;
  db: Db;
  /** Every other live node's answer to walletInfo, each beside the node asked. */
  holders(walletId: string): Promise<AskedHolder[]>;
  /** A fresh single-use nonce from this node's own enclave (SUPERSESSION_NONCE). */
  nonce(walletId: string): Promise<Uint8Array>;
  /** One peer's active proof for that nonce. */
  proof: ActiveProofSource;
  /** This node's own enclave's verdict on the evidence (SUPERSEDED_SHARE); a refusal throws. */
  verdict(req: SupersededShareRequest): Promise<SupersededShareReply>;
  forget(walletId: string): void;
  log(event: string, fields: Record<string, unknown>): void;
}

/** Shortest interval between two replacement checks of one wallet on a node (node-host.ts checkReplaced). */
export const REPLACE_CHECK_INTERVAL_MS = 5_000;

/** Complete statement sets tried per check, newest first (each is one enclave verification). */
export const MAX_SETS_TRIED = 3;

/** One answer whose statement, read without checking it, names this party and generation. */
interface Claimed {
  nodeId: string;
  statement: Uint8Array;
  attestation: Uint8Array;
  partyIndex: number;
  generation: number;
  parties: number;
}

/** Complete statement sets listed at most per check (cheap: no signature is checked here). */
export const MAX_SETS_LISTED = 64;

/**
 * The answers' complete statement sets newer than `after`, newest generation first: per
 * generation (as each statement itself says, read unverified, never the answer's own claims),
 * one statement per party index 1..n, each from another node asked. Every answer claiming an
 * index stays a candidate for it, so one host that answers with a replayed statement of a real
 * index (and then withholds the proof) cannot hide the real holder's answer: within a
 * generation the first set takes, per index, the answer of the node this node's own
 * membership record names (`recorded`, members-repo.ts), else the first; then the sets that
 * differ from it at one index, then at two, and so on, at most `limit` in all. Only the
 * enclave checks a set; reading the statements here only keeps a node that claims a huge
 * generation or another's index from choosing what is tried (a set needs n answering nodes).
 */
export function completeSets(
  answers: readonly { nodeId: string; statement: Uint8Array; attestation: Uint8Array }[],
  walletId: string,
  publicKey: Uint8Array,
  after: number,
  recorded: ReadonlyMap<number, string> = new Map(),
  limit = MAX_SETS_LISTED,
): Claimed[][] {
  // By generation, then by the committee size n the statements claim (one answer claiming an
  // index beyond the real n makes a group of its own instead of spoiling the real one).
  const groups = new Map<
    string,
    { generation: number; n: number; byIndex: Map<number, Claimed[]> }
  >();
  for (const a of answers) {
    let st;
    try {
      st = parseSignedWalletStatementUnverified(a.statement).statement;
    } catch {
      continue;
    }
    if (st.walletId !== walletId || toHex(st.publicKey) !== toHex(publicKey)) continue;
    if (st.generation <= after || st.partyIndex > st.parties) continue;
    const key = `${st.generation}/${st.parties}`;
    const group = groups.get(key) ?? {
      generation: st.generation,
      n: st.parties,
      byIndex: new Map<number, Claimed[]>(),
    };
    groups.set(key, group);
    const set = group.byIndex;
    const claimed = {
      ...a,
      partyIndex: st.partyIndex,
      generation: st.generation,
      parties: st.parties,
    };
    const at = set.get(st.partyIndex) ?? [];
    set.set(st.partyIndex, at);
    // The recorded holder of this index first; the others in the order they answered.
    if (recorded.get(st.partyIndex) === a.nodeId) at.unshift(claimed);
    else at.push(claimed);
  }
  const out: Claimed[][] = [];
  const ordered = [...groups.values()].sort((a, b) => b.generation - a.generation || a.n - b.n);
  for (const { n, byIndex } of ordered) {
    // Indices exactly 1..n, every candidate's statement saying n parties.
    if (n < 2 || byIndex.size !== n) continue;
    const slots = Array.from({ length: n }, (_, k) => byIndex.get(k + 1)!);
    for (let k = 0; k <= n && out.length < limit; k++)
      for (const set of deviations(slots, k)) {
        if (out.length >= limit) break;
        out.push(set);
      }
  }
  return out;
}

/** Every choice of one candidate per slot that takes a candidate other than the first at exactly `k` slots. */
function* deviations<T>(slots: readonly T[][], k: number, from = 0): Generator<T[]> {
  if (from === slots.length) {
    if (k === 0) yield [];
    return;
  }
  // Too few slots left to deviate k times: nothing.
  if (slots.length - from < k) return;
  const [first, ...others] = slots[from]!;
  for (const rest of deviations(slots, k, from + 1)) yield [first!, ...rest];
  if (k > 0)
    for (const other of others)
      for (const rest of deviations(slots, k - 1, from + 1)) yield [other, ...rest];
}

/**
 * This node's part when a coordinator says its share of the wallet was replaced. The host
 * gathers evidence from its peers, whose answers it cannot check (they are other hosts' words,
 * relayed by the broker; it has no attestation roots or image list of its own), and hands it
 * to its own enclave, which can (src/enclave/supersession.ts): the n enclave-signed wallet
 * statements of one newer generation, each with its attestation document (walletInfo), and
 * from each of those n holders an active proof its enclave signed for a nonce this node's
 * enclave issued just before (proveActive): every holder holds that generation loaded now,
 * so it is live, not a session later rolled back. The enclave's verdict also needs this
 * node's party index held there by an enclave of another machine (PCR4), or, for a holder a
 * reshare left out (its index beyond the newer committee), every seat on another machine;
 * that case records no member and audits `left_committee` instead. Only on that
 * verdict, and in one transaction that finds the rows as they were checked (the same active
 * row, no pending one), does this node securely delete its rows of the wallet
 * (store/wallet-deletion.ts), record who holds its index now, audit `share_replaced` with the
 * evidence's generation, and forget the wallet. Forged, replayed, older or another wallet's
 * evidence, a holder that gives no proof, or a pending share here: nothing is deleted or
 * recorded, and the wallet stays as it was here (a coordinator asks again on a later request).
 */
export async function checkReplacedHere(
  node: ReplacedNode,
  walletId: string,
): Promise<{ replaced: boolean }> {
  const wallet = getWallet(node.db, walletId);
  const rows = listShares(node.db, walletId, node.nodeId);
  const mine = rows.find((s) => s.status === "active");
  if (!wallet || !mine) return { replaced: false };
  // A pending share: a refresh this node took part in that may have committed without telling it.
  if (rows.some((s) => s.status !== "active")) return { replaced: false };
  const top = Math.max(...rows.map((s) => s.generation));
  const seen = new Set<string>();
  const answers: { nodeId: string; statement: Uint8Array; attestation: Uint8Array }[] = [];
  for (const { asked, answer: h } of await node.holders(walletId)) {
    if (
      h === null ||
      h === undefined ||
      h.nodeId !== asked ||
      asked === node.nodeId ||
      seen.has(asked) ||
      !(h.statement instanceof Uint8Array) ||
      !(h.attestation instanceof Uint8Array)
    )
      continue;
    seen.add(asked);
    answers.push({ nodeId: asked, statement: h.statement, attestation: h.attestation });
  }
  // Its index held elsewhere (a repair, or a reshare that renumbered), or a smaller committee
  // without it (a reshare it left): the enclave tells the two apart and checks either.
  // This node's own record of who holds each index: their answers are tried first.
  const recorded = new Map(walletMembers(node.db, walletId).map((m) => [m.partyIndex, m.nodeId]));
  const sets = completeSets(answers, walletId, wallet.publicKey, top, recorded).filter(
    (set) => set.some((c) => c.partyIndex === mine.partyIndex) || set.length < mine.partyIndex,
  );
  let verdict: SupersededShareReply | null = null;
  let used: Claimed[] = [];
  let reason = "no complete set of newer statements";
  // A node that gave no proof is left out of the sets tried after (another answer for its
  // index may be the real holder's); only sets actually asked count against MAX_SETS_TRIED.
  const silentNodes = new Set<string>();
  let tried = 0;
  for (const set of sets) {
    if (tried >= MAX_SETS_TRIED) break;
    if (set.some((c) => silentNodes.has(c.nodeId))) continue;
    tried++;
    try {
      const nonce = await node.nonce(walletId);
      const proofs = await Promise.all(
        set.map((c) => node.proof(c.nodeId, walletId, nonce).catch(() => null)),
      );
      const silent = set.filter(
        (_, k) =>
          !(proofs[k] instanceof Uint8Array) || proofs[k]!.length > MAX_SIGNED_ACTIVE_PROOF_BYTES,
      );
      if (silent.length > 0) {
        for (const c of silent) silentNodes.add(c.nodeId);
        reason = `no active proof from ${silent.map((c) => c.nodeId).join(", ")} at generation ${set[0]!.generation}`;
        continue;
      }
      verdict = await node.verdict({
        walletId,
        partyIndex: mine.partyIndex,
        generation: mine.generation,
        publicKey: wallet.publicKey,
        statements: set.map((c) => c.statement),
        documents: set.map((c) => c.attestation),
        nonce,
        activeProofs: proofs as Uint8Array[],
      });
      used = set;
      break;
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  if (!verdict) {
    node.log("share_replacement_unproven", { walletId, reason });
    return { replaced: false };
  }
  // None: this node left the committee (a reshare), so nobody holds its index now.
  const by = used.find((c) => c.partyIndex === mine.partyIndex);
  const pcr4 = verdict.holderPcr4;
  if ((by === undefined) !== (pcr4 === undefined)) {
    node.log("share_replacement_unproven", {
      walletId,
      reason: "the enclave's verdict and the statements disagree on who holds this index",
    });
    return { replaced: false };
  }
  // Re-checked, recorded and deleted at once: nothing the check did not see is deleted.
  const deleted = node.db.transaction(() => {
    const now = listShares(node.db, walletId, node.nodeId);
    const still = now.find((s) => s.status === "active");
    if (
      now.length !== rows.length ||
      now.some((s) => s.status !== "active") ||
      still?.generation !== mine.generation ||
      still.partyIndex !== mine.partyIndex
    )
      return null;
    if (by === undefined || pcr4 === undefined)
      appendAudit(node.db, node.nodeId, {
        event: "left_committee",
        walletId,
        partyIndex: mine.partyIndex,
        generation: verdict.supersededBy,
        replacedGeneration: mine.generation,
        parties: used.length,
        confirmedBy: used.map((c) => c.nodeId),
      });
    else {
      recordWalletMembers(
        node.db,
        walletId,
        [{ partyIndex: mine.partyIndex, nodeId: by.nodeId }],
        verdict.supersededBy,
      );
      appendAudit(node.db, node.nodeId, {
        event: "share_replaced",
        walletId,
        partyIndex: mine.partyIndex,
        generation: verdict.supersededBy,
        replacedGeneration: mine.generation,
        byNode: by.nodeId,
        byPcr4: toHex(pcr4),
        confirmedBy: used.map((c) => c.nodeId),
      });
    }
    return deleteWalletRows(node.db, walletId, node.nodeId);
  });
  if (!deleted) {
    node.log("share_replacement_unproven", {
      walletId,
      reason: "this node's rows of the wallet changed during the check",
    });
    return { replaced: false };
  }
  // deleteWalletRows cannot checkpoint inside a transaction; the zeroed pages leave the WAL now.
  node.db.checkpoint();
  node.forget(walletId);
  node.log(by ? "share_replaced" : "left_committee", {
    walletId,
    partyIndex: mine.partyIndex,
    generation: verdict.supersededBy,
    ...(by ? { byNode: by.nodeId } : {}),
    deletedShares: deleted.shares,
  });
  return { replaced: true };
}
