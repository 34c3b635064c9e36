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
 * Speed (a signature costs each signer ~8 ECDHs and 2 signatures): the X25519
 * output with each peer key is kept for the boot (it is a function of the
 * secret this object holds anyway, so keeping it exposes nothing more; wiped
 * with the keys), and signing runs in node:crypto (BoringSSL, ~20x
 * @noble/curves; Ed25519 signing is deterministic, so the bytes are the same,
 * test/vectors/peer-envelope.json). The signing key then also lives in a
 * native KeyObject, which JavaScript cannot wipe: `destroy()` drops the only
 * reference.
 *
 * Binding layout: src/shared/wire/channel-key-binding.ts (re-exported here).
 */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { createPrivateKey, sign as nativeSign, type KeyObject } from "node:crypto";
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

/** PKCS#8 DER prefix of an Ed25519 private key (RFC 8410), before its 32-byte seed. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** ECDH outputs kept (one per peer key of this boot); beyond this the cache starts over. */
const MAX_SHARED_SECRETS = 1024;

export class PeerKeyError extends Error {
  override name = "PeerKeyError";
}

export class PeerKeys implements ChannelPublicKeys {
  readonly x25519Public: Uint8Array;
  readonly ed25519Public: Uint8Array;
  #x25519Secret: Uint8Array | null;
  #ed25519Secret: Uint8Array | null;
  #signingKey: KeyObject | null;
  /** Peer X25519 public key (hex) -> X25519 output with it; wiped by destroy(). */
  readonly #shared = new Map<string, Uint8Array>();

  /**
   * Fresh random keys; an enclave makes one PeerKeys per boot. `fixed` secrets
   * exist only for the pinned test vectors (test/vectors/peer-envelope.json).
   */
  constructor(fixed?: { x25519Secret: Uint8Array; ed25519Secret: Uint8Array }) {
    this.#x25519Secret = fixed ? fixed.x25519Secret.slice() : x25519.utils.randomSecretKey();
    this.#ed25519Secret = fixed ? fixed.ed25519Secret.slice() : ed25519.utils.randomSecretKey();
    this.x25519Public = x25519.getPublicKey(this.#x25519Secret);
    this.ed25519Public = ed25519.getPublicKey(this.#ed25519Secret);
    const der = new Uint8Array(PKCS8_PREFIX.length + this.#ed25519Secret.length);
    der.set(PKCS8_PREFIX, 0);
    der.set(this.#ed25519Secret, PKCS8_PREFIX.length);
    try {
      this.#signingKey = createPrivateKey({
        key: Buffer.from(der.buffer, der.byteOffset, der.length),
        format: "der",
        type: "pkcs8",
      });
    } finally {
      der.fill(0);
    }
  }

  /** What goes into the attestation document's user_data. */
  channelKeyBinding(): Uint8Array {
    return encodeChannelKeyBinding(this);
  }

  bindingHash(): Uint8Array {
    return channelKeyBindingHash(this);
  }

  /** Raw X25519 output with `peerPublic`, a copy the caller derives a key from and wipes. */
  sharedSecret(peerPublic: Uint8Array): Uint8Array {
    const secret = this.secret(this.#x25519Secret);
    if (!(peerPublic instanceof Uint8Array) || peerPublic.length !== 32)
      throw new PeerKeyError("peer X25519 public key must be 32 bytes");
    const id = Buffer.from(peerPublic.buffer, peerPublic.byteOffset, peerPublic.length).toString(
      "hex",
    );
    let shared = this.#shared.get(id);
    if (!shared) {
      try {
        shared = x25519.getSharedSecret(secret, peerPublic);
      } catch {
        // noble refuses low-order points before running the ladder (refusals are not cached: rare, cheap).
        throw new PeerKeyError("peer X25519 public key is invalid or of low order");
      }
      if (this.#shared.size >= MAX_SHARED_SECRETS) this.wipeShared();
      this.#shared.set(id, shared);
    }
    return shared.slice();
  }

  sign(message: Uint8Array): Uint8Array {
    this.secret(this.#ed25519Secret);
    return new Uint8Array(nativeSign(null, message, this.#signingKey!));
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
    this.#signingKey = null;
    this.wipeShared();
  }

  private wipeShared(): void {
    for (const v of this.#shared.values()) v.fill(0);
    this.#shared.clear();
  }

  private secret(k: Uint8Array | null): Uint8Array {
    if (!k) throw new PeerKeyError("channel keys were destroyed");
    return k;
  }
}
