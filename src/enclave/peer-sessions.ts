/**
 * This enclave towards the other enclaves of a ceremony: its per-boot channel
 * keys (whose binding goes into every attestation document it issues), the
 * verified peer documents, and the end-to-end PeerSession each ceremony uses.
 */
import { createHash } from "node:crypto";
import { decodeAttestationDocument } from "../attestation/cose.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import { EnclaveError } from "./errors.ts";
import { verifyPeer, type PeerIdentity } from "./peer-attestation.ts";
import { PeerSession } from "./peer-envelope.ts";
import { openImportedKey } from "./lifecycle-import.ts";
import { PeerKeys } from "./peer-keys.ts";
import { needInt } from "./request-checks.ts";

export interface PeerPolicy {
  /** Roots that peers' attestation documents must chain to. */
  roots: TrustedRoot[];
  /** Accept peers attested by a development root (simulated NSM). */
  allowDevelopment?: boolean;
  /** Images whose enclaves may be peers. */
  allowedPcr0: Uint8Array[];
  /** Oldest peer attestation document accepted at ceremony start. */
  documentMaxAgeMs: number;
}

/** A ceremony has at most 16 parties: this one and 15 peers. */
const MAX_PEERS = 15;
/** Cached verified documents; beyond this the cache starts over. */
const MAX_CACHED_PEERS = 1024;

export class PeerSessions {
  /** Per-boot channel keys; their binding goes into every attestation document. */
  private readonly keys = new PeerKeys();
  /**
   * Peer documents already verified, by SHA-256 of the document, until they
   * age out: a node reuses its document across sessions, and re-verifying two
   * P-384 chains per peer per signature would dominate signing time.
   */
  private readonly verified = new Map<string, { identity: PeerIdentity; until: number }>();

  constructor(private readonly policy: PeerPolicy) {}

  /** The user_data of this enclave's attestation documents. */
  channelKeyBinding(): Uint8Array {
    return this.keys.channelKeyBinding();
  }

  /** Verifies every other participant's document and opens an end-to-end session with them. */
  open(sessionId: Uint8Array, me: number, docs: unknown, parties: unknown): PeerSession {
    if (
      !Array.isArray(docs) ||
      !Array.isArray(parties) ||
      docs.length !== parties.length ||
      docs.length > MAX_PEERS
    ) {
      throw new EnclaveError(
        "bad_request",
        `peerDocuments and peerParties must be lists of equal length (at most ${MAX_PEERS})`,
      );
    }
    const peers = new Map<number, PeerIdentity>();
    for (let k = 0; k < docs.length; k++) {
      const party = needInt(parties[k], "peer party index", 1, 16);
      if (party === me || peers.has(party))
        throw new EnclaveError(
          "bad_request",
          `peer party ${party} is duplicated or this enclave's own`,
        );
      try {
        peers.set(party, this.verifiedPeer(docs[k] as Uint8Array));
      } catch (e) {
        throw new EnclaveError(
          "ceremony_failed",
          `attestation of party ${party} refused: ${(e as Error).message}`,
          party,
        );
      }
    }
    return new PeerSession({ sessionId, me, keys: this.keys, peers });
  }

  /**
   * One participant's document verified as at session start (cached): a repair's helpers read
   * the target's node identity (PCR4) from it, which the repair approval names.
   */
  peerIdentity(doc: unknown): PeerIdentity {
    return this.verifiedPeer(doc as Uint8Array);
  }

  /** Ed25519 with the attested channel key, for the enclave's own domain-labelled statements (wallet-statements.ts). */
  signWithChannelKey(message: Uint8Array): Uint8Array {
    return this.keys.sign(message);
  }

  /** Opens a key import envelope sealed to this boot's attested X25519 channel key (lifecycle-import.ts). */
  openImportedKey(
    envelope: Uint8Array,
    context: Parameters<typeof openImportedKey>[2],
  ): ReturnType<typeof openImportedKey> {
    return openImportedKey(this.keys, envelope, context);
  }

  /** This enclave's own attested Ed25519 channel key (its statements are signed with it). */
  ownSigningKey(): Uint8Array {
    return this.keys.ed25519Public;
  }

  /**
   * A document verified as of its own timestamp, for evidence kept after the
   * ceremony (a commit certificate's documents are minutes or hours old; a
   * Nitro leaf certificate lasts hours): chain valid then, not from the future,
   * image allowed, a channel key binding. No freshness limit.
   */
  attestedAtIssue(doc: unknown): PeerIdentity {
    if (!(doc instanceof Uint8Array))
      throw new EnclaveError("bad_request", "attestation document must be bytes");
    const now = Date.now();
    return verifyPeer(doc, {
      roots: this.policy.roots,
      allowDevelopment: this.policy.allowDevelopment,
      now: new Date(Math.min(now, documentTimestamp(doc, now))),
      allowedPcr0: this.policy.allowedPcr0,
    });
  }

  /** Wipes the channel keys (shutdown). */
  destroy(): void {
    this.keys.destroy();
  }

  private verifiedPeer(doc: Uint8Array): PeerIdentity {
    if (!(doc instanceof Uint8Array))
      throw new EnclaveError("bad_request", "peer document must be bytes");
    const key = createHash("sha256").update(doc).digest("hex");
    const now = Date.now();
    const hit = this.verified.get(key);
    if (hit && hit.until > now) return hit.identity;
    const maxAgeMs = this.policy.documentMaxAgeMs;
    const identity = verifyPeer(doc, {
      roots: this.policy.roots,
      allowDevelopment: this.policy.allowDevelopment,
      now: new Date(now),
      allowedPcr0: this.policy.allowedPcr0,
      maxAgeMs,
    });
    if (this.verified.size > MAX_CACHED_PEERS) this.verified.clear();
    // Trusted until the document would be refused as stale (its leaf lasts hours longer).
    this.verified.set(key, {
      identity,
      until: now + Math.max(0, maxAgeMs - (now - documentTimestamp(doc, now))),
    });
    return identity;
  }
}

/** The document's own timestamp (ms); it verified just before, so it parses. */
function documentTimestamp(doc: Uint8Array, fallback: number): number {
  try {
    return decodeAttestationDocument(doc).document.timestamp;
  } catch {
    return fallback;
  }
}
