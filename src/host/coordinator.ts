/**
 * Drives a ceremony across participants: starts every node's phase 1, routes
 * each phase's messages by their envelope header, and fails closed — on any
 * error, timeout or failed validation every participant drops the session,
 * and nothing is retried. A phase fails on its first failed call, without
 * waiting for the others: a participant that is lost (its presence went
 * offline, its channel dropped: the bus fails its calls at once) ends the
 * ceremony then, not at the phase deadline, and is the node blamed.
 */
import { randomBytes } from "node:crypto";
import { BROADCAST } from "../shared/wire/protocol-message.ts";
import { readUnverifiedHeader } from "../shared/wire/peer-envelope-header.ts";
import type {
  CeremonyKind,
  CeremonyReply,
  CeremonyStartRequest,
} from "../shared/wire/enclave-ops.ts";
import { toHex } from "../shared/hex.ts";
import type { Signature } from "../shared/signature.ts";
import { signatureVerifies, signingKey } from "./sign-result.ts";
import type { Participant, WalletRecord } from "./participant.ts";
import { CodedError, contractCode, type Blame, type ErrorCode } from "../shared/wire/errors.ts";

/** A ceremony that did not complete: why (always a contract code), and which node to blame when known. */
export class CeremonyError extends CodedError {
  override name = "CeremonyError";
  declare readonly code: ErrorCode;
  constructor(
    message: string,
    code: ErrorCode,
    blame: Blame = {},
    /** An approval refusal's reason (approval.ts APPROVAL_REFUSALS), as the enclave named it. */
    readonly reason?: string,
  ) {
    super(code, message, blame);
  }

  /** The node the failure is blamed on, or null. */
  get node(): string | null {
    return this.blame.node ?? null;
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
  /** What the client sent for the enclaves to check (approval.ts), relayed to every participant unchanged. */
  approval?: ApprovalRelay;
  /** Hears each ceremony's session id once chosen (request-handler.ts logs it with the request id). */
  onSession?: (kind: CeremonyKind, sessionId: Uint8Array) => void;
  /** Hears each phase's duration across all members, and whether it failed (metrics.ts); 0 = attestation. */
  onPhase?: (kind: CeremonyKind, phase: number, ms: number, ok: boolean) => void;
  /**
   * Runs once phase 1's calls to every member are sent (before every call when none is remote):
   * the coordinator's durable record of the ceremony (request-handler.ts), whose fsync then
   * overlaps the members' phase 1 instead of preceding it. No phase 2 is sent before it
   * returns, so no signature exists without the record. A throw fails the phase with that
   * error, every member aborted.
   */
  onDispatched?: () => void;
}

/**
 * The client's approvals as CEREMONY_START carries them; only the enclaves read them. `client`
 * (the request's broker user) is for the signers' hosts only: each keeps a signature it helped
 * make under the client's request (node-rpc.ts NodeStartRequest).
 */
export type ApprovalRelay = Pick<
  CeremonyStartRequest,
  "requestId" | "approvalRequest" | "approvals"
> & { client?: string };

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new CeremonyError(`${what} did not answer within ${ms} ms`, "deadline_exceeded")),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** The party index an error's structured blame names, if any (read defensively: the error crossed a process boundary). */
function blamedParty(e: unknown): number | undefined {
  const p = (e as { blame?: { party?: unknown } } | null)?.blame?.party;
  return Number.isInteger(p) ? (p as number) : undefined;
}

/**
 * Names the node a failure points at: the member whose party index the
 * enclave blamed, else the one whose call failed. Codes below the contract
 * (enclave, core, store) are mapped to contract codes here.
 */
function blame(members: Member[], failed: Member, e: unknown): CeremonyError {
  if (e instanceof CeremonyError)
    return new CeremonyError(
      e.message,
      e.code,
      { ...e.blame, node: e.blame.node ?? failed.participant.nodeId },
      e.reason,
    );
  const err = (e ?? {}) as { code?: unknown; message?: unknown; reason?: unknown };
  const party = blamedParty(e);
  const blamed = party === undefined ? undefined : members.find((x) => x.partyIndex === party);
  const node = blamed?.participant.nodeId ?? failed.participant.nodeId;
  const message = typeof err.message === "string" ? err.message : "failed";
  return new CeremonyError(
    `${failed.participant.nodeId}: ${message}`,
    contractCode(err.code),
    blamed ? { node, party: blamed.partyIndex } : { node },
    typeof err.reason === "string" ? err.reason : undefined,
  );
}

