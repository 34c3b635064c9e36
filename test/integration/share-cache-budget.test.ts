/**
 * Issue 13 item 1's acceptance through the real load path: two development
 * enclave processes whose share cache holds three 2-of-2 shares (52,660 bytes
 * each) are given six wallets, then sign with each in turn. Every share past
 * the third evicts the least recently used; a sign whose share was evicted
 * meets share_not_loaded, the host reloads it through its enclave's attested
 * KMS call, and the signature is the same as it would have been. The
 * enclave's HEALTH reply is the witness: bytes used never above the budget,
 * evictions and misses counted, and the same process (pid, PCR0) throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import type { Supervised } from "../../src/harness/supervise.ts";
import { createWallet, signDigest } from "../../src/host/coordinator.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { HealthReply } from "../../src/shared/wire/enclave-ops.ts";

/** A serialised 2-of-2 share (share-cache.ts measures it). */
const SHARE_2_OF_2_BYTES = 52_660;
/** Room for three 2-of-2 shares, not four. */
const BUDGET = 160_000;
const WALLETS = 6;

let ln: LocalNodes;
let dir: string;
let probes: EnclaveClient[] = [];
const wallets: WalletRecord[] = [];
/** Every HEALTH reply taken, per node: the test's record of the cache over time. */
const seen: HealthReply[][] = [[], []];

const health = async (): Promise<HealthReply[]> => {
  const replies = await Promise.all(probes.map((p) => p.health()));
  replies.forEach((r, i) => seen[i]!.push(r));
  return replies;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-share-budget-"));
  ln = await startLocalNodes({ nodes: 2, dataDir: dir, enclaveShareBudgetBytes: BUDGET });
  // A second connection to each enclave, for HEALTH only: the hosts keep theirs.
  probes = await Promise.all(
    [1, 2].map((k) =>
      EnclaveClient.connect({ kind: "unix", path: join(dir, `node-${k}.enclave.sock`) }),
    ),
  );
}, 300_000);

afterAll(async () => {
  for (const p of probes) p.close();
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("share cache under a byte budget, real enclaves (issue 13 item 1)", () => {
  it("evicts past the budget, reloads evicted wallets on demand, and every signature verifies", async () => {
    const before = await health();
    const pids = ln.enclaves.map((e) => e.proc.pid);
    for (const h of before) {
      expect(h.shareBudgetBytes).toBe(BUDGET);
      expect(h.pcr0).toBe(ln.image.pcr0Hex);
    }

    for (let i = 0; i < WALLETS; i++) {
      wallets.push(await createWallet(ln.hosts, 2));
      for (const h of await health()) expect(h.shareBytesUsed!).toBeLessThanOrEqual(BUDGET);
    }
    const created = await health();
    for (const h of created) {
      expect(h.loadedWallets).toBe(Math.floor(BUDGET / SHARE_2_OF_2_BYTES));
      expect(h.shareEvictions!).toBeGreaterThanOrEqual(WALLETS - 3);
    }

    // Round robin over six wallets with room for three: every sign finds its share evicted.
    for (const [round, wallet] of [...wallets, ...wallets].entries()) {
      const digest = randomBytes(32);
      const sig = await signDigest(ln.hosts, wallet, 0, digest);
      expect(verifySignature(wallet.publicKey, digest, sig), `sign ${round}`).toBe(true);
      for (const h of await health()) expect(h.shareBytesUsed!).toBeLessThanOrEqual(BUDGET);
    }
    const afterRounds = await health();
    // The wallet signed last is cached now: signing with it again is a hit.
    const last = wallets[WALLETS - 1]!;
    const digest = randomBytes(32);
    expect(
      verifySignature(last.publicKey, digest, await signDigest(ln.hosts, last, 0, digest)),
    ).toBe(true);
    const after = await health();

    for (const [i, h] of after.entries()) {
      const c = created[i]!;
      // Each of the 12 round-robin signs missed on each node, and each miss was reloaded.
      expect(afterRounds[i]!.shareMisses! - c.shareMisses!).toBe(2 * WALLETS);
      // ...and the host's retry after the reload found it: one hit per miss.
      expect(afterRounds[i]!.shareHits! - c.shareHits!).toBe(2 * WALLETS);
      expect(h.shareHits! - afterRounds[i]!.shareHits!).toBe(1);
      expect(h.shareEvictions! - c.shareEvictions!).toBe(2 * WALLETS);
      expect(h.shareLoadsRefused).toBe(0);
      expect(h.sharesPinned).toBe(0);
      // No trap: the same process, the same image, still answering.
      expect(h.status).toBe("ok");
      expect(h.pcr0).toBe(ln.image.pcr0Hex);
      expect((ln.enclaves[i] as Supervised).restarts).toBe(0);
      expect(ln.enclaves[i]!.proc.pid).toBe(pids[i]);
    }
    const maxUsed = Math.max(...seen.flat().map((h) => h.shareBytesUsed!));
    expect(maxUsed).toBeLessThanOrEqual(BUDGET);
    console.log(
      JSON.stringify({
        budgetBytes: BUDGET,
        wallets: WALLETS,
        signs: 2 * WALLETS + 1,
        maxShareBytesUsed: maxUsed,
        perNode: after.map((h) => ({
          loadedWallets: h.loadedWallets,
          shareBytesUsed: h.shareBytesUsed,
          shareEvictions: h.shareEvictions,
          shareMisses: h.shareMisses,
          shareHits: h.shareHits,
          wasmMemoryBytes: h.wasmMemoryBytes,
        })),
      }),
    );
  }, 600_000);
});
