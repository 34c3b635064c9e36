/**
 * End-to-end protection of DKLs23 protocol messages between enclaves. Hosts
 * and the broker relay these bytes but can neither read a point-to-point
 * message nor forge, redirect, replay or splice any message into another
 * session: every such attempt fails here and closes the session.
 *
 * Byte layout and bounds: src/shared/wire/peer-envelope-header.ts (the clear
 * 37-byte header, then nonce | ciphertext | tag for point to point, or
 * body | signature for a broadcast). This file holds the cryptography:
 *
 *   point-to-point (to != 0), AES-256-GCM, associated data = the clear header:
 *   key = HKDF-SHA256(ikm = X25519(mine, peer's), salt = session id,
 *         info = "tss-p2p-v1" | from | to | H(binding of lower index) | H(binding of higher index))
 *
 *   broadcast (to == 0), Ed25519 over  len | "tss-bcast-v1" | header | body
 *
 * Opening rebuilds the core message as version 1 | header bytes 1..37 | body,
 * so the header the core checks is exactly the one that was authenticated.
 *
 * AEAD: AES-256-GCM from node:crypto, the primitive seal.ts already uses, so
 * no new dependency enters the measured enclave image, and it runs in
 * constant time in native code (AES-NI) on 140 KiB DKG messages.
 *
 * Nonce: random, carried in the message. Keys are unique per (session, sender,
 * recipient) and each such pair sends one message per phase, so a phase
 * counter would do, but only while nobody ever re-runs a session id; a random
 * 96-bit nonce keeps GCM safe even then (at a few messages per key the
 * collision chance is negligible), for 12 bytes per message.
 *
 * Replays: a PeerSession accepts each (phase, from, to) once. The DKLs23 core
 * independently rejects a second message of a kind from the same sender in a
 * phase; this layer stops replays before anything reaches the core, and also
 * across the core's phase calls.
 *
 * Broadcasts are signed, not echoed: a signature proves origin to each
 * recipient but does not prove all recipients got the same bytes. Peers run
 * attested images, so equivocation needs a compromised enclave, outside what
 * this layer defends.
 */
import { channelSignatureValid } from "./channel-signature.ts";
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import {
  BROADCAST,
  HEADER_LEN,
  MAX_PARTIES,
  MessageFormatError,
  SESSION_ID_LEN,
  WIRE_VERSION,
  parseMessage,
  sameSession,
} from "../shared/wire/protocol-message.ts";
import {
  NONCE_BYTES,
  PROTECTED_WIRE_VERSION,
  PeerEnvelopeFormatError,
  TAG_BYTES,
  encodeBroadcast,
  encodePointToPoint,
  readUnverifiedBroadcast,
  readUnverifiedHeader,
  readUnverifiedPointToPoint,
  type BroadcastParts,
  type PeerEnvelopeHeader,
  type PointToPointParts,
} from "../shared/wire/peer-envelope-header.ts";
import { bytesEqual } from "../attestation/verifier.ts";
import type { PeerIdentity } from "./peer-attestation.ts";
import { PeerKeyError, PeerKeys, channelKeyBindingHash } from "./peer-keys.ts";

// The layout's names, for callers that imported them from here before the layout moved to src/shared/wire.
export {
  BROADCAST_OVERHEAD,
  MAX_SEALED_LEN,
  NONCE_BYTES,
  P2P_OVERHEAD,
  PROTECTED_WIRE_VERSION,
  SIGNATURE_BYTES,
  TAG_BYTES,
} from "../shared/wire/peer-envelope-header.ts";

const P2P_INFO_LABEL = new TextEncoder().encode("tss-p2p-v1");
const BROADCAST_LABEL = new TextEncoder().encode("tss-bcast-v1");
const KEY_BYTES = 32;
const BINDING_HASH_BYTES = 32;

export type PeerMessageErrorCode =
  | "truncated"
  | "too_large"
  | "wrong_version"
  | "bad_header"
  | "session_mismatch"
  | "phase_mismatch"
  | "not_for_me"
  | "unknown_sender"
  | "unknown_recipient"
  | "wrong_sender"
  | "duplicate_outgoing"
  | "replay"
  | "bad_peer_key"
  | "bad_tag"
  | "bad_signature"
  | "session_closed";

