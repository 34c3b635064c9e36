/**
 * Wallet retirement (issue 11 item 3), host side: the client's `retire`
 * request (docs/mqtt-api.md) and each holder's part of it (node op
 * `retireWallet`, node-rpc.ts).
 *
 * Each holder: loads its share (the enclave needs the sealed policy to check
 * the approvals against), asks its enclave to retire the wallet (RETIRE_WALLET:
 * the enclave checks the approvals, wipes the share and refuses the wallet
 * from then on), then deletes the wallet's rows (store/wallet-deletion.ts:
 * overwritten, then deleted) and audits `wallet_retired` with the approver key
 * ids the enclave counted. A node whose enclave already retired the wallet
 * (a repeat after a crash between the two steps) deletes its rows too.
 *
 * The coordinator asks every live holder at once and succeeds when at least
 * n - t + 1 party indices are retired (now, or earlier by nodes that say so
 * from their audit log): then at most t - 1 shares are left anywhere, too few
 * to sign. A holder that was offline keeps its rows until a retirement is
 * repeated while it is online; the answer names its party indices
 * (`remaining`). Fewer parties covered than that: refused before anything is
 * retired (not_enough_nodes).
 */
import { ethAddress } from "../shared/public-key.ts";
import { DEFAULT_KEY_TYPE, type KeyType } from "../shared/wire/key-type.ts";
import { toHex } from "../shared/hex.ts";
import type { RetireWalletReply, RetireWalletRequest } from "../shared/wire/enclave-ops.ts";
import { contractCode } from "../shared/wire/errors.ts";
import type { NodeOpArgs, RetireOutcome } from "../shared/wire/node-rpc.ts";
import type { ApprovalRelay } from "./coordinator.ts";
import { CeremonyError } from "./coordinator.ts";
import { RequestError, walletHolders } from "./planning.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import { appendAudit, currentShare, deleteWalletRows, getWallet, type Db } from "./store/index.ts";

/** What a holder needs of its NodeHost to retire its share. */
export interface RetiringNode {
  nodeId: string;
  db: Db;
  /** Loads the current share into the enclave (NodeHost.prepare). */
  prepare(walletId: string): Promise<unknown>;
  retireInEnclave(req: RetireWalletRequest): Promise<RetireWalletReply>;
  /** Forgets what the host remembers about the wallet's loaded share. */
  forget(walletId: string): void;
  log(event: string, fields: Record<string, unknown>): void;
}

const failed = (e: unknown): RetireOutcome => {
  const x = e as { code?: unknown; message?: unknown; reason?: unknown };
  return {
    retired: false,
    error: {
      code: typeof x.code === "string" ? x.code : "internal",
      message: typeof x.message === "string" ? x.message.slice(0, 500) : "retirement failed",
      ...(typeof x.reason === "string" ? { reason: x.reason } : {}),
    },
  };
};

/**
 * This node's part: never throws; a refusal is an outcome. An enclave that answers not_found
 * retired the wallet before (this host stopped between its enclave's retirement and deleting
 * its rows): the rows go now, audited without approvers (the enclave counted them the first
 * time, and this host recorded nothing then).
 */
export async function retireHere(
  node: RetiringNode,
  a: NodeOpArgs<"retireWallet">,
): Promise<RetireOutcome> {
  const { walletId, requestId } = a;
  try {
    if (!getWallet(node.db, walletId))
      return failed(
        new RequestError("not_found", `node ${node.nodeId} holds no wallet ${walletId}`),
      );
    const stored = currentShare(node.db, walletId, node.nodeId);
    let reply: RetireWalletReply | null = null;
    try {
      await node.prepare(walletId);
      reply = await node.retireInEnclave({
        walletId,
        requestId,
        approvalRequest: a.approvalRequest,
        approvals: a.approvals,
      });
    } catch (e) {
      if ((e as { code?: unknown }).code !== "not_found") throw e;
    }
    const deleted = deleteWalletRows(node.db, walletId, node.nodeId);
    node.forget(walletId);
    const outcome = {
      retired: true as const,
      partyIndex: reply?.partyIndex ?? stored.partyIndex,
      generation: reply?.generation ?? stored.generation,
      ...(reply?.policyHash === undefined ? {} : { policyHash: toHex(reply.policyHash) }),
      approverKeyIds: (reply?.approverKeyIds ?? []).map((k) => toHex(k)),
    };
    appendAudit(node.db, node.nodeId, {
      event: "wallet_retired",
      walletId,
      requestId,
      partyIndex: outcome.partyIndex,
      generation: outcome.generation,
      ...(outcome.policyHash === undefined ? {} : { policyHash: outcome.policyHash }),
      ...(reply ? { approverKeyIds: outcome.approverKeyIds } : {}),
      ...(a.client === undefined ? {} : { client: a.client }),
    });
    node.log("wallet_retired", { walletId, requestId, shares: deleted.shares, earlier: !reply });
    return outcome;
  } catch (e) {
    node.log("retire_failed", { walletId, requestId, code: (e as { code?: unknown }).code });
    return failed(e);
  }
}

