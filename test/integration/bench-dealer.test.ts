/**
 * The benchmark's dealer (src/dev/bench-dealer.ts, `npm run bench:scale`):
 * rows it writes are opened by each node's real enclave through its own
 * attested KMS Decrypt and sign correctly, also after the enclave's share
 * cache evicted them; and its KMS policy window closes again, so nothing
 * outside an enclave gets a data key in the clear afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenerateDataKeyCommand } from "@aws-sdk/client-kms";
import { BenchDealer, openDealingWindow } from "../../src/dev/bench-dealer.ts";
import { loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { signDigest } from "../../src/host/coordinator.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import { listShares } from "../../src/host/store/index.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { WalletRecord } from "../../src/shared/wire/node-rpc.ts";

let ln: LocalNodes;
let dir: string;
let dealer: BenchDealer;
const WALLETS = ["w_bench_a", "w_bench_b", "w_bench_c", "w_bench_d"];

beforeAll(async () => {
  loadDkls();
  dir = mkdtempSync(join(tmpdir(), "tss-dealer-"));
  // Room for two 2-of-3 shares (105,031 bytes each): signing four wallets evicts.
  ln = await startLocalNodes({ nodes: 3, dataDir: dir, enclaveShareBudgetBytes: 256 * 1024 });
  dealer = new BenchDealer({
    kms: ln.kms,
    kmsKeyArn: ln.kmsKeyArn,
    threshold: 2,
    nodes: ln.pcr4Hex.map((pcr4Hex, i) => ({ nodeId: `node-${i + 1}`, pcr4Hex })),
  });
  const close = await openDealingWindow(ln.kms, ln.kmsKeyArn);
  try {
    await dealer.deal(
      WALLETS,
      ln.hosts.map((h) => h.db),
    );
  } finally {
    await close();
  }
}, 180_000);

afterAll(async () => {
  dealer?.close();
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const record = (walletId: string): WalletRecord => ({
  walletId,
  threshold: 2,
  parties: 3,
  publicKey: dealer.publicKey,
  publicPackage: dealer.publicPackage,
  chainCode: dealer.chainCode,
});

describe("the benchmark's dealer", () => {
  it("writes one active share per node and wallet, each sealed under its own data key", () => {
    for (const walletId of WALLETS) {
      const rows = ln.hosts.map((h, i) => listShares(h.db, walletId, `node-${i + 1}`));
      expect(rows.map((r) => r.map((s) => [s.partyIndex, s.status]))).toEqual([
        [[1, "active"]],
        [[2, "active"]],
        [[3, "active"]],
      ]);
      const blobs = new Set(rows.map((r) => Buffer.from(r[0]!.kmsCiphertextBlob).toString("hex")));
      expect(blobs.size).toBe(3);
    }
  });

  it("its wallets sign through the enclaves' own KMS path, also once evicted and reloaded", async () => {
    for (const quorum of [
      [0, 1],
      [1, 2],
    ])
      for (const walletId of WALLETS) {
        const digest = randomBytes(32);
        const sig = await signDigest(
          quorum.map((i) => ln.hosts[i]!),
          record(walletId),
          0,
          digest,
        );
        expect(verifySignature(dealer.publicKey, digest, sig)).toBe(true);
      }
    const health = await Promise.all(
      ln.hosts.map(async (_, i) => {
        const c = await EnclaveClient.connect({
          kind: "unix",
          path: join(dir, `node-${i + 1}.enclave.sock`),
        });
        try {
          return await c.health();
        } finally {
          c.close();
        }
      }),
    );
    expect(health.some((h) => (h.shareEvictions ?? 0) > 0)).toBe(true);
    for (const h of health) expect(h.shareBytesUsed).toBeLessThanOrEqual(h.shareBudgetBytes!);
  }, 180_000);

  it("closes its KMS window: a data key in the clear is refused again", async () => {
    await expect(
      ln.kms.send(
        new GenerateDataKeyCommand({
          KeyId: ln.kmsKeyArn,
          KeySpec: "AES_256",
          EncryptionContext: {
            purpose: "tss-share",
            wallet: "w_bench_a",
            party: "1",
            generation: "0",
            node: ln.pcr4Hex[0]!,
          },
        }),
      ),
    ).rejects.toMatchObject({ name: "AccessDeniedException" });
  });
});
