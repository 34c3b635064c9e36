/**
 * The loaded key shares, bounded by a memory budget in bytes: least recently
 * used first out, and every share that leaves is freed (zeroized inside the
 * wasm instance). A wallet that is not cached is loaded again on demand
 * through the attested KMS path, so eviction changes latency, never results.
 *
 * Why bytes and not a count: a share's size depends on (t, n) - 52,660 bytes
 * serialised for 2-of-2, 105,031 for 2-of-3, 209,773 for 3-of-5 and 5-of-5 -
 * and the enclave's limit is memory: the wasm32 instance can never exceed
 * 4 GiB, and a Nitro enclave is given far less. A share is charged its
 * serialised length (KeyShare.byteLength); loading 1,000 copies grew wasm
 * memory by 0.981-0.988 of that per share for every (t, n) above, so the
 * charge bounds what the cached shares really occupy.
 *
 * The budget covers cached shares only. Outside it, and what
 * MAX_SHARE_BUDGET_BYTES leaves room for under wasm32's 4 GiB: each open
 * signing session (24-43 KB measured, plus one whole share more when it
 * signs under a BIP-32 path, since the child share is a copy), a share being
 * unsealed (its bytes and the parsed share, briefly both), DKG/refresh
 * results waiting to be sealed, and allocator fragmentation. Wasm memory only
 * grows, so what counts is the peak: the budget keeps it clear of the
 * address space, and a load that cannot fit is refused with an error rather
 * than left to make the allocator fail (a failed allocation aborts, i.e.
 * traps, the wasm instance).
 *
 * Pinning: a ceremony holds a pin on the share it uses from its start to its
 * end (finish, failure, abort, expiry). A pinned share is never evicted; if
 * it is replaced (a reload, a refresh's new generation) while pinned, it stays
 * charged until its last pin is released and is freed then. The session
 * inside wasm keeps its own reference to the share, so freeing a pinned one
 * early would not release its memory anyway, only make the accounting lie.
 *
 * Error code (an EnclaveError, so it reaches the host as it is):
 *
 * | code              | when                                                                 |
 * |-------------------|----------------------------------------------------------------------|
 * | capacity_exceeded | a share does not fit even after every unpinned share is evicted (it  |
 * |                   | is larger than the budget, or pinned shares hold the rest); nothing  |
 * |                   | was evicted for it, and the refused share was freed                  |
 *
 * Hits and misses count the lookups ceremonies make (pin): a hit found the
 * wallet's share cached, a miss did not (the enclave answers
 * share_not_loaded; the host then reloads). Loads themselves are not lookups.
 */
import { EnclaveError } from "./errors.ts";

/** 256 MiB: about 1,270 3-of-5 or 5,000 2-of-2 shares; fits a 512 MiB enclave beside the runtime. */
export const DEFAULT_SHARE_BUDGET_BYTES = 256 * 1024 * 1024;

/** Half of wasm32's 4 GiB: the rest is for sessions, unsealing, pending shares and fragmentation. */
export const MAX_SHARE_BUDGET_BYTES = 2 * 1024 * 1024 * 1024;

/** What the cache needs of a share: its charge, and a way to wipe it. KeyShare is one. */
export interface CacheableShare {
  readonly byteLength: number;
  free(): void;
}

/** What the enclave's HEALTH reply reports (see ShareTable.cacheStats). */
export interface ShareCacheStats {
  budgetBytes: number;
  /** Charged bytes of every share held: cached ones and replaced ones still pinned. */
  usedBytes: number;
  /** Wallets with a cached share. */
  entries: number;
  /** Shares an open ceremony holds (cached or replaced). */
  pinned: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Loads refused with capacity_exceeded. */
  refused: number;
}

/** A ceremony's hold on a share; release it exactly when the ceremony ends (extra calls do nothing). */
export interface SharePin<E> {
  readonly entry: E;
  release(): void;
}

interface Slot<E> {
  entry: E;
  cost: number;
  pins: number;
  /** Still the wallet's cached share (false once replaced while pinned). */
  cached: boolean;
  freed: boolean;
}

export class ShareCache<E extends { share: CacheableShare }> {
  readonly budgetBytes: number;
  /** Map order is recency: the first entry is the least recently used. */
  private readonly slots = new Map<string, Slot<E>>();
  /** Replaced while pinned: charged until their last pin is released. */
  private readonly retiring = new Set<Slot<E>>();
  private used = 0;
  /** Charged bytes of pinned slots, cached or retiring: what eviction cannot free. */
  private pinnedBytes = 0;
  private pinnedCount = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private refused = 0;