/** A relayed message's clear header; one that does not parse (oversized, malformed) is blamed on the member that emitted it. */
function headerOf(m: Member, bytes: Uint8Array): ReturnType<typeof readUnverifiedHeader> {
  try {
    return readUnverifiedHeader(bytes);
  } catch (e) {
    throw new CeremonyError(
      `${m.participant.nodeId} emitted a malformed message: ${(e as Error).message}`,
      "ceremony_failed",
      { node: m.participant.nodeId, party: m.partyIndex },
    );
  }
}

/** Runs phases 1..4 across `members`; returns each member's final reply. */
export async function runCeremony(
  kind: CeremonyKind,
  members: Member[],
  sessionId: Uint8Array,
  startFor: (m: Member) => Omit<CeremonyStartRequest, "peerDocuments" | "peerParties">,
  opts: CoordinatorOptions = {},
  /** Each member's attestation document (members' order), when already gathered; else asked here. */
  documents?: Uint8Array[],
): Promise<CeremonyReply[]> {
  return (await runAttestedCeremony(kind, members, sessionId, startFor, opts, documents)).replies;
}

/** runCeremony, also returning each member's attestation document of the session (members' order). */
export async function runAttestedCeremony(
  kind: CeremonyKind,
  members: Member[],
  sessionId: Uint8Array,
  startFor: (m: Member) => Omit<CeremonyStartRequest, "peerDocuments" | "peerParties">,
  opts: CoordinatorOptions = {},
  documents?: Uint8Array[],
): Promise<{ replies: CeremonyReply[]; documents: Uint8Array[] }> {
  const timeout = opts.phaseTimeoutMs ?? 180_000;
  opts.onSession?.(kind, sessionId);
  const indices = new Set(members.map((m) => m.partyIndex));
  if (indices.size !== members.length)
    throw new CeremonyError("participants have duplicate party indices", "bad_request");
  /** One request to every member at once; the first failure (in time) names its node and ends the phase. Phase 0 = attestation exchange. */
  const call = async <T>(phase: number, f: (m: Member) => Promise<T>): Promise<T[]> => {
    const t0 = performance.now();
    const report = (ok: boolean) => opts.onPhase?.(kind, phase, performance.now() - t0, ok);
    // Remote members' calls go first, and a local member's once they are written out: the
    // remote path (two broker hops, a host) is the longer one, and the local enclave would
    // take a core from it at once (mqtt.js writes a publish on the next tick, the enclave
    // channel at once). The phase still waits for every member; results stay in members' order.
    const remoteFirst = members.some((m) => m.participant.remote);
    const dispatched = phase === 1 ? opts.onDispatched : undefined;
    if (!remoteFirst) dispatched?.();
    const sent = new Map<Member, Promise<T>>();
    let failed = false;
    for (const m of members)
      if (m.participant.remote || !remoteFirst) {
        const p = f(m);
        p.catch(() => (failed = true));
        sent.set(m, p);
      }
    let gate: Promise<void> | undefined;
    if (remoteFirst) {
      // After mqtt.js's next-tick writes of the calls above: the local members' calls, then
      // onDispatched, whose fsync overlaps every member's phase 1. A phase that failed
      // meanwhile is being aborted: no local member is started after its abort.
      const locals = members.filter((m) => !sent.has(m));
      const localCalls = new Map<Member, Promise<T>>();
      gate = new Promise<void>((r) => setImmediate(r)).then(() => {
        if (failed) return;
        for (const m of locals) localCalls.set(m, f(m));
        dispatched?.();
      });
      const phaseFailed = () =>
        Promise.reject(new CeremonyError("the phase failed before this call", "ceremony_failed"));
      for (const m of locals) {
        const settle = () => localCalls.get(m) ?? phaseFailed();
        sent.set(m, gate.then(settle, settle));
      }
    }
    // The client's progress after the calls: it is not on the ceremony's path.
    if (phase > 0) opts.onProgress?.(kind, phase);
    const all = Promise.all(
      members.map((m) =>
        withDeadline(sent.get(m)!, timeout, `${m.participant.nodeId} (phase ${phase})`).catch(
          (reason: unknown) => {
            throw blame(members, m, reason);
          },
        ),
      ),
    ).then(
      (v) => (report(true), v),
      (e: unknown) => {
        report(false);
        throw e;
      },
    );
    if (!gate) return all;
    // The gate's failure (onDispatched threw) is the phase's: it is what the caller sees.
    all.catch(() => {});
    await gate;
    return all;
  };
  try {
    // Each enclave checks the others' attestation (image, channel keys) before phase 1.
    // Gathered already when the planning round prepared the signers (planning.ts).
    const docs =
      documents?.length === members.length
        ? documents
        : await call(0, (m) => m.participant.attestation());
    const docOf = new Map(members.map((m, k) => [m.partyIndex, docs[k]!]));
    let replies = await call(1, (m) => {
      const others = members.filter((x) => x !== m);
      return m.participant.start({
        ...startFor(m),
        ...opts.approval,
        ...(kind === "sign" && opts.approval?.client !== undefined
          ? { signerNodes: members.map((x) => x.participant.nodeId) }
          : {}),
        peerDocuments: others.map((x) => docOf.get(x.partyIndex)!),
        peerParties: others.map((x) => x.partyIndex),
      });
    });
    // Each sign/refresh participant's signed word on the share it loaded; every other one
    // checks them all at phase 2 (share-state.ts). Relayed as they came: only enclaves judge them.
    const shareStates = replies.map((r) => r.shareState);
    for (const phase of [2, 3, 4]) {
      const outgoing = replies.flatMap((r, k) =>
        r.messages.map((bytes) => {
          // Sealed end to end by the enclaves; only the clear routing header is read here.
          const msg = { ...headerOf(members[k]!, bytes), bytes };
          if (msg.from !== members[k]!.partyIndex || toHex(msg.sessionId) !== toHex(sessionId)) {
            throw new CeremonyError(
              `${members[k]!.participant.nodeId} emitted a message with a foreign header`,
              "ceremony_failed",
              { node: members[k]!.participant.nodeId, party: members[k]!.partyIndex },
            );
          }
          opts.onRelay?.(bytes);
          return msg;
        }),
      );
      replies = await call(phase, (m) =>
        m.participant.step({
          sessionId,
          phase,
          messages: outgoing
            .filter((x) => x.from !== m.partyIndex && (x.to === BROADCAST || x.to === m.partyIndex))
            .map((x) => x.bytes),
          ...(phase === 2 && kind !== "dkg"
            ? {
                shareStates: shareStates.filter(
                  (s, k): s is Uint8Array => s !== undefined && members[k] !== m,
                ),
              }
            : {}),
        }),
      );
    }
    return { replies, documents: docs };
  } catch (e) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw e instanceof CeremonyError
      ? e
      : new CeremonyError((e as Error).message, "ceremony_failed");
  }
}

