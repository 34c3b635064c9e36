/** Errors the enclave reports to its host: a code and a sentence, never secret material. */
import { CodedError } from "../shared/wire/errors.ts";

export type EnclaveErrorCode =
  | "bad_request"
  | "session_reused"
  | "unknown_session"
  | "phase_out_of_order"
  | "ceremony_failed"
  | "deadline_exceeded"
  | "share_not_loaded"
  /** A share does not fit the share cache's memory budget (share-cache.ts). */
  | "capacity_exceeded"
  /** The enclave already has its maximum of open ceremony sessions (ceremony-registry.ts); nothing was claimed. */
  | "too_many_sessions"
  | "generation_mismatch"
  /** A participant's share is older than another's of the session, or than a commit certificate this enclave saw (share-state.ts). */
  | "stale_share"
  | "share_mismatch"
  | "unseal_failed"
  | "kms_failed"
  | "kms_not_configured"
  /** The wallet was retired in this enclave (lifecycle-retire.ts): it is refused for as long as the enclave runs. */
  | "not_found"
  /** The enclave remembers its maximum of unexpired approved requests (approval-replay.ts); nothing was claimed. */
  | "replay_cache_full"
  /** Approval refusals (src/shared/wire/approval.ts ApprovalError), with `reason` naming the check. */
  | "unauthorised"
  | "approval_expired"
  /** The same approved request already started a session in this enclave (approval-replay.ts). */
  | "approval_replayed";

/** `blame.party` is the protocol party index the core or a peer check named; it travels as a field of the ERROR frame. */
export class EnclaveError extends CodedError {
  override name = "EnclaveError";
  declare readonly code: EnclaveErrorCode;
  constructor(
    code: EnclaveErrorCode,
    message: string,
    party: number | null = null,
    /** An approval refusal's reason (approval.ts APPROVAL_REFUSALS): a field, like blame. */
    readonly reason?: string,
  ) {
    super(code, message, party === null ? {} : { party });
  }
}
