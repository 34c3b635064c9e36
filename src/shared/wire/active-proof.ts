/**
 * Active proof, format version 1: what one holder's enclave says, asked through its host
 * (node RPC proveActive, enclave op PROVE_ACTIVE), when a lost node's enclave wants to know
 * whether a newer generation of a wallet is live now (src/enclave/supersession.ts): "the
 * share of this wallet I hold loaded right now is party i of n at generation g under this key,
 * of the sharing whose public package hashes to h, and I say so for your nonce". Naming n and
 * h ties the proof to one sharing: the verifier compares them with the statement set's, so a
 * proof from a share of another sharing at the same generation and index never counts. Signed with the Ed25519 channel key the signer's attestation
 * document binds, the key its wallet statement of that generation is signed with, so the
 * lost node's enclave checks it against the statement's own key. The nonce is the lost
 * node's enclave's own, fresh and single use: a proof cannot be replayed from an earlier
 * moment (before a rollback, say).
 *
 * Proof encoding (what is signed; 19 + 32 + 1 + L + 1 + 4 + 33 + 1 + 32 bytes). Version 1 took
 * n and h in before it was released (it had been without them for one unreleased change); the
 * frozen vectors were rewritten once for that (test/vectors/active-proof.json).
 *
 *    0  19  label "tss-active-proof-v1" (domain separation: never a wallet statement,
 *           share-state statement, seal receipt, peer envelope or approval)
 *   19  32  nonce (ACTIVE_PROOF_NONCE_BYTES), the asking enclave's
 *   51   1  L = wallet id length, 1..MAX_ID_LEN
 *   52   L  wallet id, ASCII, patterns.ts ID_PATTERN
 *   +0   1  the signer's party index, 1..MAX_PARTIES
 *   +1   4  generation of its loaded share, u32 big-endian
 *   +5  33  the wallet's public key, compressed
 *  +38   1  n, the sharing's number of parties, 1..MAX_PARTIES (at least the party index)
 *  +39  32  SHA-256 of the sharing's public package (wallet-statement.ts publicPackageHash)
 *
 * Every field has a fixed width except the wallet id, whose length comes first, so two
 * different proofs never share an encoding. Signed proof (what travels): the encoding, then
 * a 64-byte RFC 8032 Ed25519 signature over exactly those bytes (signed-statement.ts), at
 * most MAX_SIGNED_ACTIVE_PROOF_BYTES. Pure encode/parse here: no signature is checked.
 */
import { COMPRESSED_KEY_BYTES } from "../public-key.ts";
import { CodedError } from "./errors.ts";
import { isId, MAX_ID_LEN } from "./patterns.ts";
import { MAX_PARTIES } from "./protocol-message.ts";
import {
  joinSignedStatement,
  SIGNED_STATEMENT_SIGNATURE_BYTES,
  splitSignedStatement,
} from "./signed-statement.ts";

export const ACTIVE_PROOF_LABEL = new TextEncoder().encode("tss-active-proof-v1");
export const ACTIVE_PROOF_NONCE_BYTES = 32;
const HEAD_BYTES = ACTIVE_PROOF_LABEL.length + ACTIVE_PROOF_NONCE_BYTES + 1;
export const ACTIVE_PROOF_PACKAGE_HASH_BYTES = 32;
const TAIL_BYTES = 1 + 4 + COMPRESSED_KEY_BYTES + 1 + ACTIVE_PROOF_PACKAGE_HASH_BYTES;
export const MAX_ACTIVE_PROOF_BYTES = HEAD_BYTES + MAX_ID_LEN + TAIL_BYTES;
export const MAX_SIGNED_ACTIVE_PROOF_BYTES =
  MAX_ACTIVE_PROOF_BYTES + SIGNED_STATEMENT_SIGNATURE_BYTES;
const MAX_U32 = 2 ** 32 - 1;

export interface ActiveProof {
  nonce: Uint8Array;
  walletId: string;
  partyIndex: number;
  generation: number;
  publicKey: Uint8Array;
  /** The sharing's number of parties. */
  parties: number;
  /** SHA-256 of the sharing's public package. */
  publicPackageHash: Uint8Array;
}