export async function createWallet(
  nodes: Participant[],
  threshold: number,
  /**
   * walletId: the one the client's approvals name; policy: the new wallet's approval policy
   * encoding; importKey: a key import instead of a fresh key (key-import.ts): the client's
   * envelope, relayed to every participant, and the party index of the one it is sealed to.
   */
  opts: CoordinatorOptions & {
    walletId?: string;
    policy?: Uint8Array;
    importKey?: { envelope: Uint8Array; dealer: number };
  } = {},
): Promise<WalletRecord> {
  const parties = nodes.length;
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > parties || parties > 16) {
    throw new CeremonyError(
      `need 2 <= threshold <= parties <= 16 (threshold ${threshold}, ${parties} nodes)`,
      "bad_request",
    );
  }
  const walletId = opts.walletId ?? `w_${randomBytes(12).toString("hex")}`;
  const sessionId = randomBytes(32);
  const members = nodes.map((participant, i) => ({ participant, partyIndex: i + 1 }));
  const { replies: finals, documents } = await runAttestedCeremony(
    "dkg",
    members,
    sessionId,
    (m) => ({
      kind: "dkg",
      sessionId,
      walletId,
      threshold,
      parties,
      partyIndex: m.partyIndex,
      policy: opts.policy,
      ...(opts.importKey && {
        importEnvelope: opts.importKey.envelope,
        importDealer: opts.importKey.dealer,
      }),
    }),
    opts,
  );
  const pkgs = new Set(
    finals.map(
      (f) =>
        `${toHex(f.publicPackage ?? new Uint8Array())}/${toHex(f.chainCode ?? new Uint8Array())}`,
    ),
  );
  if (pkgs.size !== 1) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw new CeremonyError(
      "participants disagree on the public key package",
      "inconsistent_result",
    );
  }
  const wallet: WalletRecord = {
    walletId,
    threshold,
    parties,
    publicKey: finals[0]!.publicKey!,
    publicPackage: finals[0]!.publicPackage!,
    chainCode: finals[0]!.chainCode!,
    ...(opts.policy === undefined ? {} : { policy: opts.policy }),
  };
  await persistAndCommit("dkg", members, sessionId, wallet, finals, documents);
  return wallet;
}

