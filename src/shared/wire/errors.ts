/**
 * Error codes of the contract (docs/mqtt-api.md, docs/asyncapi.yaml) and the
 * one base class for every error that carries a code across a process
 * boundary (enclave -> host over the channel, node -> node over RPC, node ->
 * client over MQTT).
 *
 * Blame travels as a structured field, never inside the sentence: the
 * enclave names a protocol party index, the host maps it to a node id, the
 * client sees the node id.
 */

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
