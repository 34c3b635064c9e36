/**
 * The approval check an enclave runs before phase 1 of a sign, refresh,
 * policy change or DKG: the request must be approved by at least `quorum`
 * distinct approver keys of the wallet's sealed policy, and the approvals
 * must name exactly the ceremony this enclave is about to run. Formats:
 * src/shared/wire/approval.ts.
 *
 * Two steps, so the policy is parsed once per loaded share, not per request:
 *
 *   const policy = openTrustedPolicy(policyEncoding, trustedHash);
 *   verifyApprovals({ policy, expected, request, approvals, nowSeconds });
 *
 * The trusted hash is the one sealed in the share's associated data (sign,
 * refresh, policy_change), or, for a DKG, the cluster administrators'
 * policy hash that is part of the measured enclave configuration: never a
 * hash the host supplies beside the policy.
 *
 * `expected` comes from the enclave's own view of the ceremony (the
 * CEREMONY_START fields it will act on), never from the approvals, so a
 * coordinator that relays a valid approval for another digest, wallet, path
 * or operation is refused. Every presented approval must be valid: a bad or
 * unknown one refuses the request even when the others reach the quorum, so
 * what was checked is exactly what was presented.
 *
 * Work is bounded: at most MAX_APPROVALS approvals, each one fixed-size
 * parse, one map lookup and one signature verification.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { strictEd25519Valid, strictP256Valid } from "./channel-signature.ts";
import { p256 } from "@noble/curves/nist.js";
import {
  ApprovalError,
  approverKeyId,
  equalBytes,
  MAX_APPROVALS,
  MAX_CLOCK_SKEW_SECONDS,
  MAX_REQUEST_BYTES,
  parseApprovalUnverified,
  parsePolicy,
  parseRequest,
  POLICY_HASH_BYTES,
  policyHash,
  type ApprovableRequest,
  type ApprovalAlgorithm,
  type ApprovalOperation,
  type ApprovalRefusal,
  type ApproverKey,
} from "../shared/wire/approval.ts";
import { toHex } from "../shared/hex.ts";

/** A policy whose encoding matched a hash the enclave trusts, its approvers keyed by key id (hex). */
export interface TrustedPolicy {
  readonly hash: Uint8Array;
  readonly quorum: number;
  readonly approvers: ReadonlyMap<string, ApproverKey>;
}

/**
 * Parses the policy the host supplies and checks it against the hash the
 * enclave trusts (sealed with the share, or measured), so a host cannot swap
 * the policy; also checks that each key is a usable point.
 */
export function openTrustedPolicy(encoding: Uint8Array, trustedHash: Uint8Array): TrustedPolicy {
  const policy = parsePolicy(encoding);
  const hash = policyHash(encoding);
  if (
    !(trustedHash instanceof Uint8Array) ||
    trustedHash.length !== POLICY_HASH_BYTES ||
    !equalBytes(hash, trustedHash)
  )
    throw new ApprovalError(
      "policy_mismatch",
      "the approval policy is not the one this enclave trusts for the wallet",
    );
  const approvers = new Map<string, ApproverKey>();
  for (const key of policy.approvers) {
    if (!usablePoint(key))
      throw new ApprovalError("malformed", `an approver ${key.algorithm} key is not a valid point`);
    approvers.set(toHex(approverKeyId(key)), key);
  }
  return { hash, quorum: policy.quorum, approvers };
}

function usablePoint(key: ApproverKey): boolean {
  try {
    if (key.algorithm === "p256") {
      p256.Point.fromBytes(key.publicKey).assertValidity();
      return true;
    }
    // A small-order key verifies signatures that no private key made.
    return !ed25519.Point.fromBytes(key.publicKey).isSmallOrder();
  } catch {
    return false;
  }
}

/** What this enclave is about to run, from its own ceremony parameters. */
export interface ExpectedRequest {
  operation: ApprovalOperation;
  walletId: string;
  requestId: string;
  /** sign */
  digest?: Uint8Array;
  /** sign; absent means "m" */
  path?: string;
  /** policy_change: the new policy's hash; dkg: the new wallet's */
  policyHash?: Uint8Array;
  /** dkg */
  threshold?: number;
  /** dkg */
  parties?: number;
}

