/**
 * The enclave's half of a reshare to a new committee (issue 11 item 4,
 * docs/RESHARING.md; approval digest in src/shared/wire/reshare.ts). The core
 * (dkls23/sessions.ts Reshare, ceremony code 6) does the cryptography; this
 * session decides what the core may trust.
 *
 * Dealers (old holders in the quorum, each at a seat of the new committee)
 * deal from the share they loaded, pinned for the session and refused when
 * stale (as a refresh's), and state it in a share-state statement of
 * ceremony "reshare" signed with their attested channel key.
 *
 * New-only members hold no share and trust no host: the old public package
 * and policy the start hands them are used only if, at phase 2 and before
 * the core reads a byte, exactly one statement from every dealer seat,
 * signed by that seat's attested channel key for this session and wallet,
 * names that package's hash, its generation and the policy whose hash the
 * start's policy has. Dealers check each other's statements the same way
 * against their own. Since every dealer's core refuses to deal from a share
 * that is not exactly in the package it was given, and the core's session id
 * binds the package, a package no dealer enclave vouched for never yields a
 * share. Phase 1 messages of a receiver: none, so nothing leaves before that
 * check.
 *
 * Phase 4 yields this member's share of the new sharing (same key and chain
 * code, generation old + 1), held pending and committed exactly as a
 * refresh's (ceremonies.ts: seal receipts and the commit certificate across
 * all n_new). Approvals: checkReshareApproval, at every member.
 */
import { channelSignatureValid } from "./channel-signature.ts";
import { bytesEqual } from "../attestation/verifier.ts";
import {
  reshareCommitteeDigest,
  reshareStatementTag,
  type ReshareMember,
} from "../shared/wire/reshare.ts";
import { parseSignedShareStateUnverified } from "../shared/wire/share-state.ts";
import { publicPackageHash } from "../shared/wire/wallet-statement.ts";
import { MAX_PARTIES, type ProtocolMessage } from "../shared/wire/protocol-message.ts";
import { type KeyShare, packageInfo, Reshare } from "./dkls23/binding.ts";
import { type ApprovalVerdict, type TrustedPolicy, verifyApprovals } from "./approvals.ts";
import { EnclaveError } from "./errors.ts";

export interface ReshareSessionOptions {
  /** This member's seat (party index in the new committee). */
  me: number;
  /** The dealers' old indices, increasing, at least t_old. */
  dealers: readonly number[];
  /** Each dealer's seat, same order. */
  seats: readonly number[];
  threshold: number;
  parties: number;
  sessionId: Uint8Array;
  walletId: string;
  /** The old public package: a dealer's from its loaded share, a receiver's from the start. */
  publicPackage: Uint8Array;
  /** The policy hash every dealer must state (null: a wallet sealed without a policy). */
  policyHash: Uint8Array | null;
  /** A dealer's loaded share (not freed here). */
  share?: KeyShare;
}

/** Checks a reshare's shape; throws bad_request naming what is wrong. */
export function checkReshareShape(o: {
  me: number;
  dealers: unknown;
  seats: unknown;
  threshold: number;
  parties: number;
  oldThreshold: number;
}): { dealers: number[]; seats: number[] } {
  const { me, threshold, parties, oldThreshold } = o;
  const ints = (v: unknown, max: number) =>
    Array.isArray(v) &&
    v.length <= MAX_PARTIES &&
    v.every((x) => Number.isInteger(x) && x >= 1 && x <= max);
  if (!ints(o.dealers, MAX_PARTIES) || !ints(o.seats, parties))
    throw new EnclaveError(
      "bad_request",
      "reshareDealers and reshareSeats must list party indices",
    );
  const dealers = o.dealers as number[];
  const seats = o.seats as number[];
  if (
    dealers.length !== seats.length ||
    !dealers.every((d, i) => i === 0 || d > dealers[i - 1]!) ||
    new Set(seats).size !== seats.length
  )
    throw new EnclaveError(
      "bad_request",
      "a reshare's dealers must be increasing old indices, each with its own seat",
    );
  if (dealers.length < oldThreshold)
    throw new EnclaveError(
      "bad_request",
      `a reshare needs at least ${oldThreshold} dealers (the old threshold); ${dealers.length} were named`,
    );
  if (threshold < 2 || threshold > parties || parties > MAX_PARTIES || me < 1 || me > parties)
    throw new EnclaveError("bad_request", "the new committee's threshold, size or seat is invalid");
  return { dealers, seats };
}

export class ReshareCeremony {
  private readonly core: Reshare;
  private checked = false;
  private readonly oldGeneration: number;
  private readonly packageHash: Uint8Array;
  /**
   * What every dealer's statement names as its session (reshare.ts reshareStatementTag): this
   * session with the dealers, their seats, t_new and n_new as this member's start has them.
   */
  readonly statementTag: Uint8Array;

  constructor(private readonly o: ReshareSessionOptions) {
    this.packageHash = publicPackageHash(o.publicPackage);
    this.statementTag = reshareStatementTag(o);
    this.oldGeneration = packageInfo(o.publicPackage).generation;
    this.core = new Reshare({
      ...(o.share ? { share: o.share } : {}),
      publicPackage: o.publicPackage,
      dealers: o.dealers,
      seats: o.seats,
      threshold: o.threshold,
      parties: o.parties,
      index: o.me,
      sessionId: o.sessionId,
    });
  }

