/**
 * The enclave's half of a share repair (issue 11 item 1; term body and
 * approval digest in src/shared/wire/repair.ts): at least t current holders
 * (the helpers) each compute their secret term towards lost party K and
 * send it, with the wallet's public package and policy hash, to K's new
 * enclave in one point-to-point message of the "repair" ceremony (code 5).
 * The peer envelope seals it to the target's attested channel key, so the
 * hosts relay ciphertext only. The target takes exactly one term from each
 * helper, requires every helper to report the same package and policy (and
 * that package to be the one it was told to trust, when it has one), and
 * assembles a HollowShare, which must go at once into the complete refresh
 * across all n (dkls23/lifecycle.ts refreshFromHollow): only that refresh
 * makes it a signing share and stops the lost holder's copy combining.
 *
 * Phases follow the ceremony registry's four: helpers send at 1; the target
 * takes the terms at 2; 3 carries nothing; 4 yields the target's hollow
 * share (helpers yield nothing: they keep their loaded share for the
 * refresh). Nothing here checks approvals or attestation: the start that
 * builds this session does (the target's PCR4 is in the approval's digest).
 */
import { equalBytes } from "../shared/wire/approval.ts";
import {
  encodeRepairTermBody,
  parseRepairTermBody,
  REPAIR_POLICY_HASH_BYTES,
  repairTargetDigest,
} from "../shared/wire/repair.ts";
import {
  encodeMessageHeader,
  HEADER_LEN,
  MAX_MESSAGE_LEN,
  MAX_PARTIES,
  type ProtocolMessage,
} from "../shared/wire/protocol-message.ts";
import {
  type HollowShare,
  type KeyShare,
  packageInfo,
  repairAssemble,
  repairTerm,
} from "./dkls23/binding.ts";
import { type ApprovalVerdict, type TrustedPolicy, verifyApprovals } from "./approvals.ts";
import { EnclaveError } from "./errors.ts";

export interface RepairSessionOptions {
  me: number;
  /** The party index being rebuilt (the new node's). */
  target: number;
  /** The sorted, distinct helper indices, at least t, not the target. */
  helpers: readonly number[];
  threshold: number;
  parties: number;
  /** The repair ceremony's session id, used as the core's repair id. */
  sessionId: Uint8Array;
  /** A helper's: its loaded current share (not freed here). */
  share?: KeyShare;
  /** A helper's: the wallet's sealed policy hash, sent beside its term. */
  policyHash?: Uint8Array;
  /** The target's: the package it trusts (from the wallet's statements), if it has one. */
  trustedPackage?: Uint8Array;
  /**
   * The target's: the hash of the policy it checked the repair's approval
   * under (it has no sealed one); the helpers must all report it, so the
   * approval was given by the wallet's own approvers.
   */
  expectedPolicyHash?: Uint8Array;
}

/** What the target holds after phase 4: the hollow share and what it was assembled against. */
export interface RepairedParty {
  hollow: HollowShare;
  publicPackage: Uint8Array;
  policyHash: Uint8Array;
  /**
   * The policy the target checked the repair's approval under, whose hash every helper
   * reported (set by ceremonies.ts at phase 4; null: a wallet sealed without one). The
   * refresh that completes the party checks its approvals under it and seals with it.
   */
  policy?: TrustedPolicy | null;
}

/** The policy hash a helper reports for a wallet sealed without a policy (development only). */
export const NO_POLICY_HASH = new Uint8Array(32);

export class RepairSession {
  private result: RepairedParty | null = null;
  private closed = false;

  constructor(private readonly o: RepairSessionOptions) {
    const { me, target, helpers, threshold, parties } = o;
    const ok =
      Number.isInteger(parties) &&
      parties >= 2 &&
      parties <= MAX_PARTIES &&
      Number.isInteger(threshold) &&
      threshold >= 2 &&
      threshold <= parties &&
      Number.isInteger(target) &&
      target >= 1 &&
      target <= parties &&
      helpers.length >= threshold &&
      helpers.every(
        (h, i) =>
          Number.isInteger(h) &&
          h >= 1 &&
          h <= parties &&
          h !== target &&
          (i === 0 || h > helpers[i - 1]!),
      ) &&
      (me === target || helpers.includes(me));
    if (!ok)
      throw new EnclaveError(
        "bad_request",
        "a repair needs at least t distinct sorted helpers, a target among the parties, and this party one of them",
      );
    const helper = me !== target;
    if (helper !== (o.share !== undefined) || helper !== (o.policyHash !== undefined))
      throw new EnclaveError(
        "bad_request",
        "exactly the repair's helpers bring a share and policy",
      );
    if (helper && o.policyHash!.length !== REPAIR_POLICY_HASH_BYTES)
      throw new EnclaveError("bad_request", "the policy hash has the wrong length");
    if (
      helper &&
      (o.share!.index !== me || o.share!.threshold !== threshold || o.share!.parties !== parties)
    )
      throw new EnclaveError("bad_request", "the helper's share is for another party or sharing");
  }

