/**
 * The channel key binding: the versioned pair of an enclave's per-boot
 * channel public keys (X25519 for ECDH, Ed25519 for signatures) that goes
 * into its attestation document's user_data. Enclaves read it to admit peers
 * (src/enclave/peer-attestation.ts); clients read it to learn the key that
 * signed a wallet statement (src/client/wallet-verification.ts). Only the
 * format lives here; the secret halves stay in src/enclave/peer-keys.ts.
 *
 * Binding layout (81 bytes, fits user_data's 512-byte budget):
 *   0  16  label "tss-channel-keys" (so no other user_data is read as a binding)
 *   16  1  binding version = 1
 *   17 32  X25519 public key (RFC 7748 u-coordinate)
 *   49 32  Ed25519 public key (RFC 8032 encoding)
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const CHANNEL_BINDING_LABEL = new TextEncoder().encode("tss-channel-keys");
export const CHANNEL_BINDING_VERSION = 1;
export const CHANNEL_KEY_BYTES = 32;
export const CHANNEL_BINDING_BYTES = CHANNEL_BINDING_LABEL.length + 1 + 2 * CHANNEL_KEY_BYTES;

export interface ChannelPublicKeys {
  x25519Public: Uint8Array;
  ed25519Public: Uint8Array;
}

export class ChannelBindingError extends Error {
  override name = "ChannelBindingError";
}

export function encodeChannelKeyBinding(keys: ChannelPublicKeys): Uint8Array {
  if (
    keys.x25519Public.length !== CHANNEL_KEY_BYTES ||
    keys.ed25519Public.length !== CHANNEL_KEY_BYTES
  ) {
    throw new ChannelBindingError(`channel public keys must be ${CHANNEL_KEY_BYTES} bytes each`);
  }
  const out = new Uint8Array(CHANNEL_BINDING_BYTES);
  out.set(CHANNEL_BINDING_LABEL, 0);
  out[CHANNEL_BINDING_LABEL.length] = CHANNEL_BINDING_VERSION;
  out.set(keys.x25519Public, CHANNEL_BINDING_LABEL.length + 1);
  out.set(keys.ed25519Public, CHANNEL_BINDING_LABEL.length + 1 + CHANNEL_KEY_BYTES);
  return out;
}

/** Strict: exact length, label and version; the Ed25519 key must be a canonical point of large order. */
export function parseChannelKeyBinding(userData: Uint8Array | null | undefined): ChannelPublicKeys {
  if (!(userData instanceof Uint8Array))
    throw new ChannelBindingError("no channel key binding: user_data is absent");
  if (userData.length !== CHANNEL_BINDING_BYTES) {
    throw new ChannelBindingError(
      `channel key binding must be ${CHANNEL_BINDING_BYTES} bytes, got ${userData.length}`,
    );
  }
  const label = userData.subarray(0, CHANNEL_BINDING_LABEL.length);
  if (!label.every((b, i) => b === CHANNEL_BINDING_LABEL[i]))
    throw new ChannelBindingError("user_data is not a channel key binding (label mismatch)");
  const version = userData[CHANNEL_BINDING_LABEL.length];
  if (version !== CHANNEL_BINDING_VERSION)
    throw new ChannelBindingError(`unsupported channel key binding version ${version}`);
  const at = CHANNEL_BINDING_LABEL.length + 1;
  const x25519Public = userData.slice(at, at + CHANNEL_KEY_BYTES);
  const ed25519Public = userData.slice(at + CHANNEL_KEY_BYTES, at + 2 * CHANNEL_KEY_BYTES);
  // Strict (non-ZIP-215) decoding plus a small-order check: the same rules
  // verification applies later, so a bad key is refused at admission, not mid-ceremony.
  let smallOrder: boolean;
  try {
    smallOrder = ed25519.Point.fromBytes(ed25519Public, false).isSmallOrder();
  } catch {
    throw new ChannelBindingError("channel key binding holds an invalid Ed25519 public key");
  }
  if (smallOrder)
    throw new ChannelBindingError("channel key binding holds a small-order Ed25519 public key");
  // X25519 low-order points are refused by the ECDH itself (see PeerKeys.sharedSecret).
  return { x25519Public, ed25519Public };
}

/** SHA-256 of the binding: a short, canonical name for a peer's channel identity. */
export function channelKeyBindingHash(keys: ChannelPublicKeys): Uint8Array {
  return sha256(encodeChannelKeyBinding(keys));
}