/** Every refusal of this layer. The claimed sender is not named as culprit: the header is the host's to forge. */
export class PeerMessageError extends Error {
  override name = "PeerMessageError";
  constructor(
    readonly code: PeerMessageErrorCode,
    message: string,
    /** The admitted peer whose message was refused: its claimed sender, which the coordinator checks against the relaying node. */
    readonly party?: number,
  ) {
    super(message);
  }
}

/** The layout's refusals, under this layer's error (same codes). */
function unverified<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof PeerEnvelopeFormatError) throw new PeerMessageError(e.code, e.message);
    throw e;
  }
}

export interface PeerSessionOptions {
  sessionId: Uint8Array;
  /** This enclave's party index in the session. */
  me: number;
  /** This enclave's channel keys (owned by the enclave for the boot, not by the session). */
  keys: PeerKeys;
  /** The other participants, admitted with verifyPeer. An entry for `me` must carry my own keys. */
  peers: ReadonlyMap<number, PeerIdentity>;
}

/**
 * Seals what this party's core produces and opens what the others sent, for
 * one ceremony session. Fail closed: after any error the session refuses
 * everything, as the ceremony it protects must be aborted.
 *
 * Secrets: `seal`'s input and `open`'s output are core messages, which may
 * carry secrets; the caller owns and wipes them. Derived keys and ECDH outputs
 * are wiped here (node:crypto's internal copy of a key goes with its cipher).
 */
export class PeerSession {
  readonly sessionId: Uint8Array;
  readonly me: number;
  private readonly keys: PeerKeys;
  private readonly peers = new Map<number, PeerIdentity>();
  private readonly bindingHashes = new Map<number, Uint8Array>();
  private readonly accepted = new Set<number>();
  private readonly sent = new Set<number>();
  private isClosed = false;