  phase1(): ProtocolMessage[] {
    this.check();
    if (this.o.me === this.o.target) return [];
    const share = this.o.share!;
    let term: Uint8Array | null = null;
    let body: Uint8Array | null = null;
    try {
      term = repairTerm(share, {
        helpers: this.o.helpers,
        target: this.o.target,
        repairId: this.o.sessionId,
      });
      body = encodeRepairTermBody({
        publicPackage: share.publicPackage(),
        policyHash: this.o.policyHash!,
        term,
      });
      if (HEADER_LEN + body.length > MAX_MESSAGE_LEN)
        this.fail("a repair term does not fit one peer message");
      const header = { ceremony: "repair" as const, phase: 1, from: this.o.me, to: this.o.target };
      const bytes = new Uint8Array(HEADER_LEN + body.length);
      bytes.set(encodeMessageHeader({ ...header, sessionId: this.o.sessionId }), 0);
      bytes.set(body, HEADER_LEN);
      return [{ ...header, sessionId: this.o.sessionId, bytes }];
    } catch (e) {
      this.close();
      if (e instanceof EnclaveError) throw e;
      throw new EnclaveError("ceremony_failed", "share repair: this holder's term failed");
    } finally {
      term?.fill(0);
      body?.fill(0);
    }
  }

  phase2(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    this.check();
    if (this.o.me !== this.o.target) {
      this.nothing(received);
      return [];
    }
    const { helpers, target } = this.o;
    if (received.length !== helpers.length) this.fail("expected exactly one term from each helper");
    const bySender = new Map<number, ProtocolMessage>();
    for (const m of received) {
      if (m.ceremony !== "repair" || m.phase !== 1 || m.to !== target || !helpers.includes(m.from))
        this.fail("a term must come from a helper to this party", m.from);
      if (bySender.has(m.from)) this.fail("a helper sent two terms", m.from);
      bySender.set(m.from, m);
    }
    const terms: { from: number; term: Uint8Array }[] = [];
    let reference: { publicPackage: Uint8Array; policyHash: Uint8Array } | null = null;
    try {
      for (const h of helpers) {
        let body: ReturnType<typeof parseRepairTermBody>;
        try {
          body = parseRepairTermBody(bySender.get(h)!.bytes.subarray(HEADER_LEN));
        } catch {
          this.fail("a repair term does not parse", h);
        }
        if (reference === null) {
          const info = (() => {
            try {
              return packageInfo(body.publicPackage);
            } catch {
              return this.fail("a helper's public package does not parse", h);
            }
          })();
          if (info.threshold !== this.o.threshold || info.parties !== this.o.parties)
            this.fail("the helpers' package is for another sharing", h);
          if (this.o.trustedPackage && !equalBytes(this.o.trustedPackage, body.publicPackage))
            this.fail("a helper's package is not the wallet's", h);
          if (this.o.expectedPolicyHash && !equalBytes(this.o.expectedPolicyHash, body.policyHash))
            this.fail("the helpers' policy is not the one the repair was approved under", h);
          reference = {
            publicPackage: body.publicPackage.slice(),
            policyHash: body.policyHash.slice(),
          };
        } else if (
          !equalBytes(reference.publicPackage, body.publicPackage) ||
          !equalBytes(reference.policyHash, body.policyHash)
        ) {
          // The helpers disagree about the wallet: one of them is stale or lying, and the target cannot say which.
          this.fail("the helpers report different packages or policies");
        }
        terms.push({ from: h, term: body.term.slice() });
      }
      let hollow: HollowShare;
      try {
        hollow = repairAssemble({
          publicPackage: reference!.publicPackage,
          target,
          repairId: this.o.sessionId,
          terms,
        });
      } catch {
        this.fail("the terms do not rebuild this party's share");
      }
      this.result = { hollow, ...reference! };
      return [];
    } finally {
      for (const t of terms) t.term.fill(0);
    }
  }

  phase3(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    this.check();
    this.nothing(received);
    return [];
  }

  /** The target's repaired party (the caller must start the refresh with it, or free it); null at a helper. */
  phase4(received: readonly ProtocolMessage[]): RepairedParty | null {
    this.check();
    this.nothing(received);
    if (this.o.me !== this.o.target) {
      this.close();
      return null;
    }
    const r = this.result;
    if (!r) this.fail("no share was repaired");
    this.result = null;
    this.close();
    return r;
  }

  close(): void {
    this.closed = true;
    this.result?.hollow.free();
    this.result = null;
  }

  private check(): void {
    if (this.closed) throw new EnclaveError("ceremony_failed", "the repair session is closed");
  }

  private nothing(received: readonly ProtocolMessage[]): void {
    if (received.length > 0) this.fail("this phase of a repair carries no messages");
  }

  private fail(message: string, blame?: number): never {
    this.close();
    throw new EnclaveError("ceremony_failed", `share repair: ${message}`, blame ?? null);
  }
}

/** What a repair start asks of one enclave's approval check. */
export interface RepairApprovalCheck {
  /** The wallet's policy: sealed beside a helper's share; the target's from the helpers' agreed policy hash and the start's encoding. */
  policy: TrustedPolicy;
  walletId: string;
  requestId: string;
  /** The party index being moved. */
  party: number;
  /** The target's PCR4 as this enclave verified it: its own at the target, from the target's attestation document at a helper. */
  targetPcr4: Uint8Array;
  approvalRequest: Uint8Array;
  approvals: readonly Uint8Array[];
  nowSeconds?: number;
}

/**
 * Checks a repair's approvals: a `repair` request of this wallet and request
 * id whose digest names exactly this party and this target machine
 * (repair.ts repairTargetDigest), signed by a quorum of the wallet's policy.
 * Never waived: a repair puts a wallet's party on a new machine.
 */
export function checkRepairApproval(c: RepairApprovalCheck): ApprovalVerdict {
  return verifyApprovals({
    policy: c.policy,
    expected: {
      operation: "repair",
      walletId: c.walletId,
      requestId: c.requestId,
      digest: repairTargetDigest(c.party, c.targetPcr4),
    },
    request: c.approvalRequest,
    approvals: c.approvals,
    nowSeconds: c.nowSeconds ?? Math.floor(Date.now() / 1000),
  });
}
