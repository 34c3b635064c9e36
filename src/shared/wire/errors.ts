/**
 * Error codes of the contract (docs/mqtt-api.md, docs/asyncapi.yaml) and the
 * one base class for every error that carries a code across a process
 * boundary (enclave -> host over the channel, node -> node over RPC, node ->
 * client over MQTT).
 *
 * Blame travels as a structured field, never inside the sentence: the
 * enclave names a protocol party index, the host maps it to a node id, the
 * client sees the node id.
 *
 * | code                | meaning                                                              |
 * |---------------------|----------------------------------------------------------------------|
 * | bad_request         | the request breaks the contract (shape, ids, digest, path, threshold)|
 * | not_found           | no live node holds the wallet                                        |
 * | not_enough_nodes    | fewer live nodes (or current share holders) than the ceremony needs  |
 * | stale_share         | a node's share is not the wallet's current generation                |
 * | deadline_exceeded   | a node or phase did not answer in time                               |
 * | ceremony_failed     | a participant failed or misbehaved; the ceremony was aborted         |
 * | invalid_signature   | the combined signature did not verify and was discarded              |
 * | inconsistent_result | participants disagree on the result                                  |
 * | unauthorised        | the approvals do not authorise this request (wire/approval.ts reason)|
 * | approval_expired    | the approvals' validity ended before the enclave checked them        |
 * | approval_replayed   | the same approved request already started a session in an enclave    |
 * | rate_limited        | a client, node or enclave limit refused the request; retry later     |
 * | internal            | the node itself failed                                               |
 *
 * Codes from below the contract (the enclave's and the DKLs23 core's, the
 * share store's) never reach a client as they are: `contractCode` maps them
 * where the host turns a participant's failure into a ceremony error.
 */

export const ERROR_CODES = [
  "bad_request",
  "not_found",
  "not_enough_nodes",
  "stale_share",
  "deadline_exceeded",
  "ceremony_failed",
  "invalid_signature",
  "inconsistent_result",
  "unauthorised",
  "approval_expired",
  "approval_replayed",
  "rate_limited",
  "conflict",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && (ERROR_CODES as readonly string[]).includes(s);
}

/**
 * Raw codes with a closer contract code than `ceremony_failed`. Everything
 * else a participant reports (enclave codes such as `unseal_failed`,
 * `kms_failed`, `capacity_exceeded`, `session_reused`; core codes such as
 * `protocol_abort`, `malformed_message`) is a failed ceremony, with the node
 * blamed.
 */
const CLOSER_CODE: Readonly<Record<string, ErrorCode>> = {
  // The enclave's share is another generation than the one the ceremony expects.
  generation_mismatch: "stale_share",
  // The enclave's share cache cannot hold one more share: a capacity problem of
  // that node, not a protocol failure.
  capacity_exceeded: "internal",
  // The enclave already has its maximum of open ceremony sessions (ceremony-registry.ts).
  too_many_sessions: "rate_limited",
  // The enclave remembers its maximum of unexpired approved requests (approval-replay.ts).
  replay_cache_full: "rate_limited",
};

/** The contract code for a code a participant failed with: contract codes stay, others are mapped. */
export function contractCode(raw: unknown): ErrorCode {
  if (isErrorCode(raw)) return raw;
  return (
    (typeof raw === "string" && Object.hasOwn(CLOSER_CODE, raw) ? CLOSER_CODE[raw] : undefined) ??
    "ceremony_failed"
  );
}

/** Whom a failure is blamed on, when known. */
export interface Blame {
  /** The node id (host side and beyond). */
  node?: string;
  /** The protocol party index (1..16) the DKLs23 core or a peer check named. */
  party?: number;
}

export class CodedError extends Error {
  override name = "CodedError";
  constructor(
    readonly code: string,
    message: string,
    readonly blame: Blame = {},
  ) {
    super(message);
  }
}
