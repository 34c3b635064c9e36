import { beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { dkgInProcess, signInProcess } from "../../src/dev/in-process.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { CeremonyRegistry } from "../../src/enclave/ceremony-registry.ts";
import { KeyShare, Signing, wasmMemoryBytes } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import {
  MAX_SHARE_BUDGET_BYTES,
  ShareCache,
  type CacheableShare,
} from "../../src/enclave/share-cache.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { thrown } from "../helpers/thrown.ts";
import { inboxFor } from "../../src/shared/wire/protocol-message.ts";

/** A share stand-in for the bookkeeping tests: records being freed. */
class FakeShare implements CacheableShare {
  freed = false;
  constructor(readonly byteLength: number) {}
  free(): void {
    this.freed = true;
  }
}

const fake = (bytes: number) => ({ share: new FakeShare(bytes) });

const refusal = (f: () => unknown) => thrown(EnclaveError, f);

/** A cache of `budget` bytes holding fake shares "a", "b", ... of `sizes`, put in that order. */
function cacheWith<const S extends number[]>(budget: number, ...sizes: S) {
  const c = new ShareCache<{ share: FakeShare }>(budget);
  const held = sizes.map((bytes, i) => {
    const e = fake(bytes);
    c.put(String.fromCharCode(97 + i), e);
    return e;
  });
  return { c, held: held as { [K in keyof S]: { share: FakeShare } } };
}

/** Wallet ids in recency order, least recently used first. */
const order = (c: ShareCache<{ share: CacheableShare }>, ids: string[]) =>
  ids.filter((id) => c.peek(id) !== undefined);

describe("share cache bookkeeping", () => {
  it("evicts least recently used first, frees what it evicts, and a pin counts as use", () => {
    const evicted: string[] = [];
    const c = new ShareCache<{ share: FakeShare }>(300, (id) => evicted.push(id));
    const [a, b, c3] = [fake(100), fake(100), fake(100)];
    c.put("a", a);
    c.put("b", b);
    c.put("c", c3);
    expect(c.stats()).toMatchObject({ usedBytes: 300, entries: 3, evictions: 0 });
    c.pin("a")!.release(); // a is now the most recently used
    c.put("d", fake(100));
    expect(evicted).toEqual(["b"]);
    expect(b.share.freed).toBe(true);
    expect(a.share.freed || c3.share.freed).toBe(false);
    c.put("e", fake(150)); // needs two slots: c, then a
    expect(evicted).toEqual(["b", "c", "a"]);
    expect(order(c, ["a", "b", "c", "d", "e"])).toEqual(["d", "e"]);
    expect(c.stats()).toMatchObject({ usedBytes: 250, entries: 2, evictions: 3 });
  });

  it("counts a pin of a cached wallet as a hit and of an absent one as a miss; peek counts nothing", () => {
    const { c } = cacheWith(1000, 10);
    c.pin("a")!.release();
    expect(c.pin("zz")).toBeUndefined();
    c.peek("a");
    c.peek("zz");
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it("never evicts a pinned share, and refuses (evicting nothing) what cannot fit beside the pinned ones", () => {
    const {
      c,
      held: [a, b],
    } = cacheWith(300, 100, 100);
    const pinA = c.pin("a")!;
    const pinB = c.pin("b")!;
    c.put("c", fake(100));
    const d = fake(150);
    const e = refusal(() => c.put("d", d));
    expect(e.code).toBe("capacity_exceeded");
    expect(e.message).toContain("200 of which open ceremonies hold");
    // The refused share is freed; nothing was evicted to make room for a load that failed.
    expect(d.share.freed).toBe(true);
    expect(c.peek("c")).toBeDefined();
    expect(c.stats()).toMatchObject({ refused: 1, evictions: 0, pinned: 2, usedBytes: 300 });
    // Once the ceremonies end, the same load fits: a, then b (the least recently used) go.
    pinA.release();
    pinA.release(); // a second release is a no-op, not a second unpin
    expect(c.stats().pinned).toBe(1);
    pinB.release();
    c.put("d", fake(150));
    expect(order(c, ["a", "b", "c", "d"])).toEqual(["c", "d"]);
    expect(a.share.freed && b.share.freed).toBe(true);
  });

  it("refuses a share larger than the whole budget", () => {
    const { c } = cacheWith(100, 60);
    const big = fake(101);
    expect(refusal(() => c.put("b", big)).code).toBe("capacity_exceeded");
    expect(big.share.freed).toBe(true);
    expect(c.peek("a")).toBeDefined();
  });

  it("frees a replaced share at once, or when its last pin is released, charging it until then", () => {
    const c = new ShareCache<{ share: FakeShare }>(250);
    const gen0 = fake(100);
    c.put("w", gen0);
    const pin1 = c.pin("w")!;
    const pin2 = c.pin("w")!;
    const gen1 = fake(100);
    c.put("w", gen1); // a refresh activated while two ceremonies still use generation 0
    expect(c.peek("w")).toBe(gen1);
    expect(gen0.share.freed).toBe(false);
    expect(c.stats()).toMatchObject({ usedBytes: 200, entries: 1, pinned: 1 });
    // Generation 0 still counts: evicting generation 1 would leave 150 bytes, not 160.
    expect(refusal(() => c.put("x", fake(160))).code).toBe("capacity_exceeded");
    pin1.release();
    expect(gen0.share.freed).toBe(false);
    pin2.release();
    expect(gen0.share.freed).toBe(true);
    expect(c.stats()).toMatchObject({ usedBytes: 100, pinned: 0 });
    // Unpinned, a replacement frees the old share at once.
    const gen2 = fake(100);
    c.put("w", gen2);
    expect(gen1.share.freed).toBe(true);
    expect(c.stats().usedBytes).toBe(100);
    // Putting the same share again only refreshes the entry.
    c.put("w", gen2);
    expect(gen2.share.freed).toBe(false);
    expect(c.stats().usedBytes).toBe(100);
  });

  it("clear frees everything, and a pin released afterwards changes nothing", () => {
    const {
      c,
      held: [a, b],
    } = cacheWith(1000, 10, 10);
    const pin = c.pin("a")!;
    c.put("a", fake(10));
    c.clear();
    pin.release();
    expect(a.share.freed && b.share.freed).toBe(true);
    expect(c.stats()).toMatchObject({ usedBytes: 0, entries: 0, pinned: 0 });
  });

  it("accepts only a whole number of bytes up to MAX_SHARE_BUDGET_BYTES", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_SHARE_BUDGET_BYTES + 1])
      expect(() => new ShareCache(bad)).toThrow(RangeError);
    expect(new ShareCache().budgetBytes).toBeGreaterThan(0);
    expect(new ShareCache(MAX_SHARE_BUDGET_BYTES).budgetBytes).toBe(MAX_SHARE_BUDGET_BYTES);
  });
});