export async function persistAndCommit(
  kind: "dkg" | "refresh",
  members: Member[],
  sessionId: Uint8Array,
  wallet: WalletRecord,
  finals: CeremonyReply[],
  documents: Uint8Array[],
  /**
   * A repair's new holder (share-repair.ts): its refresh output is its first share of the
   * wallet, so its host stores and commits it the way a DKG's is (wallet row created there).
   */
  firstShareAt?: Participant | readonly Participant[],
): Promise<void> {
  // A reshare's new members (wallet-reshare.ts) store their first share the same way.
  const first = Array.isArray(firstShareAt) ? firstShareAt : [firstShareAt];
  const kindOf = (m: Member) => (first.includes(m.participant) ? "dkg" : kind);
  const persisted = await Promise.allSettled(
    members.map((m, k) => m.participant.persist(kindOf(m), sessionId, wallet, finals[k]!)),
  );
  const bad = persisted.findIndex((p) => p.status === "rejected");
  if (bad >= 0) {
    await Promise.allSettled(
      members.map((m) => m.participant.rollback(kindOf(m), sessionId, wallet.walletId)),
    );
    throw blame(members, members[bad]!, (persisted[bad] as PromiseRejectedResult).reason);
  }
  const generation = finals[0]!.generation;
  // Every holder's seal receipt, handed on by its host once it stored the share: each enclave
  // activates only with all n (src/enclave/seal-receipts.ts).
  const receipts = persisted.map((p) => (p as PromiseFulfilledResult<Uint8Array>).value);
  // The commit certificate: every holder's statement of the new generation and the document
  // binding its key. Each enclave checks it and then refuses any older share (commit-certificate.ts).
  const statements = finals.map((f) => f.statement);
  const certificate = statements.every((s): s is Uint8Array => s !== undefined)
    ? { statements, documents }
    : undefined;
  const committed = await Promise.allSettled(
    members.map((m) =>
      m.participant.commit(
        kindOf(m),
        sessionId,
        wallet.walletId,
        generation,
        receipts,
        certificate,
      ),
    ),
  );
  const c = committed.findIndex((p) => p.status === "rejected");
  if (c >= 0) throw blame(members, members[c]!, (committed[c] as PromiseRejectedResult).reason);
}

/**
 * Loads and confirms the current share on every node; refuses to start unless all say they are
 * current. Only the hosts' word, an early refusal: what decides is the enclaves' share-state
 * statements at phase 2 (src/enclave/share-state.ts), which a lying host cannot pass.
 */
export async function prepareAll(
  nodes: Participant[],
  walletId: string,
  currentGeneration: number,
): Promise<Member[]> {
  const prepared = await Promise.allSettled(nodes.map((n) => n.prepare(walletId)));
  const members: Member[] = [];
  for (let k = 0; k < nodes.length; k++) {
    const p = prepared[k]!;
    const node = nodes[k]!.nodeId;
    if (p.status === "rejected")
      throw new CeremonyError(
        `${node} could not load its share: ${(p.reason as Error).message}`,
        contractCode((p.reason as { code?: unknown }).code),
        { node },
      );
    if (p.value.generation !== currentGeneration) {
      throw new CeremonyError(
        `${node} holds generation ${p.value.generation}, wallet is at generation ${currentGeneration}; refusing to start`,
        "stale_share",
        { node },
      );
    }
    members.push({ participant: nodes[k]!, partyIndex: p.value.partyIndex });
  }
  return members;
}

/** What each signer's planning-round preparation answered (planning.ts PreparedSigner), in `nodes` order. */
export interface PreparedMember {
  generation: number;
  partyIndex: number;
  document: Uint8Array;
}

/** The members a planning round already prepared, with prepareAll's check of their generation. */
function preparedMembers(
  nodes: Participant[],
  prepared: PreparedMember[],
  currentGeneration: number,
): Member[] {
  return nodes.map((participant, k) => {
    const p = prepared[k]!;
    if (p.generation !== currentGeneration)
      throw new CeremonyError(
        `${participant.nodeId} holds generation ${p.generation}, wallet is at generation ${currentGeneration}; refusing to start`,
        "stale_share",
        { node: participant.nodeId },
      );
    return { participant, partyIndex: p.partyIndex };
  });
}

