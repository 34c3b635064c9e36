/**
 * The key import envelopes this enclave has opened (lifecycle-import.ts), so
 * one envelope is dealt at most once per boot while its approval is valid:
 * each dealing is an independent sharing of the client's key, and a second
 * one (a coordinator that reruns an import under another approval of the same
 * envelope, or after a session it aborted) would leave a sharing outside every
 * later refresh, policy change and retirement of the wallet.
 *
 * Keyed by SHA-256 of the envelope bytes. An envelope is held from the moment
 * its start is about to open it; if that start fails before the dealt shares
 * leave the enclave (its phase-1 messages), nothing was dealt and it is
 * forgotten (`release`), so a start refused for room can be retried. Once
 * dealt (`deal`) it is refused until the approval that opened it expires
 * (approvals last at most MAX_VALIDITY_SECONDS); after that the approval check
 * refuses the start anyway, and the same envelope needs fresh approvals.
 * Bounded: when full of unexpired envelopes a new import is refused
 * (`replay_cache_full`) rather than an envelope forgotten early.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../shared/hex.ts";
import { EnclaveError } from "./errors.ts";

/** Imports are rare (one per imported wallet): far above any real rate over one approval hour. */
export const MAX_OPENED_ENVELOPES = 4_096;

/** One envelope held by the import start that opens it. */
export interface EnvelopeClaim {
  /** Its shares left this enclave: refuse the envelope until the approval expires. */
  deal(): void;
  /** The start ended; forget the envelope unless it was dealt. Idempotent. */
  release(): void;
}

export class OpenedEnvelopes {
  /** By envelope hash: unix seconds it is forgotten at, and whether it was dealt. */
  private readonly held = new Map<string, { expiresAt: number; dealt: boolean }>();

  constructor(
    readonly capacity: number = MAX_OPENED_ENVELOPES,
    private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** Holds `envelope` (its approval valid until `expiresAt`, unix seconds); refuses one held already. */
  claim(envelope: Uint8Array, expiresAt: number): EnvelopeClaim {
    const key = toHex(sha256(envelope));
    const now = this.nowSeconds();
    const known = this.held.get(key);
    if (known !== undefined && known.expiresAt > now) {
      known.expiresAt = Math.max(known.expiresAt, expiresAt);
      throw new EnclaveError(
        "approval_replayed",
        known.dealt
          ? "this key import envelope was already opened and dealt in this enclave"
          : "this key import envelope is being opened in this enclave already",
        null,
        "replayed",
      );
    }
    this.held.delete(key);
    if (this.held.size >= this.capacity)
      for (const [k, e] of this.held) if (e.expiresAt <= now) this.held.delete(k);
    if (this.held.size >= this.capacity)
      throw new EnclaveError(
        "replay_cache_full",
        `this enclave remembers its maximum of ${this.capacity} opened import envelopes until their approvals expire; retry later`,
      );
    const entry = { expiresAt, dealt: false };
    this.held.set(key, entry);
    return {
      deal: () => {
        entry.dealt = true;
      },
      release: () => {
        if (!entry.dealt && this.held.get(key) === entry) this.held.delete(key);
      },
    };
  }
}
