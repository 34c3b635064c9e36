/**
 * The signed form shared by the enclaves' statements (wallet-statement.ts,
 * share-state.ts): a statement's encoding, then a 64-byte RFC 8032 Ed25519
 * signature over exactly those bytes, made with the channel key the signer's
 * attestation document binds. Splitting and joining only: no signature is
 * checked here, and each statement's own encoding (with its domain label)
 * says what was signed.
 *
 *   0  L   statement encoding (its own format; L is bounded by it)
 *   L  64  Ed25519 signature
 */
import type { CodedError } from "./errors.ts";

export const SIGNED_STATEMENT_SIGNATURE_BYTES = 64;

/** Encoding || signature; `fail` builds the format's own error. */
export function joinSignedStatement(
  encoding: Uint8Array,
  signature: unknown,
  what: string,
  fail: (message: string) => CodedError,
): Uint8Array {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNED_STATEMENT_SIGNATURE_BYTES)
    throw fail(`${what} must be ${SIGNED_STATEMENT_SIGNATURE_BYTES} bytes`);
  const out = new Uint8Array(encoding.length + SIGNED_STATEMENT_SIGNATURE_BYTES);
  out.set(encoding, 0);
  out.set(signature, encoding.length);
  return out;
}

/** Splits a signed statement of at most `maxBytes` into copies of its encoding and its signature. */
export function splitSignedStatement(
  b: unknown,
  maxBytes: number,
  what: string,
  fail: (message: string) => CodedError,
): { encoding: Uint8Array; signature: Uint8Array } {
  if (
    !(b instanceof Uint8Array) ||
    b.length <= SIGNED_STATEMENT_SIGNATURE_BYTES ||
    b.length > maxBytes
  )
    throw fail(`${what} must be at most ${maxBytes} bytes`);
  return {
    encoding: b.slice(0, b.length - SIGNED_STATEMENT_SIGNATURE_BYTES),
    signature: b.slice(b.length - SIGNED_STATEMENT_SIGNATURE_BYTES),
  };
}
