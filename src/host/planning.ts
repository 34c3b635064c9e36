/**
 * Planning a client request before any ceremony runs: what the live nodes
 * know about it (one round of node RPCs: the outcome stored under the
 * request id, and each node's share of the wallet), and which nodes take
 * part. DKG takes n live nodes (the coordinator first); signing takes t live
 * holders of the wallet's current generation (the coordinator first when it
 * holds one); refresh takes all n holders, by party index.
 *
 * For a signature the same round also prepares the signers (issue 12 item
 * 4): the coordinator guesses them from its HolderView (the holders the
 * previous round of the wallet reported, kept while presence is unchanged)
 * and asks those nodes to load their share and attest as part of the round.
 * The guess decides nothing: the round's fresh answers do, and when they
 * disagree with it (a refresh elsewhere, a node that failed to load) the
 * coordinator plans from the answers and prepares in separate rounds as
 * before.
 */
import { createHash, randomBytes } from "node:crypto";
import type { CeremonyKind } from "../shared/wire/enclave-ops.ts";
import { CodedError, type ErrorCode } from "../shared/wire/errors.ts";
import type { HeldWallet, StoredRequest } from "../shared/wire/node-rpc.ts";
import type { LiveNode } from "./mqtt/bus.ts";
import type { PeerDirectory } from "./peer-directory.ts";

/** A request the coordinator refuses or cannot serve, with the contract code and, where known, the node to blame. */
export class RequestError extends CodedError {
  override name = "RequestError";
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, node: string | null = null) {
    super(code, message, node ? { node } : {});
  }

  get node(): string | null {
    return this.blame.node ?? null;
  }
}

/** What the live nodes know about a request, from one round of `requestContext` calls. */
export interface RequestPlanContext {
  /** The stored result of an earlier run of this request id, if one succeeded. */
  prior: unknown | undefined;
  /** Every live node's share of the named wallet (empty when no wallet was named). */
  holders: HeldWallet[];
  /** Asked with `prepareOn`: the nodes that loaded their share, with their document (nodes that could not are absent). */
  prepared?: Map<string, PreparedSigner>;
}

/** A signer prepared in the planning round: what `prepare` and `attestation` would have answered. */
export interface PreparedSigner {
  generation: number;
  partyIndex: number;
  document: Uint8Array;
}

/**
 * Hex SHA-256 of what a ceremony request asks for: its kind, wallet, and the
 * digest and path (sign) or threshold, parties and policy (DKG; and whether it
 * is a key import), normalised
 * as the handler reads them. Approvals are not part of it: a retry may carry
 * freshly signed ones for the same request. A request id that comes back with
 * another hash is another request under a reused id, refused with `conflict`.
 */
export function requestParamsHash(kind: CeremonyKind, b: Record<string, unknown>): string {
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const params =
    kind === "sign"
      ? {
          kind,
          walletId: str(b.walletId),
          digest: str(b.digest)?.replace(/^0x/, "").toLowerCase() ?? null,
          path: str(b.path),
        }
      : kind === "dkg"
        ? {
            kind,
            walletId: str(b.walletId),
            threshold: b.threshold ?? 3,
            parties: b.parties ?? 5,
            policy: str(b.policy),
            // A key import is a DKG with the client's key; its envelope differs per retry (a fresh
            // HPKE seal), so only the fact is hashed. Absent for a DKG: earlier hashes stand.
            ...(b.envelope === undefined ? {} : { import: true }),
          }
        : // A policy change (a refresh with a new policy) hashes its policy; a plain refresh as before.
          {
            kind,
            walletId: str(b.walletId),
            ...(b.policy === undefined ? {} : { policy: str(b.policy) }),
          };
  return createHash("sha256").update(JSON.stringify(params)).digest("hex");
}

/** Who asked and with what: request ids are unique per client user. */
export interface RequestIdentity {
  /** The broker user of the request's Response Topic (requests.ts RequestReply.client). */
  client: string;
  /** requestParamsHash of the request. */
  paramsHash: string;
}

