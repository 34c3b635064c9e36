/**
 * Drives a ceremony across participants: starts every node's phase 1, routes
 * each phase's messages by their envelope header, and fails closed — on any
 * error, timeout or failed validation every participant drops the session,
 * and nothing is retried.
 */
import { randomBytes } from "node:crypto";
import { BROADCAST } from "../shared/wire/protocol-message.ts";
import { parseSealedHeader } from "../enclave/peer-envelope.ts";
import type { CeremonyKind, CeremonyReply, CeremonyStartRequest } from "../shared/wire/enclave-ops.ts";
import { toHex } from "../shared/hex.ts";
import { verifySignature, type Signature } from "../shared/signature.ts";
import { derivePublicKey, packageInfo } from "../enclave/dkls23/binding.ts";
import type { Participant, WalletRecord } from "./participant.ts";

/** A ceremony that did not complete: why, and which node to blame when known. */
export class CeremonyError extends Error {
  override name = "CeremonyError";
  constructor(
    message: string,
    readonly code: string,
    readonly node: string | null = null,
  ) {
    super(message);
  }
}

export interface Member {
  participant: Participant;
  partyIndex: number;
}

export interface CoordinatorOptions {
  /** Deadline for every node to answer one phase. */
  phaseTimeoutMs?: number;
  onProgress?: (kind: CeremonyKind, phase: number) => void;
  /** Sees every protocol message the coordinator relays (for audits and tests). */
  onRelay?: (bytes: Uint8Array) => void;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CeremonyError(`${what} did not answer within ${ms} ms`, "deadline_exceeded")), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Names the node a failure points at: the one whose call failed, or the party its enclave blamed. */
function blame(members: Member[], failed: Member, e: unknown): CeremonyError {
  if (e instanceof CeremonyError) return new CeremonyError(e.message, e.code, e.node ?? failed.participant.nodeId);
  const err = e as Error & { code?: string };
  const m = /\[party (\d+)\]/.exec(err.message ?? "");
  const blamed = m ? members.find((x) => x.partyIndex === Number(m[1])) : undefined;
  const node = blamed?.participant.nodeId ?? failed.participant.nodeId;
  return new CeremonyError(`${failed.participant.nodeId}: ${err.message}`, err.code ?? "ceremony_failed", node);
}

/** Runs phases 1..4 across `members`; returns each member's final reply. */
export async function runCeremony(
  kind: CeremonyKind,
  members: Member[],
  sessionId: Uint8Array,
  startFor: (m: Member) => Omit<CeremonyStartRequest, "peerDocuments" | "peerParties">,
  opts: CoordinatorOptions = {},
): Promise<CeremonyReply[]> {
  const timeout = opts.phaseTimeoutMs ?? 180_000;
  const indices = new Set(members.map((m) => m.partyIndex));
  if (indices.size !== members.length) throw new CeremonyError("participants have duplicate party indices", "bad_request");
  /** One request to every member at once; the first failure names its node. Phase 0 = attestation exchange. */
  const call = async <T>(phase: number, f: (m: Member) => Promise<T>): Promise<T[]> => {
    if (phase > 0) opts.onProgress?.(kind, phase);
    const settled = await Promise.allSettled(members.map((m) => withDeadline(f(m), timeout, `${m.participant.nodeId} (phase ${phase})`)));
    const failedAt = settled.findIndex((s) => s.status === "rejected");
    if (failedAt >= 0) {
      const reason = (settled[failedAt] as PromiseRejectedResult).reason;
      throw blame(members, members[failedAt]!, reason);
    }
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  };
  try {
    // Each enclave checks the others' attestation (image, channel keys) before phase 1.
    const docs = await call(0, (m) => m.participant.attestation());
    const docOf = new Map(members.map((m, k) => [m.partyIndex, docs[k]!]));
    let replies = await call(1, (m) => {
      const others = members.filter((x) => x !== m);
      return m.participant.start({ ...startFor(m), peerDocuments: others.map((x) => docOf.get(x.partyIndex)!), peerParties: others.map((x) => x.partyIndex) });
    });
    for (const phase of [2, 3, 4]) {
      const outgoing = replies.flatMap((r, k) =>
        r.messages.map((bytes) => {
          // Sealed end to end by the enclaves; only the clear routing header is read here.
          const msg = { ...parseSealedHeader(bytes), bytes };
          if (msg.from !== members[k]!.partyIndex || toHex(msg.sessionId) !== toHex(sessionId)) {
            throw new CeremonyError(`${members[k]!.participant.nodeId} emitted a message with a foreign header`, "bad_message", members[k]!.participant.nodeId);
          }
          opts.onRelay?.(bytes);
          return msg;
        }),
      );
      replies = await call(phase, (m) =>
        m.participant.step({
          sessionId,
          phase,
          messages: outgoing.filter((x) => x.from !== m.partyIndex && (x.to === BROADCAST || x.to === m.partyIndex)).map((x) => x.bytes),
        }),
      );
    }
    return replies;
  } catch (e) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw e instanceof CeremonyError ? e : new CeremonyError((e as Error).message, "ceremony_failed");
  }
}

