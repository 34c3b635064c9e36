/** The DKLs23 core's failures, as the wasm module reports them. */
import { CodedError } from "../../shared/wire/errors.ts";

export type ErrorCode =
  | "invalid_parameters"
  | "malformed_message"
  | "unexpected_message"
  | "protocol_abort"
  | "invalid_share"
  | "derivation"
  | "session_closed";

/** A failure reported by the core: what went wrong and, where known, whom to blame (`blame.party`). */
export class DklsError extends CodedError {
  override name = "DklsError";
  declare readonly code: ErrorCode;
  constructor(
    message: string,
    code: ErrorCode,
    /** Party whose message or behaviour caused it, when the core can tell. */
    party: number | null,
    /** The library requires this party be excluded from future sessions. */
    readonly ban: boolean,
  ) {
    super(code, message, party === null ? {} : { party });
  }
}
