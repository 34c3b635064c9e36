/**
 * A participant on another node, reached through the bus's node RPC. The
 * coordinator drives it exactly like a local NodeHost.
 */
import type { CeremonyReply, CeremonyStartRequest, CeremonyStepRequest } from "../shared/wire/enclave-ops.ts";
import type { Participant, PreparedShare, WalletRecord } from "./participant.ts";

export interface NodeRpc {
  callNode(nodeId: string, op: string, args: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
}

export class RemoteParticipant implements Participant {
  constructor(
    readonly nodeId: string,
    private readonly rpc: NodeRpc,
    private readonly timeoutMs: number,
  ) {}

  private call<T>(op: string, args: unknown): Promise<T> {
    return this.rpc.callNode(this.nodeId, op, args, { timeoutMs: this.timeoutMs }) as Promise<T>;
  }

  prepare(walletId: string): Promise<PreparedShare> {
    return this.call("prepare", { walletId });
  }
  async attestation(): Promise<Uint8Array> {
    return ((await this.call<{ document: Uint8Array }>("attestation", {})).document);
  }
  start(req: CeremonyStartRequest): Promise<CeremonyReply> {
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
  persist(kind: "dkg" | "refresh", sessionId: Uint8Array, wallet: WalletRecord, final: CeremonyReply): Promise<void> {
    return this.call("persist", { kind, sessionId, wallet, final });
  }
  commit(kind: "dkg" | "refresh", sessionId: Uint8Array, walletId: string, generation: number): Promise<void> {
    return this.call("commit", { kind, sessionId, walletId, generation });
  }
  rollback(kind: "dkg" | "refresh", sessionId: Uint8Array, walletId: string): Promise<void> {
    return this.call("rollback", { kind, sessionId, walletId });
  }
}

/** Serves the node RPC ops for the local NodeHost (what RemoteParticipant calls). */
export function participantHandlers(local: Participant & { walletInfo(walletId: string): unknown; listWallets(): unknown; lookupRequest(kind: string, requestId: string): unknown }) {
  type A = Record<string, unknown>;
  return async (op: string, a: A): Promise<unknown> => {
    switch (op) {
      case "prepare":
        return local.prepare(a.walletId as string);
      case "attestation":
        return { document: await local.attestation() };
      case "start":
        return local.start(a as unknown as CeremonyStartRequest);
      case "step":
        return local.step(a as unknown as CeremonyStepRequest);
      case "abort":
        await local.abort(a.sessionId as Uint8Array);
        return {};
      case "persist":
        await local.persist(a.kind as "dkg" | "refresh", a.sessionId as Uint8Array, a.wallet as WalletRecord, a.final as CeremonyReply);
        return {};
      case "commit":
        await local.commit(a.kind as "dkg" | "refresh", a.sessionId as Uint8Array, a.walletId as string, a.generation as number);
        return {};
      case "rollback":
        await local.rollback(a.kind as "dkg" | "refresh", a.sessionId as Uint8Array, a.walletId as string);
        return {};
      case "walletInfo":
        return local.walletInfo(a.walletId as string);
      case "listWallets":
        return local.listWallets();
      case "lookupRequest":
        return local.lookupRequest(a.kind as string, a.requestId as string);
      default:
        throw Object.assign(new Error(`unknown node operation ${op}`), { code: "bad_request" });
    }
  };
}