/**
 * Asks every live node at once about `requestId` (and its share of
 * `walletId`). An earlier run of the request id decides first: a success is
 * returned as is, one still running or failed is refused, and one with other
 * parameters is refused with `conflict`. With `who`, only that client user's
 * request id counts: another user's run of the same id is not seen.
 */
export async function gatherRequestContext(
  peers: PeerDirectory,
  kind: CeremonyKind,
  requestId: string,
  walletId?: string,
  who?: RequestIdentity,
  /** Nodes asked to load their share of `walletId` and attest in the same round (expected signers). */
  prepareOn?: ReadonlySet<string>,
  /** How long those nodes may take (a `prepare` call's deadline); the others get the ask default. */
  prepareTimeout: { timeoutMs?: number } = {},
): Promise<RequestPlanContext> {
  const args = {
    kind,
    requestId,
    ...(walletId === undefined ? {} : { walletId }),
    ...(who === undefined ? {} : { client: who.client }),
  };
  const live = peers.liveNodes();
  const answers = await Promise.all(
    live.map((n) =>
      walletId !== undefined && prepareOn?.has(n.nodeId)
        ? // Loading a share may wait on KMS: as long as a `prepare` call may take.
          peers.ask(n.nodeId, "requestContext", { ...args, prepare: true }, prepareTimeout)
        : peers.ask(n.nodeId, "requestContext", args),
    ),
  );
  const prior = priorOutcome(
    requestId,
    answers.map((a) => a?.request ?? null),
    who?.paramsHash,
  );
  // A degraded node (its enclave is down) still reports stored outcomes, but is not a signer.
  const signer = (k: number) => live[k]!.status !== "degraded";
  const context: RequestPlanContext = {
    prior,
    holders: answers
      .map((a, k) => (signer(k) ? (a?.wallet ?? null) : null))
      .filter((w): w is HeldWallet => w !== null),
  };
  if (prepareOn) {
    context.prepared = new Map();
    answers.forEach((a, k) => {
      const p = a?.prepared;
      if (!signer(k) || !p || "error" in p || !(a.document instanceof Uint8Array)) return;
      if (!Number.isSafeInteger(p.generation) || !Number.isSafeInteger(p.partyIndex)) return;
      context.prepared!.set(live[k]!.nodeId, {
        generation: p.generation,
        partyIndex: p.partyIndex,
        document: a.document,
      });
    });
  }
  return context;
}

/**
 * The holders each wallet's last planning round reported, per coordinator:
 * a guess at the next signature's signers, so the planning round can prepare
 * them. Kept current from presence (an entry counts only while the live
 * nodes, their status and their `since` are what they were when it was
 * written: a restart, a reconnect or a degraded enclave changes them) and
 * from commits (the coordinator forgets a wallet it refreshed or retired;
 * a refresh coordinated elsewhere shows in the next round's answers, which
 * overwrite the entry). Bounded: the oldest entries go first.
 */
export class HolderView {
  private readonly byWallet = new Map<string, { presence: string; holders: HeldWallet[] }>();
  constructor(private readonly maxWallets = 4_096) {}

  private static presence(live: readonly LiveNode[]): string {
    return live
      .map((n) => `${n.nodeId}/${n.status ?? "online"}/${n.since}`)
      .sort()
      .join(",");
  }

  get(walletId: string, live: readonly LiveNode[]): HeldWallet[] | undefined {
    const e = this.byWallet.get(walletId);
    return e && e.presence === HolderView.presence(live) ? e.holders : undefined;
  }

  set(walletId: string, live: readonly LiveNode[], holders: HeldWallet[]): void {
    this.byWallet.delete(walletId);
    this.byWallet.set(walletId, { presence: HolderView.presence(live), holders });
    if (this.byWallet.size > this.maxWallets)
      this.byWallet.delete(this.byWallet.keys().next().value!);
  }

