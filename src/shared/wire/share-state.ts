/**
 * Share-state statement, format version 1: what one enclave says, at the
 * start of a sign or refresh, about the share it loaded for the session, signed
 * with the Ed25519 channel key its attestation document binds
 * (channel-key-binding.ts). Every other participant checks it against that
 * key, for this session, before its core reads a byte of the ceremony
 * (src/enclave/share-state.ts): a participant whose host loaded an older
 * share (a database rolled back, an old KMS blob that still decrypts) is
 * named and the session aborted, whatever the hosts claim.
 *
 * Statement encoding (what is signed; 19 + 32 + 2 + L + 71 bytes):
 *
 *    0  18  label "tss-share-state-v1" (domain separation: never a wallet
 *           statement, a peer envelope, an approval or any other signed thing)
 *   18  32  session id (SESSION_ID_LEN): the statement is good for this session only
 *   50   1  ceremony: 2 sign, 3 refresh, 6 reshare (protocol-message.ts codes)
 *   51   1  L = wallet id length, 1..MAX_ID_LEN
 *   52   L  wallet id, ASCII, patterns.ts ID_PATTERN
 *   +0   1  the signer's party index, 1..MAX_PARTIES
 *   +1   4  generation of the loaded share, u32 big-endian
 *   +5  32  public package hash: SHA-256 of the loaded share's public key package
 *   +37  1  policy flag: 0 no approval policy, 1 policy hash follows
 *   +38 32  approval policy hash (approval.ts policyHash); all zero when the flag is 0
 *
 * Every field has a fixed width except the wallet id, whose length comes
 * first, so two different statements never share an encoding.
 *
 * Signed statement (what travels, in the CEREMONY_START reply and then, from
 * every other participant, in the phase-2 CEREMONY_STEP): the encoding, then a
 * 64-byte RFC 8032 Ed25519 signature over exactly those bytes
 * (signed-statement.ts; verified strictly by the enclave). Pure encode/parse
 * here: no signature is checked.
 */
import { CodedError } from "./errors.ts";
import { isId, MAX_ID_LEN } from "./patterns.ts";
import { MAX_PARTIES, SESSION_ID_LEN, ceremonyCode } from "./protocol-message.ts";
import {
  joinSignedStatement,
  SIGNED_STATEMENT_SIGNATURE_BYTES,
  splitSignedStatement,
} from "./signed-statement.ts";
import { PACKAGE_HASH_BYTES, STATEMENT_POLICY_HASH_BYTES } from "./wallet-statement.ts";

export const SHARE_STATE_LABEL = new TextEncoder().encode("tss-share-state-v1");
export const SHARE_STATE_SIGNATURE_BYTES = SIGNED_STATEMENT_SIGNATURE_BYTES;
/** Ceremonies a share-state statement is made for: those that start from a loaded share. */
export type ShareStateCeremony = "sign" | "refresh" | "reshare";
const CEREMONY_BY_CODE: Record<number, ShareStateCeremony> = {
  [ceremonyCode("sign")]: "sign",
  [ceremonyCode("refresh")]: "refresh",
  // A reshare's dealers state the old share they deal from (src/enclave/lifecycle-reshare.ts).
  [ceremonyCode("reshare")]: "reshare",
};
/** Bytes before the wallet id: label, session id, ceremony, id length. */
const HEAD_BYTES = SHARE_STATE_LABEL.length + SESSION_ID_LEN + 2;
/** Bytes after the wallet id: index, generation, package hash, flag, policy hash. */
const TAIL_BYTES = 1 + 4 + PACKAGE_HASH_BYTES + 1 + STATEMENT_POLICY_HASH_BYTES;
export const MAX_SHARE_STATE_BYTES = HEAD_BYTES + MAX_ID_LEN + TAIL_BYTES;
export const MAX_SIGNED_SHARE_STATE_BYTES = MAX_SHARE_STATE_BYTES + SHARE_STATE_SIGNATURE_BYTES;
const MAX_U32 = 2 ** 32 - 1;

export interface ShareState {
  sessionId: Uint8Array;
  ceremony: ShareStateCeremony;
  walletId: string;
  partyIndex: number;
  generation: number;
  publicPackageHash: Uint8Array;
  /** approval.ts policyHash of the policy the share was sealed with; null for none. */
  policyHash: Uint8Array | null;
}

export class ShareStateError extends CodedError {
  override name = "ShareStateError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

function checkedBytes(v: unknown, length: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length)
    throw new ShareStateError(`${what} must be ${length} bytes`);
  return v;
}

function checkedInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new ShareStateError(`${what} must be an integer in ${min}..${max}`);
  return v;
}