  constructor(
    budgetBytes: number = DEFAULT_SHARE_BUDGET_BYTES,
    /** Told which wallet's share was evicted (wallet id only: never the share). */
    private readonly onEvict: (walletId: string) => void = () => {},
  ) {
    if (
      !Number.isSafeInteger(budgetBytes) ||
      budgetBytes < 1 ||
      budgetBytes > MAX_SHARE_BUDGET_BYTES
    )
      throw new RangeError(
        `share cache budget must be an integer from 1 to ${MAX_SHARE_BUDGET_BYTES} bytes, got ${budgetBytes}`,
      );
    this.budgetBytes = budgetBytes;
  }

  /** Wallets with a cached share. */
  get size(): number {
    return this.slots.size;
  }

  /** The wallet's cached entry; counts nothing and does not change recency. */
  peek(walletId: string): E | undefined {
    return this.slots.get(walletId)?.entry;
  }

  /**
   * A ceremony's lookup: counts a hit or a miss, makes the share the most
   * recently used, and pins it until `release()`. Undefined when not cached.
   */
  pin(walletId: string): SharePin<E> | undefined {
    const slot = this.slots.get(walletId);
    if (!slot) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.touch(walletId, slot);
    if (slot.pins++ === 0) {
      this.pinnedBytes += slot.cost;
      this.pinnedCount += 1;
    }
    let released = false;
    return {
      entry: slot.entry,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(slot);
      },
    };
  }

  /**
   * Caches `entry` as the wallet's share, the most recently used, evicting
   * (and freeing) least recently used unpinned shares until it fits. The
   * cache owns the share from here on: the one it replaces is freed (at once,
   * or when its last pin is released), and a refused one is freed too.
   * Throws capacity_exceeded, evicting nothing, when it cannot fit.
   */
  put(walletId: string, entry: E): void {
    const old = this.slots.get(walletId);
    if (old && old.entry.share === entry.share) {
      old.entry = entry;
      this.touch(walletId, old);
      return;
    }
    let cost: number;
    try {
      cost = entry.share.byteLength;
      // Evicting every unpinned share (the replaced one too, if unpinned) leaves the pinned ones.
      if (this.pinnedBytes + cost > this.budgetBytes) {
        this.refused += 1;
        throw new EnclaveError(
          "capacity_exceeded",
          `wallet ${walletId}'s share (${cost} bytes) does not fit the enclave's share budget of ` +
            `${this.budgetBytes} bytes, ${this.pinnedBytes} of which open ceremonies hold`,
        );
      }
    } catch (e) {
      entry.share.free();
      throw e;
    }
    if (old) this.retire(walletId, old);
    for (const [id, slot] of this.slots) {
      if (this.used + cost <= this.budgetBytes) break;
      if (slot.pins > 0) continue;
      this.slots.delete(id);
      this.release(slot);
      this.evictions += 1;
      this.onEvict(id);
    }
    this.slots.set(walletId, { entry, cost, pins: 0, cached: true, freed: false });
    this.used += cost;
  }

  stats(): ShareCacheStats {
    return {
      budgetBytes: this.budgetBytes,
      usedBytes: this.used,
      entries: this.slots.size,
      pinned: this.pinnedCount,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      refused: this.refused,
    };
  }

  /** Drops the wallet's share (retirement): freed now, or when the last ceremony holding it ends. */
  drop(walletId: string): boolean {
    const slot = this.slots.get(walletId);
    if (!slot) return false;
    this.retire(walletId, slot);
    return true;
  }

  /** Frees every share, pinned or not (shutdown: the ceremonies are closed first). */
  clear(): void {
    for (const slot of this.slots.values()) this.release(slot);
    for (const slot of this.retiring) this.release(slot);
    this.slots.clear();
    this.retiring.clear();
    this.pinnedBytes = 0;
    this.pinnedCount = 0;
  }

  private touch(walletId: string, slot: Slot<E>): void {
    this.slots.delete(walletId);
    this.slots.set(walletId, slot);
  }

  /** The wallet's share is replaced: free it now, or once no ceremony holds it. */
  private retire(walletId: string, slot: Slot<E>): void {
    this.slots.delete(walletId);
    slot.cached = false;
    if (slot.pins > 0) this.retiring.add(slot);
    else this.release(slot);
  }

  private unpin(slot: Slot<E>): void {
    if (slot.freed || slot.pins === 0) return;
    if (--slot.pins > 0) return;
    this.pinnedBytes -= slot.cost;
    this.pinnedCount -= 1;
    if (!slot.cached) {
      this.retiring.delete(slot);
      this.release(slot);
    }
  }

  /** Wipes the share and stops charging for it. */
  private release(slot: Slot<E>): void {
    if (slot.freed) return;
    slot.freed = true;
    this.used -= slot.cost;
    slot.entry.share.free();
  }
}