export interface ApprovalCheck {
  policy: TrustedPolicy;
  expected: ExpectedRequest;
  /** The request encoding the approvers signed, as the client sent it. */
  request: Uint8Array;
  /** Approval encodings (APPROVAL_BYTES each). */
  approvals: readonly Uint8Array[];
  /** The enclave's clock, unix seconds. */
  nowSeconds: number;
}

export interface ApprovalVerdict {
  request: ApprovableRequest;
  /** Key ids (hex) of the approvers whose signatures were checked, in the order presented. */
  signers: string[];
}

function refuse(reason: ApprovalRefusal, msg: string): never {
  throw new ApprovalError(reason, msg);
}

const sameOptionalBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : equalBytes(a, b);

/** Refuses unless the approved request names exactly the ceremony in `expected`. */
function checkMatches(
  req: ApprovableRequest,
  expected: ExpectedRequest,
  policy: TrustedPolicy,
): void {
  if (req.operation !== expected.operation)
    refuse(
      "wrong_operation",
      `the approvals are for ${req.operation}, not for ${expected.operation}`,
    );
  if (req.walletId !== expected.walletId)
    refuse("wrong_wallet", "the approvals are for another wallet");
  if (req.requestId !== expected.requestId)
    refuse("wrong_request_id", "the approvals are for another request id");
  if (!sameOptionalBytes(req.digest, expected.digest))
    refuse("wrong_digest", "the approvals are for another digest");
  if (expected.operation === "sign" && req.path !== (expected.path ?? "m"))
    refuse("wrong_path", "the approvals are for another derivation path");
  if (!sameOptionalBytes(req.policyHash, expected.policyHash))
    refuse("wrong_policy", "the approvals are for another policy");
  if (expected.operation === "policy_change" && !equalBytes(req.currentPolicyHash!, policy.hash))
    refuse("wrong_policy", "the approvals replace another policy than this wallet's");
  if (req.threshold !== expected.threshold || req.parties !== expected.parties)
    refuse("wrong_parameters", "the approvals are for another threshold or number of parties");
}

function verifySignature(
  algorithm: ApprovalAlgorithm,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return algorithm === "ed25519"
      ? strictEd25519Valid(signature, message, publicKey) // noble's strict rules, natively (channel-signature.ts)
      : strictP256Valid(signature, message, publicKey); // noble's { prehash, lowS, compact } rules, natively
  } catch {
    return false;
  }
}

/** Accepts only a quorum of distinct, valid approvals of exactly `expected`, now; otherwise throws ApprovalError naming the reason. */
export function verifyApprovals(c: ApprovalCheck): ApprovalVerdict {
  const { policy, approvals, request } = c;
  if (!Array.isArray(approvals) || approvals.length === 0)
    refuse("missing", "the request carries no approvals");
  if (approvals.length > MAX_APPROVALS)
    refuse("malformed", `a request carries at most ${MAX_APPROVALS} approvals`);
  if (!(request instanceof Uint8Array) || request.length > MAX_REQUEST_BYTES)
    refuse("malformed", "the approved request is missing or too long");
  const req = parseRequest(request);
  checkMatches(req, c.expected, policy);
  const now = Math.floor(c.nowSeconds);
  if (!Number.isSafeInteger(now)) refuse("malformed", "the enclave clock reading is not a time");
  if (now >= req.expiresAt) refuse("expired", "the approvals have expired");
  if (now + MAX_CLOCK_SKEW_SECONDS < req.issuedAt)
    refuse("not_yet_valid", "the approvals are issued in the future; check the approver's clock");
  const signers: string[] = [];
  for (const bytes of approvals) {
    const a = parseApprovalUnverified(bytes);
    const id = toHex(a.keyId);
    if (signers.includes(id)) refuse("duplicate_signer", `approver ${id} signed twice`);
    const key = policy.approvers.get(id);
    if (key === undefined || key.algorithm !== a.algorithm)
      refuse("unknown_signer", `${a.algorithm} key ${id} is not an approver of this wallet`);
    if (!verifySignature(a.algorithm, key.publicKey, request, a.signature))
      refuse("bad_signature", `approver ${id}'s signature does not verify`);
    signers.push(id);
  }
  if (signers.length < policy.quorum)
    refuse(
      "below_quorum",
      `${signers.length} of the ${policy.quorum} approvals the policy requires`,
    );
  return { request: req, signers };
}
