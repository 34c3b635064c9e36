/**
 * The one check of a signature made with an enclave's attested Ed25519
 * channel key (peer broadcasts, share-state statements, seal receipts,
 * commit certificates): strict RFC 8032 rules, no ZIP-215 leniency, so
 * encodings are canonical and small-order keys are refused. Malformed
 * input is an invalid signature, never an exception.
 */
import { ed25519 } from "@noble/curves/ed25519.js";

export function channelSignatureValid(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