/** One wallet of a 2-of-2 DKG: party 1's share goes through the cache, party 2's stays outside. */
interface Wallet {
  id: string;
  publicKey: Uint8Array;
  /** Party 1's serialised share: stands in for the sealed row a reload unseals. */
  stored: Uint8Array;
  party2: KeyShare;
}

interface Entry {
  share: KeyShare;
  generation: number;
}

function load(w: Wallet): Entry {
  return { share: KeyShare.fromBytes(w.stored.slice()), generation: 0 };
}

function signWith(w: Wallet, party1: KeyShare): boolean {
  const digest = randomBytes(32);
  const sigs = signInProcess([party1, w.party2], [1, 2], digest);
  return sigs.every((s) => verifySignature(w.publicKey, digest, s));
}

describe("share cache with real 2-of-2 shares", () => {
  const wallets: Wallet[] = [];
  /** Party 1's share of the last wallet as the DKG returned it (not parsed from bytes). */
  let fromDkg: KeyShare;
  let shareBytes: number;

  beforeAll(() => {
    for (const id of ["w-a", "w-b", "w-c"]) {
      const [p1, p2] = dkgInProcess(2, 2) as [KeyShare, KeyShare];
      wallets.push({ id, publicKey: p1.publicKey, stored: p1.toBytes(), party2: p2 });
      fromDkg = p1;
    }
    shareBytes = load(wallets[0]!).share.byteLength;
  });

  it("charges a share its serialised length, whether parsed from bytes or produced by a ceremony", () => {
    const [w] = wallets as [Wallet];
    expect(shareBytes).toBe(w.stored.length);
    expect(fromDkg.byteLength).toBe(wallets[2]!.stored.length);
    fromDkg.free();
  });

  it("fills past the budget: evicts least recently used, wipes it, reloads it, and signs with the reloaded share", () => {
    const [a, b, c] = wallets as [Wallet, Wallet, Wallet];
    const evicted: string[] = [];
    const cache = new ShareCache<Entry>(2 * shareBytes + Math.floor(shareBytes / 2), (id) =>
      evicted.push(id),
    );
    const first = load(a);
    cache.put(a.id, first);
    cache.put(b.id, load(b));
    const used = cache.pin(a.id)!; // a used: b is now the least recently used
    expect(signWith(a, used.entry.share)).toBe(true);
    used.release();
    cache.put(c.id, load(c));
    expect(evicted).toEqual([b.id]);
    expect(cache.pin(b.id)).toBeUndefined(); // what the enclave answers with share_not_loaded
    cache.put(b.id, load(b)); // the reload, as from the sealed row
    expect(evicted).toEqual([b.id, a.id]);
    // a's evicted handle is wiped: it refuses every use, including signing.
    expect(() => first.share.index).toThrow(/freed/);
    expect(() => signWith(a, first.share)).toThrow(/freed/);
    // Reloaded, a signs again and the signature verifies under the wallet's key.
    cache.put(a.id, load(a));
    const pin = cache.pin(a.id)!;
    expect(signWith(a, pin.entry.share)).toBe(true);
    pin.release();
    const pinB = cache.pin(b.id)!;
    expect(signWith(b, pinB.entry.share)).toBe(true);
    pinB.release();
    expect(cache.stats()).toMatchObject({
      budgetBytes: 2 * shareBytes + Math.floor(shareBytes / 2),
      usedBytes: 2 * shareBytes,
      entries: 2,
      evictions: 3,
      misses: 1,
    });
  });

  it("keeps a share an open signing session uses through a fill, then evicts it once released", () => {
    const [a, b, c] = wallets as [Wallet, Wallet, Wallet];
    const cache = new ShareCache<Entry>(2 * shareBytes);
    cache.put(a.id, load(a));
    const pin = cache.pin(a.id)!;
    const digest = randomBytes(32);
    const sessionId = randomBytes(32);
    const party1 = new Signing({ share: pin.entry.share, sessionId, parties: [1, 2], digest });
    const party2 = new Signing({ share: a.party2, sessionId, parties: [1, 2], digest });
    let out = [...party1.phase1(), ...party2.phase1()];
    // Mid-ceremony, other wallets load: a is the oldest, yet only unpinned shares go.
    cache.put(b.id, load(b));
    cache.put(c.id, load(c));
    expect(cache.peek(a.id)).toBe(pin.entry);
    expect(cache.peek(b.id)).toBeUndefined();
    // With c pinned too, nothing is left to evict: b is refused, and c is not evicted for it.
    const pinC = cache.pin(c.id)!;
    expect(refusal(() => cache.put(b.id, load(b))).code).toBe("capacity_exceeded");
    expect(cache.peek(c.id)).toBe(pinC.entry);
    pinC.release();
    for (const phase of [2, 3] as const) {
      const [in1, in2] = [inboxFor(1, out), inboxFor(2, out)];
      out =
        phase === 2
          ? [...party1.phase2(in1), ...party2.phase2(in2)]
          : [...party1.phase3(in1), ...party2.phase3(in2)];
    }
    const [in1, in2] = [inboxFor(1, out), inboxFor(2, out)];
    const sigs = [party1.phase4(in1), party2.phase4(in2)];
    expect(sigs.every((s) => verifySignature(a.publicKey, digest, s))).toBe(true);
    pin.release();
    cache.put(b.id, load(b));
    expect(cache.peek(a.id)).toBeUndefined();
    expect(() => pin.entry.share.index).toThrow(/freed/);
  });

  it("holds wasm memory to the budget while many more shares than fit pass through, and the charge bounds the real cost", () => {
    const [a] = wallets as [Wallet];
    const fit = 20;
    const cache = new ShareCache<Entry>(fit * shareBytes);
    for (let i = 0; i < fit; i++) cache.put(`warm-${i}`, load(a));
    const warm = wasmMemoryBytes();
    for (let i = 0; i < 10 * fit; i++) cache.put(`w-${i}`, load(a));
    // Every load past the first `fit` evicted one share and reused its space.
    expect(cache.stats()).toMatchObject({ entries: fit, evictions: 10 * fit });
    expect(wasmMemoryBytes() - warm).toBeLessThanOrEqual(2 * shareBytes + 65_536);
    cache.clear();
    // Fresh growth for `fit` more shares than the heap has free stays within their charge.
    const held = new ShareCache<Entry>(3 * fit * shareBytes);
    for (let i = 0; i < fit; i++) held.put(`x-${i}`, load(a));
    const before = wasmMemoryBytes();
    for (let i = 0; i < 2 * fit; i++) held.put(`y-${i}`, load(a));
    expect(wasmMemoryBytes() - before).toBeLessThanOrEqual(2 * fit * shareBytes);
    held.clear();
  });
});

