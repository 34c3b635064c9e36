/**
 * A wallet verifiable while one holder is offline (issue 9, the `wallet`
 * answer's kept statements: src/host/wallet-vouchers.ts), over the real bus:
 * the local cluster (host and enclave processes, Mosquitto with per-user
 * credentials, the KMS stand-in, libsql files) and the SDK with trust.
 *
 * A 2-of-3 wallet is created; node 3's host stops. A fresh client with the
 * same trust, which never saw the wallet, asks for it: whichever live node
 * answers relays its copy of node 3's statement beside the two live ones,
 * the SDK verifies all three against their attestation documents (its rule
 * unchanged: n statements of one generation), and then signs, the signature
 * verifying under the vouched key.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import type { TssClient } from "../../src/client/index.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import { fromHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const OFFLINE = "node-3";

let cluster: LocalCluster;
let dir: string;
let creator: TssClient;
let wallet: CreateWalletResult;

async function offline(client: TssClient, nodeId: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const shown = await client.nodes();
    if (!shown.nodes.some((n) => n.nodeId === nodeId && n.status === "online")) return;
    if (Date.now() > end) throw new Error(`${nodeId} is still online`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-offline-holder-"));
  cluster = await startCluster({ nodes: 3, dataDir: dir, phaseTimeoutMs: 60_000 });
  creator = await connectTrusting(cluster);
  wallet = await creator.createWallet({ threshold: 2, parties: 3 });
  expect(wallet.nodes).toContain(OFFLINE);
  await cluster.nodes.find((n) => n.nodeId === OFFLINE)!.host.stop();
  await offline(creator, OFFLINE);
}, 240_000);

afterAll(async () => {
  await creator?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a wallet with one holder offline, over MQTT", () => {
  it("a fresh trusting client verifies it from all three statements and signs", async () => {
    const fresh = await connectTrusting({ ...cluster, client: cluster.clients[1]! });
    try {
      // Several answers: the broker's shared subscription hands them to either live node,
      // and each must relay its own copy of node 3's statement.
      for (let i = 0; i < 6; i++) {
        const w = await fresh.wallet(wallet.walletId);
        expect(w.publicKey).toBe(wallet.publicKey);
        expect(w.vouchedBy?.map((v) => v.partyIndex)).toEqual([1, 2, 3]);
      }
      const v = await fresh.verifiedWallet(wallet.walletId);
      expect(v.generation).toBe(0);
      const digest = randomBytes(32);
      const r = await fresh.sign({ walletId: wallet.walletId, digest });
      expect(r.publicKey).toBe(wallet.publicKey);
      expect(r.signers).not.toContain(OFFLINE);
      expect(
        verifySignature(fromHex(r.publicKey), digest, {
          r: fromHex(r.signature.r),
          s: fromHex(r.signature.s),
          recoveryId: r.signature.recoveryId,
        }),
      ).toBe(true);
    } finally {
      await fresh.close();
    }
  }, 120_000);
});