export async function signDigest(
  nodes: Participant[],
  wallet: WalletRecord,
  currentGeneration: number,
  digest: Uint8Array,
  /** prepared: what the planning round's preparation of `nodes` answered; skips the prepare and attestation rounds. */
  opts: CoordinatorOptions & { path?: string; prepared?: PreparedMember[] } = {},
): Promise<Signature> {
  if (nodes.length !== wallet.threshold)
    throw new CeremonyError(
      `signing needs exactly ${wallet.threshold} nodes, got ${nodes.length}`,
      "bad_request",
    );
  if (!(digest instanceof Uint8Array) || digest.length !== 32)
    throw new CeremonyError("digest must be 32 bytes", "bad_request");
  const fast = opts.prepared?.length === nodes.length ? opts.prepared : undefined;
  const members = fast
    ? preparedMembers(nodes, fast, currentGeneration)
    : await prepareAll(nodes, wallet.walletId, currentGeneration);
  const signers = members.map((m) => m.partyIndex).sort((a, b) => a - b);
  const sessionId = randomBytes(32);
  const finals = await runCeremony(
    "sign",
    members,
    sessionId,
    () => ({
      kind: "sign",
      sessionId,
      walletId: wallet.walletId,
      signers,
      digest,
      path: opts.path,
      expectedGeneration: currentGeneration,
    }),
    opts,
    fast?.map((p) => p.document),
  );
  const sigs = finals.map((f) => f.signature!);
  if (new Set(sigs.map((s) => toHex(s))).size !== 1)
    throw new CeremonyError("participants produced different signatures", "inconsistent_result");
  const b = sigs[0]!;
  const sig: Signature = { r: b.slice(0, 32), s: b.slice(32, 64), recoveryId: b[64]! };
  const pk = signingKey({
    publicKey: wallet.publicKey,
    chainCode: wallet.chainCode,
    path: opts.path,
  });
  // Never hand out a signature that does not verify (this host's own signer checked it already).
  if (!signatureVerifies(pk, digest, sig))
    throw new CeremonyError(
      "the combined signature does not verify; discarded",
      "invalid_signature",
    );
  return sig;
}

export async function refreshWallet(
  nodes: Participant[],
  wallet: WalletRecord,
  currentGeneration: number,
  /**
   * newPolicy: a policy change (approval.ts encoding): each holder's enclave checks the
   * current policy's approval of it, and the refresh's new shares are sealed with it, so it is
   * applied by all n holders when the refresh commits, or by none.
   */
  opts: CoordinatorOptions & {
    newPolicy?: Uint8Array;
    /**
     * The complete refresh that completes a share repair (share-repair.ts): `nodes` are the
     * n - 1 other holders; the new holder of party `partyIndex` joins with the hollow share
     * its enclave kept from repair session `repairSession` (it has nothing to prepare).
     */
    repaired?: { node: Participant; partyIndex: number; repairSession: Uint8Array };
  } = {},
): Promise<number> {
  const repaired = opts.repaired;
  if (nodes.length + (repaired ? 1 : 0) !== wallet.parties)
    throw new CeremonyError(
      `refresh needs all ${wallet.parties} nodes, got ${nodes.length + (repaired ? 1 : 0)}`,
      "bad_request",
    );
  const members = await prepareAll(nodes, wallet.walletId, currentGeneration);
  if (repaired) members.push({ participant: repaired.node, partyIndex: repaired.partyIndex });
  const sessionId = randomBytes(32);
  const { replies: finals, documents } = await runAttestedCeremony(
    "refresh",
    members,
    sessionId,
    (m) => ({
      kind: "refresh",
      sessionId,
      walletId: wallet.walletId,
      expectedGeneration: currentGeneration,
      ...(opts.newPolicy === undefined ? {} : { policy: opts.newPolicy }),
      ...(repaired && m.participant === repaired.node
        ? { repairSession: repaired.repairSession }
        : {}),
    }),
    opts,
  );
  if (
    new Set(finals.map((f) => toHex(f.publicPackage!))).size !== 1 ||
    toHex(finals[0]!.publicKey!) !== toHex(wallet.publicKey) ||
    finals.some((f) => toHex(f.chainCode ?? new Uint8Array()) !== toHex(wallet.chainCode))
  ) {
    await Promise.allSettled(members.map((m) => m.participant.abort(sessionId)));
    throw new CeremonyError(
      "refresh results disagree or changed the public key",
      "inconsistent_result",
    );
  }
  await persistAndCommit(
    "refresh",
    members,
    sessionId,
    {
      ...wallet,
      publicPackage: finals[0]!.publicPackage!,
      ...(opts.newPolicy === undefined ? {} : { policy: opts.newPolicy }),
    },
    finals,
    documents,
    repaired?.node,
  );
  return finals[0]!.generation;
}
