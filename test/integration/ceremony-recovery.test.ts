/**
 * A refresh whose coordinator dies between commits, with real enclave processes and stores:
 * every holder persisted the new share as pending, only some committed; the others, restarted
 * (new NodeHost, same store and enclave), ask their peers (ceremonyOutcome) at start-up and
 * commit too, and the wallet signs at the new generation with every quorum.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { createWallet, runCeremony, signDigest } from "../../src/host/coordinator.ts";
import { NodeHost, type OutcomeSource } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import { staticCredentials } from "../../src/host/kms-credentials.ts";
import { generationOf, listShares, pendingShares } from "../../src/host/store/index.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { WalletRecord } from "../../src/host/participant.ts";

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-recovery-"));
  ln = await startLocalNodes({ nodes: 3, dataDir: dir });
  wallet = await createWallet(ln.hosts, 2);
});

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The same node after a host restart: its store and enclave, nothing it remembered. */
function restarted(h: NodeHost): NodeHost {
  return new NodeHost({
    nodeId: h.nodeId,
    enclave: (h as unknown as { enclave: EnclaveClient }).enclave,
    credentials: staticCredentials(ln.kmsCredentials),
    db: h.db,
  });
}

/** Every other host answers directly, as the node RPC op would. */
const peersOf =
  (self: NodeHost, all: () => NodeHost[]): OutcomeSource =>
  async (walletId, sessionId) =>
    all()
      .filter((h) => h.nodeId !== self.nodeId)
      .map((h) => ({ nodeId: h.nodeId, answer: h.ceremonyOutcome(walletId, sessionId) }));

describe("a refresh cut off between commits", () => {
  it("converges on the new generation at every holder, which then signs with any quorum", async () => {
    const hosts = ln.hosts;
    const members = await Promise.all(
      hosts.map(async (participant) => ({
        participant,
        partyIndex: (await participant.prepare(wallet.walletId)).partyIndex,
      })),
    );
    const sessionId = randomBytes(32);
    const finals = await runCeremony("refresh", members, sessionId, () => ({
      kind: "refresh",
      sessionId,
      walletId: wallet.walletId,
      expectedGeneration: 0,
    }));
    const refreshed = { ...wallet, publicPackage: finals[0]!.publicPackage! };
    await Promise.all(
      members.map((m, k) => m.participant.persist("refresh", sessionId, refreshed, finals[k]!)),
    );
    // The coordinator commits on the first node only, then dies.
    await hosts[0]!.commit("refresh", sessionId, wallet.walletId, 1);
    expect(hosts.map((h) => generationOf(h.db, wallet.walletId))).toEqual([1, 0, 0]);

    const now = [hosts[0]!, restarted(hosts[1]!), restarted(hosts[2]!)];
    for (const h of now) h.outcomeSource = peersOf(h, () => now);
    for (const h of now.slice(1)) {
      const r = await h.recover();
      expect(r.pending.map((p) => p.decision)).toEqual(["committed"]);
    }
    // The coordinator's commit arriving late at a node that settled already changes nothing.
    await now[1]!.commit("refresh", sessionId, wallet.walletId, 1);
    for (const h of now) {
      expect(generationOf(h.db, wallet.walletId)).toBe(1);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      // Exactly one usable generation: the old share is gone.
      expect(listShares(h.db, wallet.walletId, h.nodeId).map((s) => s.generation)).toEqual([1]);
    }
    for (const quorum of [
      [0, 1],
      [1, 2],
      [0, 2],
    ]) {
      const digest = randomBytes(32);
      const sig = await signDigest(
        quorum.map((k) => now[k]!),
        wallet,
        1,
        digest,
      );
      expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
    }
  });
});
