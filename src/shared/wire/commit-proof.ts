/**
 * Commit proof, format version 1: the seal receipts (seal-receipt.ts) with which a holder's
 * enclave activated a DKG/refresh share, kept by its host (refresh_outcomes.proof, migration 12)
 * and handed on with its "committed" answer to node RPC `ceremonyOutcome`. A holder settling
 * its pending share from its peers passes them to its own enclave's ACTIVATE_SHARE, which
 * checks them itself (src/enclave/seal-receipts.ts): a peer's "committed" without one valid
 * receipt from every party of the session (so every holder stored it) commits nothing.
 *
 * Stored encoding (what the host keeps; at most MAX_COMMIT_PROOF_BYTES):
 *
 *    0   1  format version, 1
 *    1   1  n = number of receipts, 1..MAX_PARTIES
 *   then n times:
 *    +0  2  L = length of the signed receipt, u16 big-endian, 1..MAX_SIGNED_SEAL_RECEIPT_BYTES
 *    +2  L  the signed seal receipt, as the enclave signed it
 *
 * Nothing is verified here: the receipts are only bounded. On the node RPC wire the receipts
 * travel as a list of byte strings (`CeremonyOutcomeAnswer.receipts`), bounded by
 * `boundedProofReceipts` before they reach an enclave.
 */
import { CodedError } from "./errors.ts";
import { MAX_PARTIES } from "./protocol-message.ts";
import { MAX_SIGNED_SEAL_RECEIPT_BYTES } from "./seal-receipt.ts";

const VERSION = 1;
export const MAX_COMMIT_PROOF_BYTES = 2 + MAX_PARTIES * (2 + MAX_SIGNED_SEAL_RECEIPT_BYTES);

export class CommitProofError extends CodedError {
  override name = "CommitProofError";
  constructor(message: string) {
    super("bad_request", message);
  }
}

/**
 * `v` as a list of 1..MAX_PARTIES byte strings of 1..MAX_SIGNED_SEAL_RECEIPT_BYTES each (copied),
 * or undefined: a peer's answer that is not such a list proves nothing.
 */
export function boundedProofReceipts(v: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_PARTIES) return undefined;
  const out: Uint8Array[] = [];
  for (const r of v) {
    if (!(r instanceof Uint8Array) || r.length < 1 || r.length > MAX_SIGNED_SEAL_RECEIPT_BYTES)
      return undefined;
    out.push(Uint8Array.from(r));
  }
  return out;
}

export function encodeCommitProof(receipts: readonly Uint8Array[]): Uint8Array {
  if (boundedProofReceipts(receipts) === undefined)
    throw new CommitProofError(
      `a commit proof holds 1..${MAX_PARTIES} receipts of 1..${MAX_SIGNED_SEAL_RECEIPT_BYTES} bytes`,
    );
  const out = new Uint8Array(2 + receipts.reduce((s, r) => s + 2 + r.length, 0));
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = receipts.length;
  let at = 2;
  for (const r of receipts) {
    view.setUint16(at, r.length);
    out.set(r, at + 2);
    at += 2 + r.length;
  }
  return out;
}

/** Parses a stored proof strictly (version, count, every length in bounds, no trailing bytes). */
export function decodeCommitProof(b: unknown): Uint8Array[] {
  if (!(b instanceof Uint8Array) || b.length < 2 || b.length > MAX_COMMIT_PROOF_BYTES)
    throw new CommitProofError(`a commit proof must be 2..${MAX_COMMIT_PROOF_BYTES} bytes`);
  if (b[0] !== VERSION) throw new CommitProofError(`commit proof version ${b[0]} is unknown`);
  const n = b[1]!;
  if (n < 1 || n > MAX_PARTIES)
    throw new CommitProofError(`a commit proof holds 1..${MAX_PARTIES} receipts, not ${n}`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Uint8Array[] = [];
  let at = 2;
  for (let k = 0; k < n; k++) {
    if (at + 2 > b.length) throw new CommitProofError(`commit proof truncated at receipt ${k}`);
    const length = view.getUint16(at);
    at += 2;
    if (length < 1 || length > MAX_SIGNED_SEAL_RECEIPT_BYTES || at + length > b.length)
      throw new CommitProofError(`receipt ${k} of the commit proof has a bad length ${length}`);
    out.push(b.slice(at, at + length));
    at += length;
  }
  if (at !== b.length) throw new CommitProofError("trailing bytes after the commit proof");
  return out;
}