  forget(walletId: string): void {
    this.byWallet.delete(walletId);
  }
}

/**
 * The decisive stored outcome among the nodes' answers: a success anywhere
 * wins (a request whose coordinator died may have been run again by another
 * node, and the dead one's row stays "running"), then the first running or
 * failed one in live-node order.
 */
export function priorOutcome(
  requestId: string,
  stored: (StoredRequest | null)[],
  paramsHash?: string,
): unknown | undefined {
  // A recorded run with other parameters: the id was reused. Nothing of the first run is told.
  if (
    paramsHash !== undefined &&
    stored.some((a) => a && typeof a.paramsHash === "string" && a.paramsHash !== paramsHash)
  )
    throw new RequestError(
      "conflict",
      `request id ${requestId} was already used with other parameters; use a new request id`,
    );
  const succeeded = stored.find((a) => a?.status === "succeeded" && a.result);
  if (succeeded) return JSON.parse(new TextDecoder().decode(succeeded.result!));
  for (const a of stored) {
    if (!a) continue;
    if (a.status === "succeeded" && a.result) return JSON.parse(new TextDecoder().decode(a.result));
    if (a.status === "running")
      throw new RequestError("bad_request", `request ${requestId} is still running`);
    if (a.status === "failed")
      throw new RequestError("ceremony_failed", `request ${requestId} already failed: ${a.error}`);
  }
  return undefined;
}

/** Every live node's share of `walletId` (for the `wallet` query). */
export async function walletHolders(peers: PeerDirectory, walletId: string): Promise<HeldWallet[]> {
  const answers = await Promise.all(
    peers.liveNodes().map((n) => peers.ask(n.nodeId, "walletInfo", { walletId })),
  );
  return answers.filter((w): w is HeldWallet => w !== null && w !== undefined);
}

/** The holders of the wallet's newest generation; not_found when no live node holds it. */
export function currentHolders(
  walletId: string,
  holders: HeldWallet[],
): { generation: number; current: HeldWallet[] } {
  if (holders.length === 0)
    throw new RequestError("not_found", `no live node holds wallet ${walletId}`);
  const generation = Math.max(...holders.map((h) => h.generation));
  return { generation, current: holders.filter((h) => h.generation === generation) };
}

export function nodesByParty(hs: HeldWallet[]): string[] {
  return [...hs].sort((a, b) => a.partyIndex - b.partyIndex).map((h) => h.nodeId);
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32BE() % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** `parties` live nodes for a DKG: the coordinator, then others at random. */
export function planDkg(me: string, live: string[], threshold: number, parties: number): string[] {
  if (live.length < parties)
    throw new RequestError(
      "not_enough_nodes",
      `a ${threshold}-of-${parties} wallet needs ${parties} live nodes; ${live.length} are online`,
    );
  return [me, ...shuffle(live.filter((x) => x !== me))].slice(0, parties);
}

/** `threshold` current holders for a signature: the coordinator first when it holds a share, then others at random. */
export function planSign(
  me: string,
  walletId: string,
  generation: number,
  current: HeldWallet[],
  threshold: number,
): string[] {
  if (current.length < threshold)
    throw new RequestError(
      "not_enough_nodes",
      `wallet ${walletId} needs ${threshold} signers; ${current.length} holders of generation ${generation} are online`,
    );
  const mine = current.find((h) => h.nodeId === me);
  return [...(mine ? [mine] : []), ...shuffle(current.filter((h) => h.nodeId !== me))]
    .slice(0, threshold)
    .map((h) => h.nodeId);
}

/** Every holder for a refresh, by party index. */
export function planRefresh(current: HeldWallet[], parties: number): string[] {
  if (current.length < parties)
    throw new RequestError(
      "not_enough_nodes",
      `refresh needs all ${parties} holders online; ${current.length} are`,
    );
  return nodesByParty(current);
}
