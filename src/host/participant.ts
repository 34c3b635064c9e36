/**
 * What a coordinator needs from each node taking part in a ceremony. The
 * node harness calls NodeHost directly; the MQTT layer implements the same
 * interface with requests to remote nodes' inboxes.
 */
import type { CeremonyReply, CeremonyStepRequest } from "../shared/wire/enclave-ops.ts";
import type {
  CommitCertificate,
  NodeStartRequest,
  PersistKind,
  PreparedShare,
  WalletRecord,
} from "../shared/wire/node-rpc.ts";

export type {
  CommitCertificate,
  HeldWallet,
  PersistKind,
  PreparedShare,
  WalletRecord,
} from "../shared/wire/node-rpc.ts";

export interface Participant {
  readonly nodeId: string;
  /**
   * Reached through the broker (RemoteParticipant): its calls take two broker hops and its
   * host's work before they reach its enclave, so a coordinator sends them before it calls a
   * local participant, whose enclave would otherwise take a core first (coordinator.ts).
   */
  readonly remote?: boolean;
  /** Ensures the wallet's current share is loaded in the enclave; returns what the enclave confirmed. */
  prepare(walletId: string): Promise<PreparedShare>;
  /** A fresh attestation document of this node's enclave (binds its channel keys). */
  attestation(): Promise<Uint8Array>;
  /** `client`, `signerNodes`: for the host only (a signer keeps the answer under the client's request). */
  start(req: NodeStartRequest): Promise<CeremonyReply>;
  step(req: CeremonyStepRequest): Promise<CeremonyReply>;
  /** Drops the session everywhere on this node (enclave keep-state, pending shares). Never throws. */
  abort(sessionId: Uint8Array): Promise<void>;
  /**
   * DKG/refresh finished: seal the new share under a fresh KMS data key and store it pending;
   * returns the enclave's seal receipt (seal-receipt.ts), handed on only once stored.
   */
  persist(
    kind: PersistKind,
    sessionId: Uint8Array,
    wallet: WalletRecord,
    final: CeremonyReply,
  ): Promise<Uint8Array>;
  /**
   * Every node persisted: make the new share current (refresh: old share deleted now).
   * `receipts`: every holder's seal receipt, as persist returned them; the enclave activates
   * only with all n (src/enclave/seal-receipts.ts). `certificate`: the n enclaves' statements
   * of the new generation, for the enclave to verify.
   */
  commit(
    kind: PersistKind,
    sessionId: Uint8Array,
    walletId: string,
    generation: number,
    receipts?: Uint8Array[],
    certificate?: CommitCertificate,
  ): Promise<void>;
  /** Some node failed to persist: discard the pending share, keep the old one. */
  rollback(kind: PersistKind, sessionId: Uint8Array, walletId: string): Promise<void>;
}