describe("share cache in the enclave's ceremonies", () => {
  it("refuses a sign for an evicted (or never loaded) wallet before claiming the session id, and counts a miss", () => {
    const shares = new ShareTable(null, "00".repeat(48), () => {}, 60_000, 1024 * 1024);
    const noPeers = {
      open: () => {
        throw new EnclaveError("bad_request", "no peers in this test");
      },
    } as unknown as PeerSessions;
    // Approvals not required: this test is about the share cache (approval-gate.test.ts covers them).
    const ceremonies = new Ceremonies(shares, noPeers, () => {}, 60_000, 0, {
      adminPolicy: null,
      requireApprovals: false,
    });
    const sessionId = randomBytes(32);
    const base = { sessionId, walletId: "w-gone", peerDocuments: [], peerParties: [] };
    const sign = { ...base, kind: "sign" as const, signers: [1, 2], digest: randomBytes(32) };
    expect(refusal(() => ceremonies.start({ ...sign, expectedGeneration: 0 })).code).toBe(
      "share_not_loaded",
    );
    expect(shares.cacheStats()).toMatchObject({ misses: 1, hits: 0, budgetBytes: 1024 * 1024 });
    // The id is still unused: after a reload the host may start this very session.
    const dkg = { ...base, kind: "dkg" as const, threshold: 2, parties: 2, partyIndex: 1 };
    expect(refusal(() => ceremonies.start(dkg)).message).toContain("no peers in this test");
    expect(refusal(() => ceremonies.start(dkg)).code).toBe("session_reused");
  });

  it("a session's pin is released when it is dropped and when it expires", async () => {
    const { c } = cacheWith(1000, 10, 10);
    const registry = new CeremonyRegistry(30);
    const stub = { close: () => {} } as never;
    const open = (walletId: string) => {
      const id = randomBytes(32);
      const hex = registry.claim(id);
      registry.add(hex, {
        kind: "sign",
        walletId,
        session: stub,
        generation: 0,
        peer: stub,
        release: c.pin(walletId)!.release,
      });
      return hex;
    };
    registry.drop(open("a"));
    expect(c.stats().pinned).toBe(0);
    open("b");
    expect(c.stats().pinned).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(registry.size).toBe(0);
    expect(c.stats().pinned).toBe(0);
  });
});
