/** The one error type the SDK rejects with. */

/** Codes a node answers with (docs/mqtt-api.md). */
export const NODE_ERROR_CODES = [
  "bad_request",
  "not_found",
  "not_enough_nodes",
  "stale_share",
  "deadline_exceeded",
  "ceremony_failed",
  "invalid_signature",
  "inconsistent_result",
  "internal",
] as const;
export type NodeErrorCode = (typeof NODE_ERROR_CODES)[number];

/**
 * Codes only the SDK raises: `bad_response` (a reply that breaks the
 * contract), `connection_failed` (broker unreachable, credentials or
 * subscription refused, request not accepted), `closed` (close() ended a
 * pending request). The SDK also raises some node codes itself:
 * `bad_request` for invalid arguments, `deadline_exceeded` when no final
 * answer came in time, `not_enough_nodes` when no node is subscribed,
 * `invalid_signature` and `inconsistent_result` when a result fails its checks.
 */
export type SdkErrorCode = "bad_response" | "connection_failed" | "closed";

/** Known codes, plus any code a newer node may send. */
export type TssErrorCode = NodeErrorCode | SdkErrorCode | (string & {});

export class TssError extends Error {
  override name = "TssError";
  constructor(
    readonly code: TssErrorCode,
    message: string,
    /** The node the failure is blamed on, when known. */
    readonly node: string | null = null,
    /** The request's id: repeat a request with it to get its result without a second ceremony. */
    readonly requestId: string | null = null,
  ) {
    super(message);
  }
}
