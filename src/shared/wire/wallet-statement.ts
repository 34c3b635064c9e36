/**
 * Wallet statement, format version 1: what one enclave vouches for at the end
 * of a DKG or refresh, signed with the Ed25519 channel key that its
 * attestation document binds (channel-key-binding.ts). A client that has
 * verified the document and holds one agreeing statement from every holder
 * knows that n attested enclaves produced this public key, at this
 * generation, under this policy (src/client/wallet-verification.ts); no host
 * or broker can substitute another key without forging n enclave signatures.
 *
 * Statement encoding (what is signed; 24 + L + 137 bytes):
 *
 *    0  23  label "tss-wallet-statement-v1" (domain separation: these bytes are
 *           never a peer envelope, an approval or any other signed thing)
 *   23   1  L = wallet id length, 1..MAX_ID_LEN
 *   24   L  wallet id, ASCII, patterns.ts ID_PATTERN
 *   +0   1  threshold t, 2..n
 *   +1   1  parties n, t..MAX_PARTIES
 *   +2   1  the signer's party index, 1..n
 *   +3   4  generation, u32 big-endian (0 after DKG, +1 per refresh)
 *   +7  33  wallet public key, compressed SEC1
 *   +40 32  BIP-32 chain code
 *   +72 32  public package hash: SHA-256 of the public key package
 *   +104 1  policy flag: 0 no approval policy, 1 policy hash follows
 *   +105 32 approval policy hash (approval.ts policyHash); all zero when the flag is 0
 *
 * Every field has a fixed width except the wallet id, whose length comes
 * first, so two different statements never share an encoding.
 *
 * Signed statement (what travels): the encoding, then a 64-byte RFC 8032
 * Ed25519 signature over exactly those bytes (verified strictly: no ZIP-215
 * leniency). Pure encode/parse here: no signature is checked.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CHAIN_CODE_BYTES, COMPRESSED_KEY_BYTES } from "../public-key.ts";
import { CodedError } from "./errors.ts";
import { isId, MAX_ID_LEN } from "./patterns.ts";
import { MAX_PARTIES } from "./protocol-message.ts";
import {
  joinSignedStatement,
  SIGNED_STATEMENT_SIGNATURE_BYTES,
  splitSignedStatement,
} from "./signed-statement.ts";

export const WALLET_STATEMENT_LABEL = new TextEncoder().encode("tss-wallet-statement-v1");
export const PACKAGE_HASH_BYTES = 32;
export const STATEMENT_POLICY_HASH_BYTES = 32;
export const STATEMENT_SIGNATURE_BYTES = SIGNED_STATEMENT_SIGNATURE_BYTES;
/** Bytes after the wallet id: t, n, index, generation, key, chain code, package hash, flag, policy hash. */
const FIXED_TAIL_BYTES =
  3 +
  4 +
  COMPRESSED_KEY_BYTES +
  CHAIN_CODE_BYTES +
  PACKAGE_HASH_BYTES +
  1 +
  STATEMENT_POLICY_HASH_BYTES;
const HEAD_BYTES = WALLET_STATEMENT_LABEL.length + 1;
export const MAX_WALLET_STATEMENT_BYTES = HEAD_BYTES + MAX_ID_LEN + FIXED_TAIL_BYTES;
export const MAX_SIGNED_WALLET_STATEMENT_BYTES =
  MAX_WALLET_STATEMENT_BYTES + STATEMENT_SIGNATURE_BYTES;
const MAX_U32 = 2 ** 32 - 1;

export interface WalletStatement {
  walletId: string;
  threshold: number;
  parties: number;
  partyIndex: number;
  generation: number;
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  publicPackageHash: Uint8Array;
  /** approval.ts policyHash of the wallet's policy; null for a wallet without one. */
  policyHash: Uint8Array | null;
}

export class WalletStatementError extends CodedError {
  override name = "WalletStatementError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

/** The public package's name in a statement. */
export function publicPackageHash(publicPackage: Uint8Array): Uint8Array {
  return sha256(publicPackage);
}

function checkedBytes(v: unknown, length: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length)
    throw new WalletStatementError(`${what} must be ${length} bytes`);
  return v;
}

function checkedInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new WalletStatementError(`${what} must be an integer in ${min}..${max}`);
  return v;
}

