/** Errors the enclave reports to its host: a code and a sentence, never secret material. */
export type EnclaveErrorCode =
  | "bad_request"
  | "session_reused"
  | "unknown_session"
  | "phase_out_of_order"
  | "ceremony_failed"
  | "deadline_exceeded"
  | "share_not_loaded"
  | "generation_mismatch"
  | "share_mismatch"
  | "unseal_failed"
  | "kms_key_rejected";

export class EnclaveError extends Error {
  override name = "EnclaveError";
  constructor(
    readonly code: EnclaveErrorCode,
    message: string,
    /** Party index to blame, when the protocol core names one. */
    readonly party: number | null = null,
  ) {
    super(message);
  }
}
