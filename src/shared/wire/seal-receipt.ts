/**
 * Seal receipt, format version 1: what one enclave says, in its SEAL_SHARE
 * reply, about the share a DKG (or key import) or refresh (or policy change)
 * produced for a session: "I sealed my share of this session". It is
 * signed with the Ed25519 channel key the enclave's attestation document
 * binds (channel-key-binding.ts), the key its peers admitted for that very
 * session. The host hands the receipt on only once it stored the sealed share
 * (src/host/node-host.ts persist), the coordinator gathers the n receipts from
 * the persist answers and hands all of them to every holder's commit, and each
 * enclave activates its pending share only with one valid receipt from every
 * holder of the session (src/enclave/seal-receipts.ts): a coordinator cannot
 * commit a session on some holders while another never stored it.
 *
 * Receipt encoding (what is signed; 19 + 32 + 2 + L + 37 bytes):
 *
 *    0  19  label "tss-seal-receipt-v1" (domain separation: never a wallet
 *           statement, a share-state statement, a peer envelope or an approval)
 *   19  32  session id (SESSION_ID_LEN): good for this session only
 *   51   1  ceremony: 1 dkg (a key import too), 3 refresh (a policy change
 *           too): protocol-message.ts codes
 *   52   1  L = wallet id length, 1..MAX_ID_LEN
 *   53   L  wallet id, ASCII, patterns.ts ID_PATTERN
 *   +0   1  the sealer's party index, 1..MAX_PARTIES
 *   +1   4  generation of the sealed share, u32 big-endian
 *   +5  32  public package hash: SHA-256 of the new share's public key package
 *
 * Every field has a fixed width except the wallet id, whose length comes
 * first, so two different receipts never share an encoding.
 *
 * Signed receipt (what travels: SEAL_SHARE reply `receipt`, node RPC persist
 * answer `receipt`, commit `receipts`, ACTIVATE_SHARE `sealReceipts`): the
 * encoding, then a 64-byte RFC 8032 Ed25519 signature over exactly those
 * bytes (signed-statement.ts), at most MAX_SIGNED_SEAL_RECEIPT_BYTES. Pure
 * encode/parse here: no signature is checked.
 */
import { CodedError } from "./errors.ts";
import { isId, MAX_ID_LEN } from "./patterns.ts";
import { MAX_PARTIES, SESSION_ID_LEN, ceremonyCode } from "./protocol-message.ts";
import {
  joinSignedStatement,
  SIGNED_STATEMENT_SIGNATURE_BYTES,
  splitSignedStatement,
} from "./signed-statement.ts";
import { PACKAGE_HASH_BYTES } from "./wallet-statement.ts";

export const SEAL_RECEIPT_LABEL = new TextEncoder().encode("tss-seal-receipt-v1");
/** Ceremonies whose result is sealed and committed. */
export type SealReceiptCeremony = "dkg" | "refresh";
const CEREMONY_BY_CODE: Record<number, SealReceiptCeremony> = {
  [ceremonyCode("dkg")]: "dkg",
  [ceremonyCode("refresh")]: "refresh",
};
/** Bytes before the wallet id: label, session id, ceremony, id length. */
const HEAD_BYTES = SEAL_RECEIPT_LABEL.length + SESSION_ID_LEN + 2;
/** Bytes after the wallet id: index, generation, package hash. */
const TAIL_BYTES = 1 + 4 + PACKAGE_HASH_BYTES;
export const MAX_SEAL_RECEIPT_BYTES = HEAD_BYTES + MAX_ID_LEN + TAIL_BYTES;
export const MAX_SIGNED_SEAL_RECEIPT_BYTES =
  MAX_SEAL_RECEIPT_BYTES + SIGNED_STATEMENT_SIGNATURE_BYTES;
const MAX_U32 = 2 ** 32 - 1;

export interface SealReceipt {
  sessionId: Uint8Array;
  ceremony: SealReceiptCeremony;
  walletId: string;
  partyIndex: number;
  generation: number;
  publicPackageHash: Uint8Array;
}

export class SealReceiptError extends CodedError {
  override name = "SealReceiptError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

function checkedBytes(v: unknown, length: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length)
    throw new SealReceiptError(`${what} must be ${length} bytes`);
  return v;
}

function checkedInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new SealReceiptError(`${what} must be an integer in ${min}..${max}`);
  return v;
}

/** Refuses any receipt the parser would refuse, so what is signed always parses. */
function checkSealReceipt(r: SealReceipt): void {
  checkedBytes(r.sessionId, SESSION_ID_LEN, "session id");
  if (!Object.values(CEREMONY_BY_CODE).includes(r.ceremony))
    throw new SealReceiptError("ceremony must be dkg or refresh");
  if (!isId(r.walletId)) throw new SealReceiptError("wallet id breaks the id pattern");
  checkedInt(r.partyIndex, 1, MAX_PARTIES, "party index");
  checkedInt(r.generation, 0, MAX_U32, "generation");
  checkedBytes(r.publicPackageHash, PACKAGE_HASH_BYTES, "public package hash");
}

export function encodeSealReceipt(r: SealReceipt): Uint8Array {
  checkSealReceipt(r);
  const id = new TextEncoder().encode(r.walletId);
  const out = new Uint8Array(HEAD_BYTES + id.length + TAIL_BYTES);
  let at = 0;
  out.set(SEAL_RECEIPT_LABEL, at);
  at += SEAL_RECEIPT_LABEL.length;
  out.set(r.sessionId, at);
  at += SESSION_ID_LEN;
  out[at++] = ceremonyCode(r.ceremony);
  out[at++] = id.length;
  out.set(id, at);
  at += id.length;
  out[at++] = r.partyIndex;
  new DataView(out.buffer).setUint32(at, r.generation);
  at += 4;
  out.set(r.publicPackageHash, at);
  return out;
}

/** Parses an encoding strictly (exact length, label, bounds); checks no signature. */
export function parseSealReceiptUnverified(b: unknown): SealReceipt {
  if (!(b instanceof Uint8Array) || b.length < HEAD_BYTES || b.length > MAX_SEAL_RECEIPT_BYTES)
    throw new SealReceiptError(
      `a seal receipt must be ${HEAD_BYTES}..${MAX_SEAL_RECEIPT_BYTES} bytes`,
    );
  if (!SEAL_RECEIPT_LABEL.every((x, i) => b[i] === x))
    throw new SealReceiptError("not a seal receipt (label mismatch)");
  let at = SEAL_RECEIPT_LABEL.length;
  const take = (n: number) => b.slice(at, (at += n));
  const sessionId = take(SESSION_ID_LEN);
  const ceremony = CEREMONY_BY_CODE[b[at++]!];
  if (ceremony === undefined) throw new SealReceiptError("ceremony must be dkg (1) or refresh (3)");
  const idLength = b[at++]!;
  if (b.length !== HEAD_BYTES + idLength + TAIL_BYTES)
    throw new SealReceiptError(
      `a seal receipt with a ${idLength}-byte wallet id must be ${HEAD_BYTES + idLength + TAIL_BYTES} bytes, got ${b.length}`,
    );
  const walletId = String.fromCharCode(...take(idLength));
  const partyIndex = b[at++]!;
  const generation = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
  at += 4;
  const publicPackageHash = take(PACKAGE_HASH_BYTES);
  const r: SealReceipt = {
    sessionId,
    ceremony,
    walletId,
    partyIndex,
    generation,
    publicPackageHash,
  };
  checkSealReceipt(r);
  return r;
}

const sealReceiptError = (message: string) => new SealReceiptError(message);

/** Receipt encoding || signature (signed-statement.ts). */
export function encodeSignedSealReceipt(receipt: Uint8Array, signature: Uint8Array): Uint8Array {
  return joinSignedStatement(receipt, signature, "seal receipt signature", sealReceiptError);
}

/** Splits a signed receipt and parses it; the caller verifies the signature over `encoding`. */
export function parseSignedSealReceiptUnverified(b: unknown): {
  receipt: SealReceipt;
  encoding: Uint8Array;
  signature: Uint8Array;
} {
  const { encoding, signature } = splitSignedStatement(
    b,
    MAX_SIGNED_SEAL_RECEIPT_BYTES,
    "a signed seal receipt",
    sealReceiptError,
  );
  return { receipt: parseSealReceiptUnverified(encoding), encoding, signature };
}
