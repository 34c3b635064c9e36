/**
 * The enclave's per-boot channel identity towards its peers: an X25519 key for
 * ECDH (point-to-point encryption) and an Ed25519 key for broadcast signatures.
 *
 * Both public keys go, as a versioned "channel key binding", into the
 * attestation document's user_data. A peer that verifies the document thereby
 * learns that these keys were made by an enclave running an allowed image; it
 * is the only way a peer learns them, so the binding must be produced by the
 * enclave itself and never taken from the host.
 *
 * The secret keys never leave this object: it does the ECDH and the signing
 * itself, and `destroy()` wipes them (on shutdown; the keys live for the boot).
 *
 * Binding layout: src/shared/wire/channel-key-binding.ts (re-exported here).
 */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import {
  encodeChannelKeyBinding,
  channelKeyBindingHash,
  type ChannelPublicKeys,
} from "../shared/wire/channel-key-binding.ts";

export {
  CHANNEL_BINDING_BYTES,
  CHANNEL_BINDING_LABEL,
  CHANNEL_BINDING_VERSION,
  CHANNEL_KEY_BYTES,
  ChannelBindingError,
  channelKeyBindingHash,
  encodeChannelKeyBinding,
  parseChannelKeyBinding,
  type ChannelPublicKeys,
} from "../shared/wire/channel-key-binding.ts";

export class PeerKeyError extends Error {
  override name = "PeerKeyError";
}

export class PeerKeys implements ChannelPublicKeys {
  readonly x25519Public: Uint8Array;
  readonly ed25519Public: Uint8Array;
  #x25519Secret: Uint8Array | null;
  #ed25519Secret: Uint8Array | null;

  /**
   * Fresh random keys; an enclave makes one PeerKeys per boot. `fixed` secrets
   * exist only for the pinned test vectors (test/vectors/peer-envelope.json).
   */
  constructor(fixed?: { x25519Secret: Uint8Array; ed25519Secret: Uint8Array }) {
    this.#x25519Secret = fixed ? fixed.x25519Secret.slice() : x25519.utils.randomSecretKey();
    this.#ed25519Secret = fixed ? fixed.ed25519Secret.slice() : ed25519.utils.randomSecretKey();
    this.x25519Public = x25519.getPublicKey(this.#x25519Secret);
    this.ed25519Public = ed25519.getPublicKey(this.#ed25519Secret);
  }

  /** What goes into the attestation document's user_data. */
  channelKeyBinding(): Uint8Array {
    return encodeChannelKeyBinding(this);
  }

  bindingHash(): Uint8Array {
    return channelKeyBindingHash(this);
  }

  /** Raw X25519 output with `peerPublic`; the caller derives a key from it and wipes it. */
  sharedSecret(peerPublic: Uint8Array): Uint8Array {
    try {
      return x25519.getSharedSecret(this.secret(this.#x25519Secret), peerPublic);
    } catch (e) {
      if (e instanceof PeerKeyError) throw e;
      // noble refuses low-order points before running the ladder.
      throw new PeerKeyError("peer X25519 public key is invalid or of low order");
    }
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.secret(this.#ed25519Secret));
  }

  /**
   * Runs `use` with the X25519 secret as an HPKE recipient key (key import,
   * lifecycle-import.ts). `importKey` gets a copy, wiped as soon as the import
   * settles; the imported key object is wiped once `use` settles where it can
   * be: @hpke/core's pure-JS X25519 (XCryptoKey, used where WebCrypto lacks
   * X25519) keeps the raw secret in its `key` bytes, zeroed here. A native
   * WebCrypto CryptoKey (Bun's) is opaque and not extractable: nothing in it
   * can be reached from JS, and it is dropped with the last reference.
   */
  async withHpkeRecipientKey<K, R>(
    importKey: (raw: ArrayBuffer) => Promise<K>,
    use: (key: K) => Promise<R>,
  ): Promise<R> {
    const raw = this.secret(this.#x25519Secret).slice().buffer as ArrayBuffer;
    let key: K;
    try {
      key = await importKey(raw);
    } finally {
      new Uint8Array(raw).fill(0);
    }
    try {
      return await use(key);
    } finally {
      const held = (key as { key?: unknown } | null)?.key;
      if (held instanceof Uint8Array) held.fill(0);
    }
  }

  destroy(): void {
    this.#x25519Secret?.fill(0);
    this.#ed25519Secret?.fill(0);
    this.#x25519Secret = null;
    this.#ed25519Secret = null;
  }

  private secret(k: Uint8Array | null): Uint8Array {
    if (!k) throw new PeerKeyError("channel keys were destroyed");
    return k;
  }
}