  constructor(opts: PeerSessionOptions) {
    if (!(opts.sessionId instanceof Uint8Array) || opts.sessionId.length !== SESSION_ID_LEN)
      throw new TypeError(`sessionId must be ${SESSION_ID_LEN} bytes`);
    if (!isPartyIndex(opts.me))
      throw new TypeError(`me must be a party index in 1..${MAX_PARTIES}`);
    if (!(opts.keys instanceof PeerKeys))
      throw new TypeError("keys must be this enclave's PeerKeys");
    if (!(opts.peers instanceof Map))
      throw new TypeError("peers must be a Map of party index to PeerIdentity");
    this.sessionId = opts.sessionId.slice();
    this.me = opts.me;
    this.keys = opts.keys;
    this.bindingHashes.set(opts.me, opts.keys.bindingHash());
    for (const [index, peer] of opts.peers) {
      if (!isPartyIndex(index))
        throw new TypeError(`peer index ${index} outside 1..${MAX_PARTIES}`);
      if (index === opts.me) {
        if (
          !bytesEqual(peer.x25519Public, opts.keys.x25519Public) ||
          !bytesEqual(peer.ed25519Public, opts.keys.ed25519Public)
        ) {
          throw new TypeError(`peers[${index}] is this party but carries other channel keys`);
        }
        continue;
      }
      const hash = channelKeyBindingHash(peer);
      // One enclave must not hold two seats (or mine): each index is a distinct attested identity.
      if ([...this.bindingHashes.values()].some((h) => bytesEqual(h, hash)))
        throw new TypeError(`peers[${index}] repeats another party's channel keys`);
      this.peers.set(index, peer);
      this.bindingHashes.set(index, hash);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Each admitted peer's attested Ed25519 channel key, by party index (share-state.ts checks statements with them). */
  peerSigningKeys(): Map<number, Uint8Array> {
    return new Map([...this.peers].map(([index, p]) => [index, p.ed25519Public]));
  }

  close(): void {
    this.isClosed = true;
    this.accepted.clear();
    this.sent.clear();
  }

  /** Protects one message produced by this party's core in this session. */
  seal(message: Uint8Array): Uint8Array {
    return this.failClosed(() => {
      let m;
      try {
        m = parseMessage(message);
      } catch (e) {
        if (e instanceof MessageFormatError)
          throw new PeerMessageError("bad_header", `cannot seal: ${e.message}`);
        throw e;
      }
      if (m.from !== this.me)
        throw new PeerMessageError(
          "wrong_sender",
          `cannot seal a message from party ${m.from} as party ${this.me}`,
        );
      if (!sameSession(m.sessionId, this.sessionId))
        throw new PeerMessageError("session_mismatch", "cannot seal a message of another session");
      if (m.to !== BROADCAST && !this.peers.has(m.to))
        throw new PeerMessageError(
          "unknown_recipient",
          `party ${m.to} is not an admitted peer of this session`,
        );
      const slot = replaySlot(m.phase, m.from, m.to);
      // The receiver would refuse the second one anyway; refusing here keeps a core bug from looking like an attack.
      if (this.sent.has(slot))
        throw new PeerMessageError(
          "duplicate_outgoing",
          `phase ${m.phase} already sent a message to party ${m.to}`,
        );
      const header = message.slice(0, HEADER_LEN);
      header[0] = PROTECTED_WIRE_VERSION;
      const body = message.subarray(HEADER_LEN);
      const sealed =
        m.to === BROADCAST ? this.sign(header, body) : this.encrypt(header, body, m.to);
      this.sent.add(slot);
      return sealed;
    });
  }

  /**
   * Authenticates (and for point-to-point, decrypts) a message addressed to
   * this party in this session, and returns the core message. `expectedPhase`,
   * when given, is the phase that must have produced it.
   * A refusal names the admitted peer the message claims to be from in its
   * `party` field, so blame reaches the host as a field, not in the text.
   */
  open(sealed: Uint8Array, expectedPhase?: number): Uint8Array {
    try {
      return this.openUnblamed(sealed, expectedPhase);
    } catch (e) {
      if (!(e instanceof PeerMessageError) || e.party !== undefined) throw e;
      let from: number | undefined;
      try {
        from = readUnverifiedHeader(sealed).from;
      } catch {
        throw e; // no readable header: nobody to name
      }
      throw this.peers.has(from) ? new PeerMessageError(e.code, e.message, from) : e;
    }
  }

  private openUnblamed(sealed: Uint8Array, expectedPhase?: number): Uint8Array {
    return this.failClosed(() => {
      const h: PeerEnvelopeHeader = unverified(() => readUnverifiedHeader(sealed));
      // The receiving side of seal()'s checks: each refusal names its own cause, so they stay separate.
      if (!sameSession(h.sessionId, this.sessionId))
        throw new PeerMessageError(
          "session_mismatch",
          `message from party ${h.from} belongs to another session`,
        );
      if (expectedPhase !== undefined && h.phase !== expectedPhase) {
        throw new PeerMessageError(
          "phase_mismatch",
          `message from party ${h.from} is from phase ${h.phase}, expected ${expectedPhase}`,
        );
      }
      if (h.to !== BROADCAST && h.to !== this.me)
        throw new PeerMessageError(
          "not_for_me",
          `message from party ${h.from} is addressed to party ${h.to}`,
        );
      const peer = this.peers.get(h.from);
      if (!peer)
        throw new PeerMessageError(
          "unknown_sender",
          `party ${h.from} is not an admitted peer of this session`,
        );
      const slot = replaySlot(h.phase, h.from, h.to);
      if (this.accepted.has(slot))
        throw new PeerMessageError(
          "replay",
          `phase ${h.phase} message from party ${h.from} was already accepted`,
        );
      const header = sealed.subarray(0, HEADER_LEN);
      const body =
        h.to === BROADCAST
          ? this.verify(
              unverified(() => readUnverifiedBroadcast(sealed)),
              peer,
              h.from,
            )
          : this.decrypt(
              unverified(() => readUnverifiedPointToPoint(sealed)),
              h.from,
            );
      this.accepted.add(slot);
      const out = new Uint8Array(HEADER_LEN + body.length);
      out.set(header, 0);
      out[0] = WIRE_VERSION;
      out.set(body, HEADER_LEN);
      if (h.to !== BROADCAST) body.fill(0); // the decrypted copy; `out` is the caller's
      return out;
    });
  }

  private encrypt(header: Uint8Array, body: Uint8Array, to: number): Uint8Array {
    const key = this.p2pKey(this.me, to);
    try {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(header);
      const ciphertext = cipher.update(body);
      cipher.final(); // GCM is a stream mode: final() adds no bytes
      return encodePointToPoint({ header, nonce, ciphertext, tag: cipher.getAuthTag() });
    } finally {
      key.fill(0);
    }
  }

  private decrypt({ header, nonce, ciphertext, tag }: PointToPointParts, from: number): Uint8Array {
    const key = this.p2pKey(from, this.me);
    let plain: Uint8Array | undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      plain = decipher.update(ciphertext);
      decipher.final();
      return plain;
    } catch {
      // update() hands out plaintext before the tag is checked: none of it may survive a failure.
      plain?.fill(0);
      throw new PeerMessageError(
        "bad_tag",
        `message from party ${from} does not authenticate (tampered, misdirected or under another key)`,
      );
    } finally {
      key.fill(0);
    }
  }

  private sign(header: Uint8Array, body: Uint8Array): Uint8Array {
    const signed = new Uint8Array(HEADER_LEN + body.length);
    signed.set(header, 0);
    signed.set(body, HEADER_LEN);
    return encodeBroadcast({
      header,
      body,
      signature: this.keys.sign(broadcastSigningInput(signed)),
    });
  }

  private verify(
    { signed, body, signature }: BroadcastParts,
    peer: PeerIdentity,
    from: number,
  ): Uint8Array {
    if (!channelSignatureValid(signature, broadcastSigningInput(signed), peer.ed25519Public))
      throw new PeerMessageError(
        "bad_signature",
        `broadcast from party ${from} does not carry that party's valid signature`,
      );
    return body;
  }

  /** The directional key for messages from `from` to `to` in this session. */
  private p2pKey(from: number, to: number): Uint8Array {
    const peerIndex = from === this.me ? to : from;
    const peer = this.peers.get(peerIndex)!;
    let shared: Uint8Array;
    try {
      shared = this.keys.sharedSecret(peer.x25519Public);
    } catch (e) {
      if (e instanceof PeerKeyError)
        throw new PeerMessageError("bad_peer_key", `party ${peerIndex}: ${e.message}`);
      throw e;
    }
    try {
      const [lo, hi] = from < to ? [from, to] : [to, from];
      const at = P2P_INFO_LABEL.length;
      const info = new Uint8Array(at + 2 + 2 * BINDING_HASH_BYTES);
      info.set(P2P_INFO_LABEL, 0);
      info[at] = from;
      info[at + 1] = to;
      info.set(this.bindingHashes.get(lo)!, at + 2);
      info.set(this.bindingHashes.get(hi)!, at + 2 + BINDING_HASH_BYTES);
      // RFC 5869 HKDF-SHA256 natively (the same bytes as @noble/hashes' hkdf, ~50x faster; frozen vectors).
      return new Uint8Array(hkdfSync("sha256", shared, this.sessionId, info, KEY_BYTES));
    } finally {
      shared.fill(0);
    }
  }

  private failClosed<T>(f: () => T): T {
    if (this.isClosed)
      throw new PeerMessageError(
        "session_closed",
        "this peer session was closed after an error or by its owner",
      );
    try {
      return f();
    } catch (e) {
      this.close();
      throw e;
    }
  }
}

function broadcastSigningInput(headerAndBody: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + BROADCAST_LABEL.length + headerAndBody.length);
  out[0] = BROADCAST_LABEL.length;
  out.set(BROADCAST_LABEL, 1);
  out.set(headerAndBody, 1 + BROADCAST_LABEL.length);
  return out;
}

function replaySlot(phase: number, from: number, to: number): number {
  return (phase << 16) | (from << 8) | to;
}

function isPartyIndex(i: unknown): i is number {
  return typeof i === "number" && Number.isInteger(i) && i >= 1 && i <= MAX_PARTIES;
}