export async function createWallet(nodes: Participant[], threshold: number, opts: CoordinatorOptions = {}): Promise<WalletRecord> {
  const parties = nodes.length;
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > parties || parties > 16) {
    throw new CeremonyError(`need 2 <= threshold <= parties <= 16 (threshold ${threshold}, ${parties} nodes)`, "bad_request");
  }
  const walletId = `w_${randomBytes(12).toString("hex")}`;
  const sessionId = randomBytes(32);
  const members = nodes.map((participant, i) => ({ participant, partyIndex: i + 1 }));
  const finals = await runCeremony("dkg", members, sessionId, (m) => ({ kind: "dkg", sessionId, walletId, threshold, parties, partyIndex: m.partyIndex }), opts);
  const pkgs = new Set(finals.map((f) => toHex(f.publicPackage ?? new Uint8Array())));
  if (pkgs.size !== 1) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw new CeremonyError("participants disagree on the public key package", "inconsistent_result");
  }
  const wallet: WalletRecord = { walletId, threshold, parties, publicKey: finals[0]!.publicKey!, publicPackage: finals[0]!.publicPackage! };
  await persistAndCommit("dkg", members, sessionId, wallet, finals);
  return wallet;
}

async function persistAndCommit(kind: "dkg" | "refresh", members: Member[], sessionId: Uint8Array, wallet: WalletRecord, finals: CeremonyReply[]): Promise<void> {
  const persisted = await Promise.allSettled(members.map((m, k) => m.participant.persist(kind, sessionId, wallet, finals[k]!)));
  const bad = persisted.findIndex((p) => p.status === "rejected");
  if (bad >= 0) {
    await Promise.allSettled(members.map((m) => m.participant.rollback(kind, sessionId, wallet.walletId)));
    throw blame(members, members[bad]!, (persisted[bad] as PromiseRejectedResult).reason);
  }
  const generation = finals[0]!.generation;
  const committed = await Promise.allSettled(members.map((m) => m.participant.commit(kind, sessionId, wallet.walletId, generation)));
  const c = committed.findIndex((p) => p.status === "rejected");
  if (c >= 0) throw blame(members, members[c]!, (committed[c] as PromiseRejectedResult).reason);
}

/** Loads and confirms the current share on every node; refuses to start unless all are current. */
async function prepareAll(nodes: Participant[], walletId: string, currentGeneration: number): Promise<Member[]> {
  const prepared = await Promise.allSettled(nodes.map((n) => n.prepare(walletId)));
  const members: Member[] = [];
  for (let k = 0; k < nodes.length; k++) {
    const p = prepared[k]!;
    const node = nodes[k]!.nodeId;
    if (p.status === "rejected") throw new CeremonyError(`${node} could not load its share: ${(p.reason as Error).message}`, (p.reason as { code?: string }).code ?? "prepare_failed", node);
    if (p.value.generation !== currentGeneration) {
      throw new CeremonyError(`${node} holds generation ${p.value.generation}, wallet is at generation ${currentGeneration}; refusing to start`, "stale_share", node);
    }
    members.push({ participant: nodes[k]!, partyIndex: p.value.partyIndex });
  }
  return members;
}

export async function signDigest(
  nodes: Participant[],
  wallet: WalletRecord,
  currentGeneration: number,
  digest: Uint8Array,
  opts: CoordinatorOptions & { path?: string } = {},
): Promise<Signature> {
  if (nodes.length !== wallet.threshold) throw new CeremonyError(`signing needs exactly ${wallet.threshold} nodes, got ${nodes.length}`, "bad_request");
  if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new CeremonyError("digest must be 32 bytes", "bad_request");
  const members = await prepareAll(nodes, wallet.walletId, currentGeneration);
  const signers = members.map((m) => m.partyIndex).sort((a, b) => a - b);
  const sessionId = randomBytes(32);
  const finals = await runCeremony(
    "sign",
    members,
    sessionId,
    () => ({ kind: "sign", sessionId, walletId: wallet.walletId, signers, digest, path: opts.path, expectedGeneration: currentGeneration }),
    opts,
  );
  const sigs = finals.map((f) => f.signature!);
  if (new Set(sigs.map((s) => toHex(s))).size !== 1) throw new CeremonyError("participants produced different signatures", "inconsistent_result");
  const b = sigs[0]!;
  const sig: Signature = { r: b.slice(0, 32), s: b.slice(32, 64), recoveryId: b[64]! };
  const pk = opts.path ? derivePublicKey(wallet.publicPackage, opts.path).publicKey : packageInfo(wallet.publicPackage).publicKey;
  // Never hand out a signature that does not verify.
  if (!verifySignature(pk, digest, sig)) throw new CeremonyError("the combined signature does not verify; discarded", "invalid_signature");
  return sig;
}

export async function refreshWallet(nodes: Participant[], wallet: WalletRecord, currentGeneration: number, opts: CoordinatorOptions = {}): Promise<number> {
  if (nodes.length !== wallet.parties) throw new CeremonyError(`refresh needs all ${wallet.parties} nodes, got ${nodes.length}`, "bad_request");
  const members = await prepareAll(nodes, wallet.walletId, currentGeneration);
  const sessionId = randomBytes(32);
  const finals = await runCeremony("refresh", members, sessionId, () => ({ kind: "refresh", sessionId, walletId: wallet.walletId, expectedGeneration: currentGeneration }), opts);
  if (new Set(finals.map((f) => toHex(f.publicPackage!))).size !== 1 || toHex(finals[0]!.publicKey!) !== toHex(wallet.publicKey)) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw new CeremonyError("refresh results disagree or changed the public key", "inconsistent_result");
  }
  await persistAndCommit("refresh", members, sessionId, { ...wallet, publicPackage: finals[0]!.publicPackage! }, finals);
  return finals[0]!.generation;
}