export class ActiveProofError extends CodedError {
  override name = "ActiveProofError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

function check(p: ActiveProof): void {
  if (!(p.nonce instanceof Uint8Array) || p.nonce.length !== ACTIVE_PROOF_NONCE_BYTES)
    throw new ActiveProofError(`nonce must be ${ACTIVE_PROOF_NONCE_BYTES} bytes`);
  if (!isId(p.walletId)) throw new ActiveProofError("wallet id breaks the id pattern");
  if (!Number.isInteger(p.partyIndex) || p.partyIndex < 1 || p.partyIndex > MAX_PARTIES)
    throw new ActiveProofError(`party index must be an integer in 1..${MAX_PARTIES}`);
  if (!Number.isInteger(p.generation) || p.generation < 0 || p.generation > MAX_U32)
    throw new ActiveProofError(`generation must be an integer in 0..${MAX_U32}`);
  if (!(p.publicKey instanceof Uint8Array) || p.publicKey.length !== COMPRESSED_KEY_BYTES)
    throw new ActiveProofError(`public key must be ${COMPRESSED_KEY_BYTES} bytes`);
  if (!Number.isInteger(p.parties) || p.parties < p.partyIndex || p.parties > MAX_PARTIES)
    throw new ActiveProofError(`parties must be an integer in party index..${MAX_PARTIES}`);
  if (
    !(p.publicPackageHash instanceof Uint8Array) ||
    p.publicPackageHash.length !== ACTIVE_PROOF_PACKAGE_HASH_BYTES
  )
    throw new ActiveProofError(
      `public package hash must be ${ACTIVE_PROOF_PACKAGE_HASH_BYTES} bytes`,
    );
}

export function encodeActiveProof(p: ActiveProof): Uint8Array {
  check(p);
  const id = new TextEncoder().encode(p.walletId);
  const out = new Uint8Array(HEAD_BYTES + id.length + TAIL_BYTES);
  let at = 0;
  out.set(ACTIVE_PROOF_LABEL, at);
  at += ACTIVE_PROOF_LABEL.length;
  out.set(p.nonce, at);
  at += ACTIVE_PROOF_NONCE_BYTES;
  out[at++] = id.length;
  out.set(id, at);
  at += id.length;
  out[at++] = p.partyIndex;
  new DataView(out.buffer).setUint32(at, p.generation);
  at += 4;
  out.set(p.publicKey, at);
  at += COMPRESSED_KEY_BYTES;
  out[at++] = p.parties;
  out.set(p.publicPackageHash, at);
  return out;
}

/** Parses an encoding strictly (exact length, label, bounds); checks no signature. */
export function parseActiveProofUnverified(b: unknown): ActiveProof {
  if (!(b instanceof Uint8Array) || b.length < HEAD_BYTES || b.length > MAX_ACTIVE_PROOF_BYTES)
    throw new ActiveProofError(
      `an active proof must be ${HEAD_BYTES}..${MAX_ACTIVE_PROOF_BYTES} bytes`,
    );
  if (!ACTIVE_PROOF_LABEL.every((x, i) => b[i] === x))
    throw new ActiveProofError("not an active proof (label mismatch)");
  let at = ACTIVE_PROOF_LABEL.length;
  const take = (n: number) => b.slice(at, (at += n));
  const nonce = take(ACTIVE_PROOF_NONCE_BYTES);
  const idLength = b[at++]!;
  if (b.length !== HEAD_BYTES + idLength + TAIL_BYTES)
    throw new ActiveProofError(
      `an active proof with a ${idLength}-byte wallet id must be ${HEAD_BYTES + idLength + TAIL_BYTES} bytes, got ${b.length}`,
    );
  const walletId = String.fromCharCode(...take(idLength));
  const partyIndex = b[at++]!;
  const generation = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
  at += 4;
  const p: ActiveProof = {
    nonce,
    walletId,
    partyIndex,
    generation,
    publicKey: take(COMPRESSED_KEY_BYTES),
    parties: b[at++]!,
    publicPackageHash: take(ACTIVE_PROOF_PACKAGE_HASH_BYTES),
  };
  check(p);
  return p;
}

const proofError = (message: string) => new ActiveProofError(message);

/** Proof encoding || signature (signed-statement.ts). */
export function encodeSignedActiveProof(proof: Uint8Array, signature: Uint8Array): Uint8Array {
  return joinSignedStatement(proof, signature, "active proof signature", proofError);
}

/** Splits a signed proof and parses it; the caller verifies the signature over `encoding`. */
export function parseSignedActiveProofUnverified(b: unknown): {
  proof: ActiveProof;
  encoding: Uint8Array;
  signature: Uint8Array;
} {
  const { encoding, signature } = splitSignedStatement(
    b,
    MAX_SIGNED_ACTIVE_PROOF_BYTES,
    "a signed active proof",
    proofError,
  );
  return { proof: parseActiveProofUnverified(encoding), encoding, signature };
}
