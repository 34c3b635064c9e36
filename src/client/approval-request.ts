/**
 * The approval fields of a request body (docs/mqtt-api.md): the client
 * encodes what exactly it asks for (approval.ts approvable request), has its
 * signers approve it, and sends `approval: {request, approvals}` as hex; a
 * DKG also sends the new wallet's `policy`. Nodes relay these untouched;
 * every participating enclave checks them against the wallet's sealed
 * policy (or, for a DKG, the administrators') before phase 1.
 */
import { randomBytes } from "node:crypto";
import { toHex } from "../shared/hex.ts";
import {
  encodeApproval,
  encodePolicy,
  type ApprovableRequest,
  type ApprovalPolicy,
} from "../shared/wire/approval.ts";
import { TssError } from "./errors.ts";
import { approve, validity, type ApprovalSigner } from "./signers.ts";

/** What approves a request: the signers, and how long their approvals stay valid. */
export interface ApprovalOptions {
  /** Approver keys: in-process (KeySigner) or external (anything implementing ApprovalSigner). */
  signers?: readonly ApprovalSigner[];
  /** Seconds the approvals stay valid (default 300, at most approval.ts MAX_VALIDITY_SECONDS). */
  approvalSeconds?: number;
}

/** `{approval}` for the body, or nothing when no signers are given (the enclaves then refuse a wallet with a policy). */
export async function approvalFields(
  request: Omit<ApprovableRequest, "issuedAt" | "expiresAt">,
  o: ApprovalOptions,
): Promise<{ approval?: { request: string; approvals: string[] } }> {
  if (o.signers === undefined) return {};
  const a = await approve({ ...request, ...validity(o.approvalSeconds) }, o.signers);
  return {
    approval: {
      request: toHex(a.request),
      approvals: a.approvals.map((x) => toHex(encodeApproval(x))),
    },
  };
}

/** The canonical encoding of a new wallet's policy (refused with bad_request if it is not one). */
export function policyEncoding(policy: ApprovalPolicy): Uint8Array {
  try {
    return encodePolicy(policy);
  } catch (e) {
    throw new TssError("bad_request", `the wallet's policy is refused: ${(e as Error).message}.`);
  }
}

/** A wallet id the client picks, so the administrators' approvals can name it before the DKG. */
export const newWalletId = (): string => `w_${randomBytes(12).toString("hex")}`;
