/**
 * Where a ceremony start meets the approval check (approvals.ts): the
 * `expected` request is built here from the CEREMONY_START fields this
 * enclave is about to act on, never from the approvals, and the trusted
 * policy is the wallet's sealed one (sign, refresh) or the administrators'
 * built into the image (dkg). Runs before any session or phase 1 exists, so
 * a refused start produces nothing a coordinator could relay.
 *
 * `requireApprovals` is always on in production. The development entry turns
 * it off only when its input says so explicitly (`unapprovedWallets`, never
 * with an administrators' policy; loudly); a share sealed with a policy is
 * checked against it whatever the setting, and a policy change is never
 * allowed without the sealed policy's approval.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex } from "../shared/hex.ts";
import { ApprovalError, policyHash, type ApprovableRequest } from "../shared/wire/approval.ts";
import type { CeremonyStartRequest } from "../shared/wire/enclave-ops.ts";
import { openTrustedPolicy, verifyApprovals, type TrustedPolicy } from "./approvals.ts";

export interface ApprovalSettings {
  /** The administrators' policy DKG approvals are checked against; null: none configured. */
  adminPolicy: TrustedPolicy | null;
  /** Refuse a DKG without approvals, and a sign or refresh of a wallet sealed without a policy. */
  requireApprovals: boolean;
}

/** The production settings: the policy built into the bundle (admin-policy.ts), approvals required. */
export function builtInApprovalSettings(adminPolicyHex: string | null): ApprovalSettings {
  return { adminPolicy: adminPolicyOf(adminPolicyHex), requireApprovals: true };
}

/** Opens an administrators' policy given as hex of its encoding; null stays null. */
export function adminPolicyOf(hex: string | null): TrustedPolicy | null {
  if (hex === null) return null;
  const encoding = fromHex(hex);
  return openTrustedPolicy(encoding, policyHash(encoding));
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A DKG start the administrators approved: the new wallet's policy and the request they signed. */
export interface ApprovedDkg {
  policy: TrustedPolicy;
  approved: ApprovableRequest;
}

/**
 * Checks a DKG start's approvals against the administrators' policy and
 * returns the new wallet's policy (to be sealed with each share) with the
 * approved request, or null when approvals are not required and none were sent.
 * A DKG start that carries a key import envelope is a key import
 * (lifecycle-import.ts): it needs an `import` approval whose digest is the
 * envelope's SHA-256, so the administrators approve that one sealed key, and
 * it is never run without approvals, whatever the settings.
 */
export function checkDkgStart(
  settings: ApprovalSettings,
  req: CeremonyStartRequest,
  threshold: number,
  parties: number,
): ApprovedDkg | null {
  const envelope = req.importEnvelope;
  if (envelope !== undefined && !(envelope instanceof Uint8Array))
    throw new ApprovalError("malformed", "importEnvelope must be bytes");
  if (
    envelope === undefined &&
    !settings.requireApprovals &&
    req.policy === undefined &&
    req.approvals === undefined
  )
    return null;
  if (!(req.policy instanceof Uint8Array))
    throw new ApprovalError("malformed", "a DKG start must carry the new wallet's policy");
  // Its own hash is trusted here: what makes it the wallet's is the administrators' approval of that hash.
  const walletPolicy = openTrustedPolicy(req.policy, policyHash(req.policy));
  if (settings.adminPolicy === null)
    throw new ApprovalError(
      "unknown_signer",
      "no administrators' policy is built into this enclave image: it creates no wallets",
    );
  const verdict = verifyApprovals({
    policy: settings.adminPolicy,
    expected: {
      operation: envelope === undefined ? "dkg" : "import",
      walletId: req.walletId,
      requestId: requestIdOf(req),
      ...(envelope === undefined ? {} : { digest: sha256(envelope) }),
      policyHash: walletPolicy.hash,
      threshold,
      parties,
    },
    request: req.approvalRequest as Uint8Array,
    approvals: req.approvals ?? [],
    nowSeconds: nowSeconds(),
  });
  return { policy: walletPolicy, approved: verdict.request };
}

/**
 * The new policy a refresh start carries, which makes it a policy change: the
 * refresh's new shares are sealed with it (and the holders' statements name
 * it), so the change is applied by all n holders or, with the refresh, by
 * none. Null for a plain refresh (and for sign). Trusted only once
 * checkShareStart accepted the current policy's approval of its hash.
 */
export function policyChangeOf(req: CeremonyStartRequest): TrustedPolicy | null {
  if (req.kind !== "refresh" || req.policy === undefined) return null;
  if (!(req.policy instanceof Uint8Array))
    throw new ApprovalError("malformed", "a policy change must carry the new policy's encoding");
  return openTrustedPolicy(req.policy, policyHash(req.policy));
}

/**
 * Checks a sign or refresh start's approvals against the policy sealed with
 * the wallet's share; returns the approved request, or null for a wallet
 * sealed without a policy when approvals are not required. A refresh that
 * carries a new policy (policyChangeOf) needs a `policy_change` approval of
 * exactly that policy's hash, replacing exactly the sealed one.
 */
export function checkShareStart(
  settings: ApprovalSettings,
  req: CeremonyStartRequest,
  sealedPolicy: TrustedPolicy | null,
): ApprovableRequest | null {
  if (req.kind === "sign" && req.policy !== undefined)
    throw new ApprovalError("malformed", "a sign start carries no policy");
  const change = policyChangeOf(req);
  if (sealedPolicy === null) {
    if (!settings.requireApprovals && change === null) return null;
    throw new ApprovalError(
      "policy_mismatch",
      change === null
        ? "this wallet's share was sealed without an approval policy: it cannot be approved"
        : "this wallet's share was sealed without an approval policy: nobody can approve changing it",
    );
  }
  const kind = req.kind === "sign" ? "sign" : change === null ? "refresh" : "policy_change";
  return verifyApprovals({
    policy: sealedPolicy,
    expected: {
      operation: kind,
      walletId: req.walletId,
      requestId: requestIdOf(req),
      ...(kind === "sign" ? { digest: req.digest, path: req.path ?? "m" } : {}),
      ...(change === null ? {} : { policyHash: change.hash }),
    },
    request: req.approvalRequest as Uint8Array,
    approvals: req.approvals ?? [],
    nowSeconds: nowSeconds(),
  }).request;
}

function requestIdOf(req: CeremonyStartRequest): string {
  if (typeof req.requestId !== "string")
    throw new ApprovalError("malformed", "an approved start must carry the client's request id");
  return req.requestId;
}
