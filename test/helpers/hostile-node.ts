/**
 * A hostile node double for ceremonies among real enclave processes: it wraps
 * one real NodeHost and plays that node's compromised host, so its enclave is
 * genuine but every protocol message it relays to its peers can be changed
 * (tampered, replayed, relabelled, padded) and its share can be swapped for an
 * old one, while the coordinator and the other nodes run unmodified code.
 *
 * It also records what its enclave produced in the last ceremony, by phase,
 * so a later ceremony can replay an earlier session's messages.
 */
import type {
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
  KmsCredentialFields,
} from "../../src/shared/wire/enclave-ops.ts";
import { HEADER_LEN } from "../../src/shared/wire/protocol-message.ts";
import type { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { Participant } from "../../src/host/participant.ts";
import type { PreparedShare } from "../../src/shared/wire/node-rpc.ts";
import { getWallet } from "../../src/host/store/index.ts";
import type { StoredShare } from "../../src/host/store/shares-repo.ts";

/** Rewrites the messages the node's enclave produced in `phase` before they leave the node. */
export type Relay = (phase: number, messages: Uint8Array[]) => Uint8Array[];

/** Clear-header offsets (peer-envelope-header.ts). */
export const FROM_AT = 3;
export const SESSION_AT = 5;

export class HostileNode implements Participant {
  /** What the enclave produced in the last ceremony, by the phase that produced it. */
  produced = new Map<number, Uint8Array[]>();
  /** Applied to every outgoing phase's messages; unset = relays honestly. */
  relay: Relay | undefined;
  /** A stored share row to load in place of the current one (the node lies that it is current). */
  staleShare: StoredShare | undefined;
  /** The generation it then claims to hold (the wallet's current one). */
  claimedGeneration = 0;

  constructor(readonly inner: NodeHost) {}

  get nodeId(): string {
    return this.inner.nodeId;
  }

  /** Back to an honest relay with the current share, for the tests that follow. */
  reset(): void {
    this.relay = undefined;
    this.staleShare = undefined;
  }

  async prepare(walletId: string): Promise<PreparedShare> {
    const stale = this.staleShare;
    if (!stale) return this.inner.prepare(walletId);
    const host = this.inner as unknown as {
      enclave: EnclaveClient;
      credentials(): Promise<KmsCredentialFields>;
      loaded: Map<string, PreparedShare>;
    };
    // The host's cache would otherwise skip the load the next honest prepare needs.
    host.loaded.delete(walletId);
    const wallet = getWallet(this.inner.db, walletId)!;
    const r = await host.enclave.loadShare({
      walletId,
      partyIndex: stale.partyIndex,
      generation: stale.generation,
      publicKey: wallet.publicKey,
      sealed: stale.sealedShare,
      ciphertextBlob: stale.kmsCiphertextBlob,
      policy: wallet.policy,
      ...(await host.credentials()),
    });
    // A compromised host claims its share is current; only the enclaves can tell.
    return { walletId, generation: this.claimedGeneration, partyIndex: r.partyIndex };
  }

  attestation(): Promise<Uint8Array> {
    return this.inner.attestation();
  }

  async start(req: CeremonyStartRequest): Promise<CeremonyReply> {
    this.produced = new Map();
    return this.outgoing(1, await this.inner.start(req));
  }

  async step(req: CeremonyStepRequest): Promise<CeremonyReply> {
    return this.outgoing(req.phase, await this.inner.step(req));
  }

  abort(sessionId: Uint8Array): Promise<void> {
    return this.inner.abort(sessionId);
  }

  persist(...a: Parameters<Participant["persist"]>): Promise<Uint8Array> {
    return this.inner.persist(...a);
  }

  commit(...a: Parameters<Participant["commit"]>): Promise<void> {
    return this.inner.commit(...a);
  }

  rollback(...a: Parameters<Participant["rollback"]>): Promise<void> {
    return this.inner.rollback(...a);
  }

  private outgoing(phase: number, reply: CeremonyReply): CeremonyReply {
    this.produced.set(
      phase,
      reply.messages.map((m) => m.slice()),
    );
    if (!this.relay || reply.messages.length === 0) return reply;
    return { ...reply, messages: this.relay(phase, reply.messages) };
  }
}

/** A copy of `m` with one header byte set. */
export function withHeaderByte(m: Uint8Array, at: number, value: number): Uint8Array {
  const out = m.slice();
  out[at] = value;
  return out;
}

/** A copy of `m` whose clear header names `sessionId`. */
export function inSession(m: Uint8Array, sessionId: Uint8Array): Uint8Array {
  const out = m.slice();
  out.set(sessionId, SESSION_AT);
  return out;
}

/** The session id a message's clear header names. */
export function sessionOf(m: Uint8Array): Uint8Array {
  return m.slice(SESSION_AT, HEADER_LEN);
}

/** A copy of `m` with one bit of its protected part (past the clear header) flipped. */
export function bodyBitFlipped(m: Uint8Array): Uint8Array {
  const out = m.slice();
  const at = HEADER_LEN + Math.floor((out.length - HEADER_LEN) / 2);
  out[at]! ^= 0x01;
  return out;
}
