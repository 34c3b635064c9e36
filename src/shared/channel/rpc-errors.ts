/**
 * The channel's error classes and the ERROR body codec, shared by
 * rpc-client.ts and rpc-server.ts.
 *
 * ERROR body (a body map, src/shared/wire/body.ts):
 *
 * | key     | kind   | rule                                                       |
 * |---------|--------|------------------------------------------------------------|
 * | code    | string | ERROR_CODE; anything else is sent as "internal"            |
 * | message | string | public sentence, cut to MAX_ERROR_MESSAGE characters       |
 * | party   | uint   | optional: protocol party 1..MAX_PARTIES the enclave blames |
 * | reason  | string | optional: an approval refusal's reason (wire/approval.ts APPROVAL_REFUSALS), ERROR_CODE pattern |
 *
 * Blame is a field, never parsed out of the sentence, so the host can map the
 * party to a node id without trusting text.
 */
import {
  BodyError,
  bodyOf,
  getString,
  getUint,
  type BodyMap,
  type BodyValue,
} from "../wire/body.ts";
import { CodedError } from "../wire/errors.ts";
import { ERROR_CODE } from "../wire/patterns.ts";
import { MAX_PARTIES } from "../wire/protocol-message.ts";

export const MAX_ERROR_MESSAGE = 512;

/** What an ERROR frame carries; also what the server's `exposeError` returns. */
export interface PublicError {
  code: string;
  message: string;
  party?: number;
  /** Which approval check refused (approval.ts APPROVAL_REFUSALS); a field, never parsed from the sentence. */
  reason?: string;
}

const isParty = (p: unknown): p is number =>
  Number.isInteger(p) && (p as number) >= 1 && (p as number) <= MAX_PARTIES;
const blameOf = (party: number | undefined) => (party === undefined ? {} : { party });

/** Thrown by a handler: `code`, `message` and `party` go to the host as they are, so they must be public. */
export class RpcError extends CodedError {
  override name = "RpcError";
  constructor(code: string, message: string, party?: number) {
    super(code, message, blameOf(party));
  }
}

/** The enclave answered ERROR. `message` is "code: sentence"; `remoteMessage` is the sentence alone. */
export class RpcRemoteError extends CodedError {
  override name = "RpcRemoteError";
  constructor(
    code: string,
    readonly remoteMessage: string,
    party?: number,
    /** The approval refusal's reason, when the enclave sent one. */
    readonly reason?: string,
  ) {
    super(code, `${code}: ${remoteMessage}`, blameOf(party));
  }
}

export class RpcTimeoutError extends Error {
  override name = "RpcTimeoutError";
}

export class RpcClosedError extends Error {
  override name = "RpcClosedError";
}

/** Too many requests in flight; nothing was sent. */
export class RpcBusyError extends Error {
  override name = "RpcBusyError";
}

/** The peer sent something this side cannot accept. */
export class RpcProtocolError extends Error {
  override name = "RpcProtocolError";
}

/**
 * Builds an ERROR body. Sanitises rather than throws, because it runs on the
 * failure path: a code outside ERROR_CODE becomes "internal", a long message
 * is cut, and a party outside 1..MAX_PARTIES is left out.
 */
export function errorBody(code: string, message: string, party?: number, reason?: string): BodyMap {
  const fields: Record<string, BodyValue> = {
    code: ERROR_CODE.test(code) ? code : "internal",
    message:
      message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}...` : message,
  };
  if (isParty(party)) fields.party = party;
  if (reason !== undefined && ERROR_CODE.test(reason)) fields.reason = reason;
  return bodyOf(fields);
}

/** Reads an ERROR body; throws BodyError if a field is missing, of the wrong kind, or `party` is out of range. */
export function readErrorBody(body: BodyMap): PublicError {
  const out: PublicError = { code: getString(body, "code"), message: getString(body, "message") };
  if (body.has("party")) {
    const party = getUint(body, "party");
    if (!isParty(party))
      throw new BodyError(`field "party" is ${party}, outside 1..${MAX_PARTIES}`);
    out.party = party;
  }
  if (body.has("reason")) {
    const reason = getString(body, "reason");
    if (!ERROR_CODE.test(reason)) throw new BodyError('field "reason" is not a code');
    out.reason = reason;
  }
  return out;
}

/** Checks a count or duration option of the client or server. */
export function positiveOption(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`${name} must be a positive integer, got ${n}`);
  return n;
}
