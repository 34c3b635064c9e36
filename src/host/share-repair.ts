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
 * another node holds now asks it to `checkReplaced`: that node confirms it
 * from its peers' own answers (at least max(t, n - t + 1) of them at the
 * newer generation, each from the node asked, one of them holding its party
 * index, and no pending share here), then records the new holder, audits
 * `share_replaced` and refuses the wallet from then on (members-repo.ts
 * replacedBy). It deletes nothing: those answers are unverified hosts' words
 * (checkReplacedHere says why); its sealed rows stay for an operator to remove.
 *
 * Approvals: a `repair` approval (approval.ts operation 7) naming the
 * wallet, the party and the new node's PCR4 (repair.ts repairTargetDigest),
 * under the wallet's policy or the administrators'; every helper's enclave
 * and the target's check it. The refresh that follows is an ordinary refresh
 * under the wallet's policy (`refreshApproval`, same request id).
 */
import { randomBytes } from "node:crypto";
import { ethAddress } from "../shared/public-key.ts";
import { DEFAULT_KEY_TYPE } from "../shared/wire/key-type.ts";
import { toHex } from "../shared/hex.ts";
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
import { currentHolders, nodesByParty, RequestError, walletHolders } from "./planning.ts";
import {
  appendAudit,
  getWallet,
  listShares,
  recordWalletMembers,
  replacedBy,
  type Db,
} from "./store/index.ts";
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

/** Runs the repair and the refresh; records membership and audits on success. */
export async function coordinateRepair(
  peers: PeerDirectory,
  self: { nodeId: string; db: Db },
  r: RepairRequest,
  copts: CoordinatorOptions,
): Promise<Record<string, unknown>> {
  if (!isNodeId(r.toNode)) bad("toNode must be a node id");
  const live = peers
    .liveNodes()
    .filter((n) => n.status !== "degraded")
    .map((n) => n.nodeId);
  const plan = planRepair(self.nodeId, live, r, await walletHolders(peers, r.walletId));
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
      `the repair of party ${r.party} of wallet ${r.walletId} rebuilt its share on ${r.toNode}, but the refresh that must follow failed, so nothing changed (approve and run the repair again): ${(e as Error).message}`,
      err?.code ?? "ceremony_failed",
      err?.blame ?? {},
      err?.reason,
    );
  }
  const holders = [
    ...plan.others.map((h) => ({ partyIndex: h.partyIndex, nodeId: h.nodeId })),
    { partyIndex: r.party, nodeId: r.toNode },
  ].sort((a, b) => a.partyIndex - b.partyIndex);
  // Each holder's own record; one that fails to write keeps the old rule (highest generation).
  await Promise.allSettled(
    holders.map((h) =>
      peers.ask(h.nodeId, "recordMembers", {
        walletId: r.walletId,
        generation: g,
        members: holders,
      }),
    ),
  );
  // A lost node still online (a stolen machine, say) drops its rows now; one offline, when it returns.
  if (plan.fromNode !== undefined)
    await peers.ask(plan.fromNode, "checkReplaced", { walletId: r.walletId }).catch(() => null);
  const approverKeyIds = (r.approval.approvals ?? []).flatMap((a) => {
    try {
      return [toHex(parseApprovalUnverified(a).keyId)];
    } catch {
      return [];
    }
  });
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
        current.some((c) => c.partyIndex === h.partyIndex && c.nodeId !== h.nodeId),
    )
    .map((h) => h.nodeId);
}

/** One live peer's answer to walletInfo, beside the node that was asked (null: none). */
export interface AskedHolder {
  asked: string;
  answer: HeldWallet | null;
}

/** What checkReplaced needs of its NodeHost. */
export interface ReplacedNode {
  nodeId: string;
  db: Db;
  /** Every other live node's answer to walletInfo, each beside the node asked. */
  holders(walletId: string): Promise<AskedHolder[]>;
  forget(walletId: string): void;
  log(event: string, fields: Record<string, unknown>): void;
}

/**
 * This node's part when a coordinator says its share of the wallet was replaced. It never
 * deletes anything here: the answers it goes by are its peers' hosts' words, relayed by the
 * broker, and a host cannot check their enclave statements (it has no attestation roots or
 * image list of its own; its enclave has). A host that withheld this node's refresh commit, or
 * the broker forging every answer, could otherwise have it destroy a share the wallet still
 * needs. So a confirmed replacement only makes this node refuse the wallet (members-repo.ts
 * replacedBy: no longer reported, loaded or started here), which costs at most this node's
 * participation (and is undone by deleting its wallet_members row). Its sealed rows stay for an
 * operator to remove: after the repair's refresh they no longer combine with the current shares,
 * and they open only in an attested enclave of this node's image through KMS.
 *
 * Confirmed means: at least max(t, n - t + 1) distinct peers, each answering for itself (the
 * node asked is the node the answer names) about this wallet (same key, threshold and parties),
 * at one generation newer than every row this node has, one of them at this node's party
 * index; and this node holds no pending share (a refresh whose commit it may not have received).
 */
export async function checkReplacedHere(
  node: ReplacedNode,
  walletId: string,
): Promise<{ replaced: boolean }> {
  const wallet = getWallet(node.db, walletId);
  const rows = listShares(node.db, walletId, node.nodeId);
  const mine = rows.find((s) => s.status === "active");
  if (!wallet || !mine) return { replaced: false };
  if (replacedBy(node.db, walletId, node.nodeId)) return { replaced: true };
  // A pending share: a refresh this node took part in that may have committed without telling it.
  if (rows.some((s) => s.status !== "active")) return { replaced: false };
  const key = toHex(wallet.publicKey);
  const seen = new Set<string>();
  const answers: HeldWallet[] = [];
  for (const { asked, answer: h } of await node.holders(walletId)) {
    if (
      h === null ||
      h === undefined ||
      h.nodeId !== asked ||
      asked === node.nodeId ||
      seen.has(asked) ||
      h.walletId !== walletId ||
      h.threshold !== wallet.threshold ||
      h.parties !== wallet.parties ||
      !(h.publicKey instanceof Uint8Array) ||
      toHex(h.publicKey) !== key ||
      !Number.isInteger(h.generation)
    )
      continue;
    seen.add(asked);
    answers.push(h);
  }
  if (answers.length === 0) return { replaced: false };
  const top = Math.max(...answers.map((h) => h.generation));
  if (rows.some((s) => s.generation >= top)) return { replaced: false };
  const newer = answers.filter((h) => h.generation === top);
  const by = newer.find((h) => h.partyIndex === mine.partyIndex);
  const need = Math.max(wallet.threshold, wallet.parties - wallet.threshold + 1);
  if (!by || newer.length < need) return { replaced: false };
  node.db.transaction(() => {
    recordWalletMembers(
      node.db,
      walletId,
      [{ partyIndex: mine.partyIndex, nodeId: by.nodeId }],
      top,
    );
    appendAudit(node.db, node.nodeId, {
      event: "share_replaced",
      walletId,
      partyIndex: mine.partyIndex,
      generation: mine.generation,
      byNode: by.nodeId,
      confirmedBy: newer.map((h) => h.nodeId),
    });
  });
  node.forget(walletId);
  node.log("share_replaced", { walletId, partyIndex: mine.partyIndex, byNode: by.nodeId });
  return { replaced: true };
}