  get isDealer(): boolean {
    return this.o.share !== undefined;
  }

  /**
   * Phase 2, before the core reads anything: one statement from every other
   * dealer seat, each signed by that seat's channel key of this session
   * (`peerKeys`, by seat), naming this session as seated here
   * (statementTag: the dealers, their seats, t_new, n_new), the wallet, the
   * package this member holds, its generation and the policy hash.
   * Statements from non-dealers are refused (a receiver states nothing). A
   * statement of another seating is the hosts' doing: refused, no one blamed.
   */
  checkStates(relayed: unknown, peerKeys: ReadonlyMap<number, Uint8Array>): void {
    const others = this.o.seats.filter((s) => s !== this.o.me);
    try {
      if (!Array.isArray(relayed) || relayed.length !== others.length)
        this.refuse(
          `the phase-2 step must carry one statement from each of the ${others.length} other dealers`,
        );
      const seen = new Set<number>();
      for (const signed of relayed) {
        let parsed: ReturnType<typeof parseSignedShareStateUnverified>;
        try {
          parsed = parseSignedShareStateUnverified(signed);
        } catch (e) {
          this.refuse(`a relayed dealer statement does not parse: ${(e as Error).message}`);
        }
        const s = parsed.statement;
        const key = peerKeys.get(s.partyIndex);
        if (!others.includes(s.partyIndex) || !key || seen.has(s.partyIndex))
          this.refuse(
            `a relayed statement names seat ${s.partyIndex}, not another dealer (or twice)`,
          );
        if (!channelSignatureValid(parsed.signature, parsed.encoding, key))
          this.refuse(
            `seat ${s.partyIndex}'s statement does not carry its channel key's signature`,
          );
        if (
          !bytesEqual(s.sessionId, this.statementTag) ||
          s.ceremony !== "reshare" ||
          s.walletId !== this.o.walletId
        )
          this.refuse(
            `seat ${s.partyIndex}'s statement belongs to another session or wallet, or seats the dealers otherwise than this member's start`,
          );
        seen.add(s.partyIndex);
        // Signed by a dealer's enclave for this session: a mismatch is that dealer's (or this member's) state.
        if (s.generation !== this.oldGeneration)
          throw new EnclaveError(
            "stale_share",
            `wallet ${this.o.walletId}: dealer seat ${s.partyIndex} holds generation ${s.generation}, this member reshares generation ${this.oldGeneration}`,
            s.generation < this.oldGeneration ? s.partyIndex : this.o.me,
          );
        const samePolicy =
          s.policyHash === null || this.o.policyHash === null
            ? s.policyHash === this.o.policyHash
            : bytesEqual(s.policyHash, this.o.policyHash);
        if (!bytesEqual(s.publicPackageHash, this.packageHash) || !samePolicy)
          throw new EnclaveError(
            "ceremony_failed",
            `wallet ${this.o.walletId}: dealer seat ${s.partyIndex} holds another ${samePolicy ? "public key package" : "approval policy"} than this member was given`,
            s.partyIndex,
          );
      }
      this.checked = true;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  phase1(): ProtocolMessage[] {
    return this.core.phase1();
  }

  phase2(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    // Fail closed: nothing the core reads before the dealers' statements were checked.
    if (!this.checked) {
      this.close();
      throw new EnclaveError(
        "ceremony_failed",
        "reshare: the dealers' statements were not checked",
      );
    }
    return this.core.phase2(received);
  }

  phase3(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    return this.core.phase3(received);
  }

  phase4(received: readonly ProtocolMessage[]): KeyShare {
    return this.core.phase4(received);
  }

  close(): void {
    this.core.close();
  }

  private refuse(message: string): never {
    // Only the relaying hosts could produce these: no party is blamed (share-state.ts says why).
    throw new EnclaveError("ceremony_failed", `reshare: ${message}`);
  }
}

/** What a reshare start asks of one member's approval check. */
export interface ReshareApprovalCheck {
  policy: TrustedPolicy;
  walletId: string;
  requestId: string;
  /** The generation reshared: a dealer's loaded share's, a new member's old package's. */
  fromGeneration: number;
  threshold: number;
  /** Every seat's node id (from the start) and PCR4 (as this enclave verified it). */
  members: readonly ReshareMember[];
  approvalRequest: Uint8Array;
  approvals: readonly Uint8Array[];
  nowSeconds?: number;
}

/**
 * A reshare's approvals: a `reshare` request of this wallet and request id
 * whose digest names exactly t_new and the new committee's machines
 * (reshare.ts reshareCommitteeDigest), signed by a quorum of `policy`. Never
 * waived: a reshare hands the wallet's key to other machines.
 */
export function checkReshareApproval(c: ReshareApprovalCheck): ApprovalVerdict {
  return verifyApprovals({
    policy: c.policy,
    expected: {
      operation: "reshare",
      walletId: c.walletId,
      requestId: c.requestId,
      digest: reshareCommitteeDigest(c.fromGeneration, c.threshold, c.members),
    },
    request: c.approvalRequest,
    approvals: c.approvals,
    nowSeconds: c.nowSeconds ?? Math.floor(Date.now() / 1000),
  });
}
