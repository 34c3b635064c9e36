/** The one error type the SDK rejects with. */
import { CodedError, ERROR_CODES, type ErrorCode } from "../shared/wire/errors.ts";

/** Codes a node answers with (docs/mqtt-api.md): the contract's list, defined once in src/shared/wire/errors.ts. */
export const NODE_ERROR_CODES = ERROR_CODES;
export type NodeErrorCode = ErrorCode;

/**
 * Codes only the SDK raises: `bad_response` (a reply that breaks the
 * contract), `connection_failed` (broker unreachable, credentials or
 * subscription refused, request not accepted), `closed` (close() ended a
 * pending request), `coordinator_lost` (the node coordinating the request
 * went offline, by its Last Will, before it answered; `node` names it; the
 * request may or may not have completed: resubmit it with the same
 * requestId). The SDK also raises some node codes itself:
 * `bad_request` for invalid arguments, `deadline_exceeded` when no final
 * answer came in time, `not_enough_nodes` when no node is subscribed,
 * `invalid_signature` and `inconsistent_result` when a result fails its checks.
 */
export type SdkErrorCode =
  | "bad_response"
  | "connection_failed"
  | "closed"
  | "coordinator_lost"
  // With ConnectOptions.trust: the wallet is not vouched for by all n holders' attested enclaves (wallet-verification.ts).
  | "unverified_wallet";

/** Known codes, plus any code a newer node may send. */
export type TssErrorCode = NodeErrorCode | SdkErrorCode | (string & {});

// Same CodedError subclass shape as EnclaveError, but each side has its own codes and fields.
export class TssError extends CodedError {
  override name = "TssError";
  declare readonly code: TssErrorCode;
  constructor(
    code: TssErrorCode,
    message: string,
    /** The node the failure is blamed on, when known (kept in `blame.node`). */
    node: string | null = null,
    /** The request's id: repeat a request with it to get its result without a second ceremony. */
    readonly requestId: string | null = null,
    /** unauthorised / approval_expired / approval_replayed / bad_request from an enclave: which approval check refused (approval.ts APPROVAL_REFUSALS). */
    readonly reason: string | null = null,
  ) {
    super(code, message, node === null ? {} : { node });
  }

  /** The node the failure is blamed on, or null. */
  get node(): string | null {
    return this.blame.node ?? null;
  }
}