/** Refuses any statement the parser would refuse, so what is signed always parses. */
function checkShareState(s: ShareState): void {
  checkedBytes(s.sessionId, SESSION_ID_LEN, "session id");
  if (s.ceremony !== "sign" && s.ceremony !== "refresh" && s.ceremony !== "reshare")
    throw new ShareStateError("ceremony must be sign, refresh or reshare");
  if (!isId(s.walletId)) throw new ShareStateError("wallet id breaks the id pattern");
  checkedInt(s.partyIndex, 1, MAX_PARTIES, "party index");
  checkedInt(s.generation, 0, MAX_U32, "generation");
  checkedBytes(s.publicPackageHash, PACKAGE_HASH_BYTES, "public package hash");
  if (s.policyHash !== null) checkedBytes(s.policyHash, STATEMENT_POLICY_HASH_BYTES, "policy hash");
}

export function encodeShareState(s: ShareState): Uint8Array {
  checkShareState(s);
  const id = new TextEncoder().encode(s.walletId);
  const out = new Uint8Array(HEAD_BYTES + id.length + TAIL_BYTES);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(SHARE_STATE_LABEL, at);
  at += SHARE_STATE_LABEL.length;
  out.set(s.sessionId, at);
  at += SESSION_ID_LEN;
  out[at++] = ceremonyCode(s.ceremony);
  out[at++] = id.length;
  out.set(id, at);
  at += id.length;
  out[at++] = s.partyIndex;
  view.setUint32(at, s.generation);
  at += 4;
  out.set(s.publicPackageHash, at);
  at += PACKAGE_HASH_BYTES;
  out[at++] = s.policyHash === null ? 0 : 1;
  if (s.policyHash !== null) out.set(s.policyHash, at);
  return out;
}

/** Parses an encoding strictly (exact length, label, bounds, canonical policy slot); checks no signature. */
export function parseShareStateUnverified(b: unknown): ShareState {
  if (!(b instanceof Uint8Array) || b.length < HEAD_BYTES || b.length > MAX_SHARE_STATE_BYTES)
    throw new ShareStateError(
      `a share-state statement must be ${HEAD_BYTES}..${MAX_SHARE_STATE_BYTES} bytes`,
    );
  if (!SHARE_STATE_LABEL.every((x, i) => b[i] === x))
    throw new ShareStateError("not a share-state statement (label mismatch)");
  let at = SHARE_STATE_LABEL.length;
  const take = (n: number) => b.slice(at, (at += n));
  const sessionId = take(SESSION_ID_LEN);
  const ceremony = CEREMONY_BY_CODE[b[at++]!];
  if (ceremony === undefined)
    throw new ShareStateError("ceremony must be sign (2), refresh (3) or reshare (6)");
  const idLength = b[at++]!;
  if (b.length !== HEAD_BYTES + idLength + TAIL_BYTES)
    throw new ShareStateError(
      `a share-state statement with a ${idLength}-byte wallet id must be ${HEAD_BYTES + idLength + TAIL_BYTES} bytes, got ${b.length}`,
    );
  const walletId = String.fromCharCode(...take(idLength));
  const partyIndex = b[at++]!;
  const generation = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
  at += 4;
  const publicPackageHash = take(PACKAGE_HASH_BYTES);
  const flag = b[at++]!;
  const policySlot = take(STATEMENT_POLICY_HASH_BYTES);
  if (flag > 1) throw new ShareStateError(`policy flag must be 0 or 1, got ${flag}`);
  if (flag === 0 && policySlot.some((x) => x !== 0))
    throw new ShareStateError("policy hash must be all zero when the policy flag is 0");
  const s: ShareState = {
    sessionId,
    ceremony,
    walletId,
    partyIndex,
    generation,
    publicPackageHash,
    policyHash: flag === 1 ? policySlot : null,
  };
  checkShareState(s);
  return s;
}

/** Statement encoding || signature (signed-statement.ts). */
export function encodeSignedShareState(statement: Uint8Array, signature: Uint8Array): Uint8Array {
  return joinSignedStatement(statement, signature, "share-state signature", shareStateError);
}

const shareStateError = (message: string) => new ShareStateError(message);

/** Splits a signed statement and parses its statement; the caller verifies the signature over `encoding`. */
export function parseSignedShareStateUnverified(b: unknown): {
  statement: ShareState;
  encoding: Uint8Array;
  signature: Uint8Array;
} {
  const { encoding, signature } = splitSignedStatement(
    b,
    MAX_SIGNED_SHARE_STATE_BYTES,
    "a signed share-state statement",
    shareStateError,
  );
  return { statement: parseShareStateUnverified(encoding), encoding, signature };
}