/** Refuses any statement the parser would refuse, so what is signed always parses. */
function checkStatement(s: WalletStatement): void {
  if (!isId(s.walletId)) throw new WalletStatementError("wallet id breaks the id pattern");
  const n = checkedInt(s.parties, 2, MAX_PARTIES, "parties");
  checkedInt(s.threshold, 2, n, "threshold");
  checkedInt(s.partyIndex, 1, n, "party index");
  checkedInt(s.generation, 0, MAX_U32, "generation");
  checkedBytes(s.publicKey, COMPRESSED_KEY_BYTES, "public key");
  checkedBytes(s.chainCode, CHAIN_CODE_BYTES, "chain code");
  checkedBytes(s.publicPackageHash, PACKAGE_HASH_BYTES, "public package hash");
  if (s.policyHash !== null) checkedBytes(s.policyHash, STATEMENT_POLICY_HASH_BYTES, "policy hash");
}

export function encodeWalletStatement(s: WalletStatement): Uint8Array {
  checkStatement(s);
  const id = new TextEncoder().encode(s.walletId);
  const out = new Uint8Array(HEAD_BYTES + id.length + FIXED_TAIL_BYTES);
  const view = new DataView(out.buffer);
  out.set(WALLET_STATEMENT_LABEL, 0);
  out[WALLET_STATEMENT_LABEL.length] = id.length;
  out.set(id, HEAD_BYTES);
  let at = HEAD_BYTES + id.length;
  out[at++] = s.threshold;
  out[at++] = s.parties;
  out[at++] = s.partyIndex;
  view.setUint32(at, s.generation);
  at += 4;
  for (const field of [s.publicKey, s.chainCode, s.publicPackageHash]) {
    out.set(field, at);
    at += field.length;
  }
  out[at++] = s.policyHash === null ? 0 : 1;
  if (s.policyHash !== null) out.set(s.policyHash, at);
  return out;
}

/** Parses an encoding strictly (exact length, label, bounds, canonical policy slot); checks no signature. */
export function parseWalletStatementUnverified(b: unknown): WalletStatement {
  if (!(b instanceof Uint8Array) || b.length < HEAD_BYTES || b.length > MAX_WALLET_STATEMENT_BYTES)
    throw new WalletStatementError(
      `a wallet statement must be ${HEAD_BYTES}..${MAX_WALLET_STATEMENT_BYTES} bytes`,
    );
  if (!WALLET_STATEMENT_LABEL.every((x, i) => b[i] === x))
    throw new WalletStatementError("not a wallet statement (label mismatch)");
  const idLength = b[WALLET_STATEMENT_LABEL.length]!;
  if (b.length !== HEAD_BYTES + idLength + FIXED_TAIL_BYTES)
    throw new WalletStatementError(
      `a wallet statement with a ${idLength}-byte wallet id must be ${HEAD_BYTES + idLength + FIXED_TAIL_BYTES} bytes, got ${b.length}`,
    );
  const walletId = String.fromCharCode(...b.subarray(HEAD_BYTES, HEAD_BYTES + idLength));
  let at = HEAD_BYTES + idLength;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const take = (n: number) => b.slice(at, (at += n));
  const threshold = b[at++]!;
  const parties = b[at++]!;
  const partyIndex = b[at++]!;
  const generation = view.getUint32(at);
  at += 4;
  const publicKey = take(COMPRESSED_KEY_BYTES);
  const chainCode = take(CHAIN_CODE_BYTES);
  const packageHash = take(PACKAGE_HASH_BYTES);
  const flag = b[at++]!;
  const policySlot = take(STATEMENT_POLICY_HASH_BYTES);
  if (flag > 1) throw new WalletStatementError(`policy flag must be 0 or 1, got ${flag}`);
  if (flag === 0 && policySlot.some((x) => x !== 0))
    throw new WalletStatementError("policy hash must be all zero when the policy flag is 0");
  const statement: WalletStatement = {
    walletId,
    threshold,
    parties,
    partyIndex,
    generation,
    publicKey,
    chainCode,
    publicPackageHash: packageHash,
    policyHash: flag === 1 ? policySlot : null,
  };
  checkStatement(statement);
  return statement;
}

/** Statement encoding || signature (signed-statement.ts). */
export function encodeSignedWalletStatement(
  statement: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  return joinSignedStatement(statement, signature, "statement signature", walletStatementError);
}

const walletStatementError = (message: string) => new WalletStatementError(message);

/** Splits a signed statement and parses its statement; the caller verifies the signature over `encoding`. */
export function parseSignedWalletStatementUnverified(b: unknown): {
  statement: WalletStatement;
  encoding: Uint8Array;
  signature: Uint8Array;
} {
  const { encoding, signature } = splitSignedStatement(
    b,
    MAX_SIGNED_WALLET_STATEMENT_BYTES,
    "a signed wallet statement",
    walletStatementError,
  );
  return { statement: parseWalletStatementUnverified(encoding), encoding, signature };
}
