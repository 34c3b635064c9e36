/**
 * A refresh whose coordinator dies between commits, with real enclave processes and stores:
 * every holder persisted the new share as pending, only some committed; the others, restarted
 * (new NodeHost, same store and enclave), ask their peers (ceremonyOutcome) at start-up and
 * commit too, and the wallet signs at the new generation with every quorum. And a coordinator's
 * rollback (docs/ARCHITECTURE.md, the refresh commit rule): after every holder stored the share
 * (a persist reply lost) every holder commits instead; when one never stored it, all roll back.
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

/** The seal receipts each session's persists returned (what a coordinator hands to commit). */
const receipts_ = new Map<string, Uint8Array[]>();
const receiptsOf = (sessionId: Buffer) => receipts_.get(sessionId.toString("hex"))!;

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
    const sessionId = await refreshPersistedOn(hosts, 0, hosts);
    // The coordinator commits on the first node only, then dies.
    // With every holder's seal receipt (as the coordinator gathers them from the persists).
    await hosts[0]!.commit("refresh", sessionId, wallet.walletId, 1, receiptsOf(sessionId));
    expect(hosts.map((h) => generationOf(h.db, wallet.walletId))).toEqual([1, 0, 0]);

    const now = [hosts[0]!, restarted(hosts[1]!), restarted(hosts[2]!)];
    for (const h of now) h.outcomeSource = peersOf(h, () => now);
    for (const h of now.slice(1)) {
      const r = await h.recover();
      expect(r.pending.map((p) => p.decision)).toEqual(["committed"]);
    }
    // The coordinator's commit arriving late at a node that settled already changes nothing.
    await now[1]!.commit("refresh", sessionId, wallet.walletId, 1, receiptsOf(sessionId));
    for (const h of now) {
      expect(generationOf(h.db, wallet.walletId)).toBe(1);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      // Exactly one usable generation: the old share is gone.
      expect(listShares(h.db, wallet.walletId, h.nodeId).map((s) => s.generation)).toEqual([1]);
    }
    await signsWithEveryQuorum(now, 1);
  });

  /** The hosts restarted (nothing of earlier tests' sessions held), asking one another directly. */
  function freshHosts(): NodeHost[] {
    const hosts = ln.hosts.map(restarted);
    for (const h of hosts) h.outcomeSource = peersOf(h, () => hosts);
    return hosts;
  }

  /** A refresh of the wallet at `from` run to phase 4 on every host, persisted on `storeOn` only. */
  async function refreshPersistedOn(hosts: NodeHost[], from: number, storeOn: NodeHost[]) {
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
      expectedGeneration: from,
    }));
    const refreshed = { ...wallet, publicPackage: finals[0]!.publicPackage! };
    const receipts = await Promise.all(
      members
        .filter((m) => storeOn.includes(m.participant))
        .map((m) =>
          m.participant.persist(
            "refresh",
            sessionId,
            refreshed,
            finals[hosts.indexOf(m.participant)]!,
          ),
        ),
    );
    receipts_.set(sessionId.toString("hex"), receipts);
    return sessionId;
  }

  async function signsWithEveryQuorum(hosts: NodeHost[], generation: number) {
    for (const quorum of [
      [0, 1],
      [1, 2],
      [0, 2],
    ]) {
      const digest = randomBytes(32);
      const sig = await signDigest(
        quorum.map((k) => hosts[k]!),
        wallet,
        generation,
        digest,
      );
      expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
    }
  }

  it("a coordinator's rollback after every holder stored (a persist reply lost): every holder commits instead", async () => {
    const hosts = freshHosts();
    const from = generationOf(hosts[0]!.db, wallet.walletId);
    const sessionId = await refreshPersistedOn(hosts, from, hosts);
    // The coordinator took a lost persist reply for a failure and rolls back everywhere; each
    // holder stored the share, asks the others (the harness wires ceremonyOutcome in process),
    // hears "pending" from all and commits.
    await Promise.allSettled(hosts.map((h) => h.rollback("refresh", sessionId, wallet.walletId)));
    for (const h of hosts) {
      expect(generationOf(h.db, wallet.walletId)).toBe(from + 1);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      expect(h.ceremonyOutcome(wallet.walletId, sessionId).outcome).toBe("committed");
    }
    await signsWithEveryQuorum(hosts, from + 1);
  });

  it("a coordinator's rollback when one holder never stored: every holder rolls back, the old generation signs", async () => {
    const hosts = freshHosts();
    const from = generationOf(hosts[0]!.db, wallet.walletId);
    const sessionId = await refreshPersistedOn(hosts, from, hosts.slice(0, 2));
    await Promise.allSettled(hosts.map((h) => h.rollback("refresh", sessionId, wallet.walletId)));
    for (const h of hosts) {
      expect(generationOf(h.db, wallet.walletId)).toBe(from);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      expect(h.ceremonyOutcome(wallet.walletId, sessionId).outcome).toBe("rolled_back");
    }
    await signsWithEveryQuorum(hosts, from);
  });
});
