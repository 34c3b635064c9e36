/**
 * The repaired parties an enclave holds between a repair's phase 4
 * (lifecycle-repair.ts RepairSession) and the start of the complete refresh
 * that must follow at once: the hollow share cannot be sealed (it has no
 * signing state), so it lives only here, in memory, and is lost with the
 * enclave; a repair that is not completed in time is simply run again.
 *
 * One per wallet: a newer repair of the same wallet frees the older one.
 * Bounded (MAX_REPAIRED_PARTIES, each a few hundred bytes of wasm memory)
 * and short-lived (REPAIRED_PARTY_TTL_MS); `take` hands a party over only to
 * the refresh that names the repair session it came from, and only once.
 */
import { sameSession, SESSION_ID_LEN } from "../shared/wire/protocol-message.ts";
import { EnclaveError } from "./errors.ts";
import type { RepairedParty } from "./lifecycle-repair.ts";

export const MAX_REPAIRED_PARTIES = 16;
/** As long as an approval may live: the refresh follows within seconds when nothing fails. */
export const REPAIRED_PARTY_TTL_MS = 10 * 60 * 1000;

interface Held {
  party: RepairedParty;
  repairSessionId: Uint8Array;
  until: number;
}

export class RepairedParties {
  private readonly held = new Map<string, Held>();
  private readonly capacity: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(o: { capacity?: number; ttlMs?: number; now?: () => number } = {}) {
    this.capacity = o.capacity ?? MAX_REPAIRED_PARTIES;
    this.ttlMs = o.ttlMs ?? REPAIRED_PARTY_TTL_MS;
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    this.sweep();
    return this.held.size;
  }

  /** Keeps `party` for the refresh; takes ownership (frees it when refused, replaced or expired). */
  put(walletId: string, repairSessionId: Uint8Array, party: RepairedParty): void {
    this.sweep();
    if (repairSessionId.length !== SESSION_ID_LEN) {
      party.hollow.free();
      throw new EnclaveError("bad_request", "a repair session id is 32 bytes");
    }
    if (!this.held.has(walletId) && this.held.size >= this.capacity) {
      party.hollow.free();
      throw new EnclaveError(
        "capacity_exceeded",
        `this enclave already holds ${this.capacity} repaired parties awaiting their refresh`,
      );
    }
    this.drop(walletId);
    this.held.set(walletId, {
      party,
      repairSessionId: repairSessionId.slice(),
      until: this.now() + this.ttlMs,
    });
  }

  /** The party repaired by `repairSessionId`, handed over once; share_not_loaded when there is none (or it expired). */
  take(walletId: string, repairSessionId: Uint8Array): RepairedParty {
    const party = this.peek(walletId, repairSessionId);
    this.held.delete(walletId);
    return party;
  }

  /** The party `take` would hand over, left in place (its policy checks the refresh's approvals first). */
  peek(walletId: string, repairSessionId: Uint8Array): RepairedParty {
    this.sweep();
    const h = this.held.get(walletId);
    if (!h || !sameSession(h.repairSessionId, repairSessionId))
      throw new EnclaveError(
        "share_not_loaded",
        `no repaired party of wallet ${walletId} from that repair is held here: run the repair again`,
      );
    return h.party;
  }

  /** Frees what is held for the wallet (a retirement, a newer repair). */
  drop(walletId: string): void {
    this.held.get(walletId)?.party.hollow.free();
    this.held.delete(walletId);
  }

  /** Frees everything held (shutdown). */
  clear(): void {
    for (const walletId of [...this.held.keys()]) this.drop(walletId);
  }

  private sweep(): void {
    const now = this.now();
    for (const [walletId, h] of this.held) if (now >= h.until) this.drop(walletId);
  }
}