export interface RetirementResult {
  walletId: string;
  keyType: KeyType;
  publicKey: string;
  address: string;
  /** The parties retired, by party index: now, or by an earlier retirement (`earlier`). */
  retired: { nodeId: string; partyIndex: number; earlier?: true }[];
  /** Party indices whose holders were not reached: their rows remain until a repeat (fewer than t). */
  remaining: number[];
  /** Key ids (hex) of the approvers the enclaves counted now. */
  approverKeyIds: string[];
}

/**
 * The coordinator's side of a client's `retire` request: the wallet's live holders, and the
 * live nodes that retired a party of it earlier, must cover n - t + 1 parties before anyone
 * retires; then every live holder is asked at once.
 */
export async function coordinateRetirement(
  peers: PeerDirectory,
  walletId: string,
  requestId: string,
  approval: ApprovalRelay,
  client: string | undefined,
): Promise<RetirementResult> {
  const holders = await walletHolders(peers, walletId);
  if (holders.length === 0)
    throw new RequestError("not_found", `no live node holds wallet ${walletId}`);
  const { threshold: t, parties: n, publicKey } = holders[0]!;
  const holding = new Set(holders.map((h) => h.nodeId));
  const earlier = (
    await Promise.all(
      peers
        .liveNodes()
        .filter((x) => !holding.has(x.nodeId))
        .map(async (x) => ({
          nodeId: x.nodeId,
          party: await peers.ask(x.nodeId, "retiredParty", { walletId }),
        })),
    )
  ).flatMap((x) => (x.party ? [{ nodeId: x.nodeId, partyIndex: x.party.partyIndex }] : []));
  const needed = n - t + 1;
  const covered = new Set([...holders, ...earlier].map((x) => x.partyIndex));
  if (covered.size < needed)
    throw new RequestError(
      "not_enough_nodes",
      `retiring a ${t}-of-${n} wallet needs at least ${needed} of its parties online or retired (then fewer than ${t} shares remain); ${covered.size} are`,
    );
  const args: NodeOpArgs<"retireWallet"> = {
    walletId,
    requestId,
    ...(approval.approvalRequest === undefined
      ? {}
      : { approvalRequest: approval.approvalRequest }),
    ...(approval.approvals === undefined ? {} : { approvals: approval.approvals }),
    ...(client === undefined ? {} : { client }),
  };
  const answers = await Promise.all(
    holders.map(async (h) => ({ h, o: await peers.ask(h.nodeId, "retireWallet", args) })),
  );
  const now = answers.filter(
    (x): x is { h: (typeof holders)[number]; o: Extract<RetireOutcome, { retired: true }> } =>
      x.o?.retired === true,
  );
  const done = new Set([...now.map((x) => x.h.partyIndex), ...earlier.map((x) => x.partyIndex)]);
  if (done.size < needed) {
    const refusal = answers.find((x) => x.o?.retired === false);
    const e = refusal?.o?.retired === false ? refusal.o.error : undefined;
    const partial = now.length > 0 ? ` (${now.length} holders did retire their shares)` : "";
    throw new CeremonyError(
      `wallet ${walletId} was not retired${partial}: ${e?.message ?? "holders did not answer"}`,
      e ? contractCode(e.code) : "ceremony_failed",
      refusal ? { node: refusal.h.nodeId } : {},
      e?.reason,
    );
  }
  const all = Array.from({ length: n }, (_, i) => i + 1);
  return {
    walletId,
    keyType: DEFAULT_KEY_TYPE,
    publicKey: toHex(publicKey),
    address: ethAddress(publicKey),
    retired: [
      ...now.map((x) => ({ nodeId: x.h.nodeId, partyIndex: x.h.partyIndex })),
      ...earlier.map((x) => ({ ...x, earlier: true as const })),
    ].sort((a, b) => a.partyIndex - b.partyIndex),
    remaining: all.filter((k) => !done.has(k)),
    approverKeyIds: [...new Set(now.flatMap((x) => x.o.approverKeyIds))],
  };
}

/**
 * The KMS key-policy statement that makes retired wallets' data keys useless: every share's
 * data key is bound to the encryption context `wallet` (src/enclave/share-sealing.ts), so an
 * explicit Deny on it wins over the nodes' Allow statements, whoever asks. Nodes cannot add it
 * (they hold no KMS administration rights, by design); an operator appends it to the cluster
 * key's policy after a retirement. AWS caps a key policy at 32 KB, so one statement lists a few
 * hundred wallets; docs/ARCHITECTURE.md ("Wallet retirement") says what scales further.
 */
export function retiredWalletsDenyStatement(walletIds: readonly string[]): Record<string, unknown> {
  return {
    Sid: "RetiredWallets",
    Effect: "Deny",
    Principal: { AWS: "*" },
    Action: ["kms:Decrypt", "kms:GenerateDataKey"],
    Resource: "*",
    Condition: { StringEquals: { "kms:EncryptionContext:wallet": [...walletIds] } },
  };
}
