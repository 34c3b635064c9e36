/**
 * A holder stores and commits the wallet shape its own enclave finished with, never the
 * coordinator's word (security review M1; node-host.ts ownShape): real enclave processes and
 * libsql stores (startLocalNodes), 2-of-3 wallet, one refresh run to phase 4 on every host. A
 * persist whose wallet record names another public package, threshold or size than this
 * node's enclave produced is refused before anything is sealed or stored; the true one is
 * kept with the pending row (pending_shapes) and lands in the wallet row at the commit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { createWallet, runCeremony } from "../../src/host/coordinator.ts";
import {
  generationOf,
  getWallet,
  pendingShape,
  pendingShares,
} from "../../src/host/store/index.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import { toHex } from "../../src/shared/hex.ts";

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-own-shape-"));
  ln = await startLocalNodes({ nodes: 3, dataDir: dir });
  wallet = await createWallet(ln.hosts, 2);
}, 120_000);

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: unknown }).code);
  }
  return "not refused";
}

describe("persist takes the wallet's shape from this node's enclave", () => {
  it("refuses a coordinator's record of another package, t or n; keeps and commits its own", async () => {
    const hosts = ln.hosts;
    const from = generationOf(hosts[0]!.db, wallet.walletId);
    const members = await Promise.all(
      hosts.map(async (participant) => ({
        participant,
        partyIndex: (await participant.prepare(wallet.walletId)).partyIndex,
      })),
    );
    const sessionId = randomBytes(32);
    const session = toHex(sessionId);
    const finals = await runCeremony("refresh", members, sessionId, () => ({
      kind: "refresh",
      sessionId,
      walletId: wallet.walletId,
      expectedGeneration: from,
    }));
    const truth = { ...wallet, publicPackage: finals[0]!.publicPackage! };
    const [h] = hosts;
    const lies: WalletRecord[] = [
      { ...truth, publicPackage: wallet.publicPackage },
      { ...truth, threshold: 3 },
      { ...truth, threshold: 3, parties: 4 },
    ];
    for (const lie of lies)
      expect(await codeOf(h!.persist("refresh", sessionId, lie, finals[0]!))).toBe("conflict");
    expect(pendingShares(h!.db, h!.nodeId, wallet.walletId)).toHaveLength(0);
    // The truth: stored with its shape on every holder, then committed everywhere.
    const receipts = await Promise.all(
      hosts.map((x, k) => x.persist("refresh", sessionId, truth, finals[k]!)),
    );
    expect(pendingShape(h!.db, wallet.walletId, h!.nodeId, session)).toMatchObject({
      threshold: 2,
      parties: 3,
      committee: null,
    });
    for (const x of hosts)
      await x.commit("refresh", sessionId, wallet.walletId, finals[0]!.generation, receipts);
    for (const x of hosts) {
      const row = getWallet(x.db, wallet.walletId)!;
      expect(toHex(row.publicPackage)).toBe(toHex(finals[0]!.publicPackage!));
      expect(pendingShape(x.db, wallet.walletId, x.nodeId, session)).toBeUndefined();
    }
  }, 120_000);
});
