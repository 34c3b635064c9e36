/**
 * A participant on another node, reached through the bus's node RPC, and the
 * server side that answers those calls for the local NodeHost. Both are typed
 * by the operation table in src/shared/wire/node-rpc.ts; the server checks
 * every call's arguments there before the host sees them.
 */
import type { CeremonyReply, CeremonyStepRequest } from "../shared/wire/enclave-ops.ts";
import {
  callNodeOp,
  nodeOpDispatcher,
  type NodeCaller,
  type NodeStartRequest,
  type NodeOpHandlers,
  type NodeOpArgs,
  type NodeOpName,
  type NodeOpResult,
} from "../shared/wire/node-rpc.ts";
import type { NodeHost, OutcomeSource } from "./node-host.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import type {
  CommitCertificate,
  Participant,
  PersistKind,
  PreparedShare,
  WalletRecord,
} from "./participant.ts";

export class RemoteParticipant implements Participant {
  readonly remote = true;
  constructor(
    readonly nodeId: string,
    private readonly rpc: NodeCaller,
    private readonly timeoutMs: number,
  ) {}

  private call<K extends NodeOpName>(op: K, args: NodeOpArgs<K>): Promise<NodeOpResult<K>> {
    return callNodeOp(this.rpc, this.nodeId, op, args, { timeoutMs: this.timeoutMs });
  }

  prepare(walletId: string): Promise<PreparedShare> {
    return this.call("prepare", { walletId });
  }
  async attestation(): Promise<Uint8Array> {
    return (await this.call("attestation", {})).document;
  }
  start(req: NodeStartRequest): Promise<CeremonyReply> {
    return this.call("start", req);
  }
  step(req: CeremonyStepRequest): Promise<CeremonyReply> {
    return this.call("step", req);
  }
  async abort(sessionId: Uint8Array): Promise<void> {
    try {
      await this.call("abort", { sessionId });
    } catch {
      // Best effort: the enclave's phase deadline wipes the session anyway.
    }
  }
  // Participant.persist as the interface fixes it; NodeHost implements the same signature locally.
  async persist(
    kind: PersistKind,
    sessionId: Uint8Array,
    wallet: WalletRecord,
    final: CeremonyReply,
  ): Promise<Uint8Array> {
    return (await this.call("persist", { kind, sessionId, wallet, final })).receipt;
  }
  async commit(
    kind: PersistKind,
    sessionId: Uint8Array,
    walletId: string,
    generation: number,
    receipts: Uint8Array[] = [],
    certificate?: CommitCertificate,
  ): Promise<void> {
    await this.call("commit", { kind, sessionId, walletId, generation, receipts, certificate });
  }
  async rollback(kind: PersistKind, sessionId: Uint8Array, walletId: string): Promise<void> {
    await this.call("rollback", { kind, sessionId, walletId });
  }
}

/** What the node RPC server needs of the local host. */
export type LocalNode = Pick<
  NodeHost,
  | Exclude<keyof Participant, "remote">
  | "walletInfo"
  | "listWallets"
  | "requestContext"
  | "ceremonyOutcome"
  | "retireWallet"
  | "retiredParty"
  | "recordMembers"
  | "checkReplaced"
  | "proveActive"
>;

/** The local NodeHost's answer to each node RPC op (what RemoteParticipant and the peer directory call). */
export function nodeOpHandlers(local: LocalNode): NodeOpHandlers {
  return {
    prepare: (a) => local.prepare(a.walletId),
    attestation: async () => ({ document: await local.attestation() }),
    // The caller that started a session is the only one that may step or abort it (NodeHost.step).
    start: (a, caller) => local.start(a, caller),
    step: (a, caller) => local.step(a, caller),
    abort: async (a, caller) => {
      await local.abort(a.sessionId, caller);
      return {};
    },
    // Persist, commit and rollback likewise: only the session's starter (NodeHost.refuseNonFinisher).
    // A holder settling from its peers asks ceremonyOutcome, which any node may.
    persist: async (a, caller) => ({
      receipt: await local.persist(a.kind, a.sessionId, a.wallet, a.final, caller),
    }),
    commit: async (a, caller) => {
      await local.commit(
        a.kind,
        a.sessionId,
        a.walletId,
        a.generation,
        a.receipts,
        a.certificate,
        caller,
      );
      return {};
    },
    rollback: async (a, caller) => {
      await local.rollback(a.kind, a.sessionId, a.walletId, caller);
      return {};
    },
    walletInfo: (a) => local.walletInfo(a.walletId),
    listWallets: () => local.listWallets(),
    requestContext: (a) =>
      a.prepare === true
        ? local.requestContext(a.kind, a.requestId, a.walletId, a.client, true)
        : local.requestContext(a.kind, a.requestId, a.walletId, a.client),
    ceremonyOutcome: (a) => local.ceremonyOutcome(a.walletId, a.sessionId),
    retireWallet: (a) => local.retireWallet(a),
    retiredParty: (a) => local.retiredParty(a.walletId),
    recordMembers: (a) => {
      local.recordMembers(a.walletId, a.generation, a.members);
      return {};
    },
    checkReplaced: (a) => local.checkReplaced(a.walletId),
    proveActive: (a) => local.proveActive(a.walletId, a.nonce),
  };
}

/** The inbox handler for the local NodeHost: every call's arguments are checked before it runs. */
export function serveNodeOps(
  local: LocalNode,
): (op: string, args: unknown, caller?: string) => Promise<unknown> {
  return nodeOpDispatcher(nodeOpHandlers(local));
}

/** How a NodeHost asks every other live node about a refresh session (NodeHost.outcomeSource); a silent node answers null. */
export function peerOutcomeSource(
  selfId: string,
  peers: Pick<PeerDirectory, "liveNodes" | "ask">,
): OutcomeSource {
  return (walletId, sessionId) =>
    Promise.all(
      peers
        .liveNodes()
        .filter((n) => n.nodeId !== selfId)
        .map(async (n) => ({
          nodeId: n.nodeId,
          answer: await peers.ask(n.nodeId, "ceremonyOutcome", { walletId, sessionId }),
        })),
    );
}
