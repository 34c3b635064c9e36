/**
 * A peer's "committed" commits a settling holder only with its proof (src/host/settle-proof.ts):
 * the seal receipts its enclave activated with, travelling with the ceremonyOutcome answer and
 * checked by the settling holder's own enclave (src/enclave/seal-receipts.ts). Real enclave
 * processes and libsql stores (startLocalNodes), 2-of-3 wallet. The case it closes: a coordinator
 * that skipped one holder's persist says "committed" while that holder is silent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { createWallet, runCeremony, signDigest } from "../../src/host/coordinator.ts";
import { NodeHost, type OutcomeSource, type PeerOutcome } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import { staticCredentials } from "../../src/host/kms-credentials.ts";
import { generationOf, pendingShares } from "../../src/host/store/index.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { WalletRecord } from "../../src/host/participant.ts";

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-commit-proof-"));
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

/** Each host asks the others directly, as the node RPC op would. */
function freshHosts(): NodeHost[] {
  const hosts = ln.hosts.map(restarted);
  for (const h of hosts)
    h.outcomeSource = async (walletId, sessionId) =>
      hosts
        .filter((o) => o !== h)
        .map((o) => ({ nodeId: o.nodeId, answer: o.ceremonyOutcome(walletId, sessionId) }));
  return hosts;
}

/** A refresh run to phase 4 on every host, persisted on `storeOn` only; their seal receipts. */
async function refreshPersistedOn(hosts: NodeHost[], storeOn: NodeHost[]) {
  const from = generationOf(hosts[0]!.db, wallet.walletId);
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
    storeOn.map((h) => h.persist("refresh", sessionId, refreshed, finals[hosts.indexOf(h)]!)),
  );
  return { sessionId, from, receipts };
}

/** Fixed peer answers for a settling holder. */
const answering =
  (answers: PeerOutcome[]): OutcomeSource =>
  async () =>
    answers;

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

describe("a peer's committed needs its proof", () => {
  it("a coordinator that skipped a holder's persist says committed while that holder is silent: nothing commits", async () => {
    const hosts = freshHosts();
    const [n1, n2, n3] = hosts as [NodeHost, NodeHost, NodeHost];
    // node-3's persist skipped: only node-1 and node-2 stored, so only their receipts exist.
    const { from, receipts } = await refreshPersistedOn(hosts, [n1, n2]);
    // Restarted: a host skips settling the session its own live ceremony still holds.
    const settling = restarted(n2);
    const claims: (Uint8Array[] | undefined)[] = [
      undefined, // the bare word, as before the proof
      receipts, // two real receipts, node-3's missing
      [...receipts, receipts[1]!], // node-2's receipt twice in node-3's place
    ];
    for (const claim of claims) {
      settling.outcomeSource = answering([
        {
          nodeId: n1.nodeId,
          answer: { outcome: "committed", generation: from + 1, ...(claim && { receipts: claim }) },
        },
        { nodeId: n3.nodeId, answer: null },
      ]);
      expect((await settling.resolvePending()).map((r) => r.decision)).toEqual(["pending"]);
      expect(generationOf(n2.db, wallet.walletId)).toBe(from);
      expect(pendingShares(n2.db, n2.nodeId).map((p) => p.generation)).toEqual([from + 1]);
    }
    // node-3 back: it fences the session it never stored, and every holder rolls back.
    const settled = freshHosts();
    for (const h of settled.slice(0, 2))
      expect((await h.resolvePending()).map((r) => r.decision)).toEqual(["rolled_back"]);
    for (const h of settled) expect(generationOf(h.db, wallet.walletId)).toBe(from);
    await signsWithEveryQuorum(settled, from);
  });

  it("a real commit's proof travels with its answer: a holder settling while another is silent commits only with it", async () => {
    const live = freshHosts();
    const { sessionId, from, receipts } = await refreshPersistedOn(live, live);
    // Restarted: a host skips settling the session its own live ceremony still holds.
    const hosts = live.map(restarted);
    const [n1, n2, n3] = hosts as [NodeHost, NodeHost, NodeHost];
    // The coordinator commits node-1 only, then dies; node-3 is silent.
    await n1.commit("refresh", sessionId, wallet.walletId, from + 1, receipts);
    const word = n1.ceremonyOutcome(wallet.walletId, sessionId);
    expect(word).toMatchObject({ outcome: "committed", generation: from + 1 });
    expect(word.receipts?.length).toBe(3);
    // Without the proof: stays pending.
    n2.outcomeSource = answering([
      { nodeId: n1.nodeId, answer: { outcome: "committed", generation: from + 1 } },
      { nodeId: n3.nodeId, answer: null },
    ]);
    expect((await n2.resolvePending()).map((r) => r.decision)).toEqual(["pending"]);
    expect(generationOf(n2.db, wallet.walletId)).toBe(from);
    // With it: node-2's enclave checks the receipts and activates; node-2 keeps the proof too.
    n2.outcomeSource = answering([
      { nodeId: n1.nodeId, answer: word },
      { nodeId: n3.nodeId, answer: null },
    ]);
    expect((await n2.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    expect(generationOf(n2.db, wallet.walletId)).toBe(from + 1);
    expect(n2.ceremonyOutcome(wallet.walletId, sessionId).receipts?.length).toBe(3);
    // node-3 settles from node-2's proof alone (node-1 silent now).
    n3.outcomeSource = answering([
      { nodeId: n1.nodeId, answer: null },
      { nodeId: n2.nodeId, answer: n2.ceremonyOutcome(wallet.walletId, sessionId) },
    ]);
    expect((await n3.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    for (const h of hosts) {
      expect(generationOf(h.db, wallet.walletId)).toBe(from + 1);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
    }
    await signsWithEveryQuorum(hosts, from + 1);
  });
});
