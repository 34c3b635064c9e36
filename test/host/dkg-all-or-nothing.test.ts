/**
 * A DKG commits all-or-nothing across its holders (src/host/dkg-commit.ts), on real libsql
 * files with an enclave stand-in that answers only what the host relays: each holder stores its
 * share pending and the wallet is listed nowhere until every holder stored and commits; when
 * one holder fails (here: its database is write-locked), every holder's rollback removes its
 * pending share, so no wallet with fewer holders than parties remains; a holder left pending
 * by a lost coordinator settles from its peers. The real-process version is the fault matrix's
 * database-lock cell (test/faults/fault-matrix.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockDatabaseFile as lock } from "../helpers/lock-database.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import { listShares, openStore, pendingShares, readAudit } from "../../src/host/store/index.ts";
import type { WalletRecord } from "../../src/host/participant.ts";

const NODES = ["node-1", "node-2", "node-3"];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tss-dkg-commit-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const wallet = (walletId: string): WalletRecord => ({
  walletId,
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...randomBytes(32)),
  publicPackage: new Uint8Array(40).fill(1),
  chainCode: new Uint8Array(32).fill(2),
});

/** What the host asks of its enclave here; `aborted` collects the sessions it was told to drop. */
function enclaveStandIn(partyIndex: number, aborted: string[]): EnclaveClient {
  return {
    startCeremony: async () => ({ messages: [], generation: 0 }),
    abortCeremony: async (r: { sessionId: Uint8Array }) => {
      aborted.push(Buffer.from(r.sessionId).toString("hex"));
      return { dropped: true };
    },
    sealShare: async () => ({
      sealed: Uint8Array.of(1, partyIndex),
      ciphertextBlob: Uint8Array.of(7),
      kmsKeyId: "arn:key",
      generation: 0,
      partyIndex,
    }),
    activateShare: async () => ({ generation: 0, partyIndex }),
  } as unknown as EnclaveClient;
}

let run = 0;
/** Three hosts, each on its own file, asking each other directly as the ceremonyOutcome op would. */
function cluster(graceMs = 60_000) {
  const r = run++;
  const aborted = NODES.map(() => [] as string[]);
  const paths = NODES.map((n) => join(dir, `${r}-${n}.db`));
  const hosts = NODES.map(
    (nodeId, k) =>
      new NodeHost({
        nodeId,
        enclave: enclaveStandIn(k + 1, aborted[k]!),
        credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
        // A short busy timeout: a locked write fails at once instead of after 5 s.
        db: openStore({ path: paths[k]! }, { busyTimeoutMs: 50 }).db,
        pendingGraceMs: graceMs,
      }),
  );
  for (const h of hosts)
    h.outcomeSource = async (walletId, sessionId) =>
      hosts
        .filter((o) => o !== h)
        .map((o) => ({ nodeId: o.nodeId, answer: o.ceremonyOutcome(walletId, sessionId) }));
  return { hosts, aborted, paths };
}

const FINAL = { messages: [], generation: 0 };

async function startAll(hosts: NodeHost[], w: WalletRecord, sessionId: Uint8Array) {
  await Promise.all(
    hosts.map((h, k) =>
      h.start({
        kind: "dkg",
        sessionId,
        walletId: w.walletId,
        threshold: w.threshold,
        parties: w.parties,
        partyIndex: k + 1,
        peerDocuments: [],
        peerParties: [],
      }),
    ),
  );
}

describe("DKG commit: all holders or none", () => {
  it("the wallet is listed nowhere while its shares are pending, everywhere once all committed", async () => {
    const { hosts } = cluster();
    const w = wallet("w-dkg-ok");
    const sessionId = randomBytes(32);
    await startAll(hosts, w, sessionId);
    for (const h of hosts) await h.persist("dkg", sessionId, w, FINAL);
    for (const h of hosts) {
      expect(h.walletInfo(w.walletId)).toBeNull();
      expect(h.listWallets()).toEqual([]);
      expect(pendingShares(h.db, h.nodeId, w.walletId)).toHaveLength(1);
    }
    for (const h of hosts) await h.commit("dkg", sessionId, w.walletId, 0);
    for (const h of hosts) {
      // Its enclave activated the pending share (asked before the store committed).
      expect((h as unknown as { loaded: Map<string, unknown> }).loaded.has(w.walletId)).toBe(true);
      expect(h.walletInfo(w.walletId)).toMatchObject({ walletId: w.walletId, generation: 0 });
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      expect(h.ceremonyOutcome(w.walletId, sessionId)).toEqual({
        outcome: "committed",
        generation: 0,
      });
      expect(readAudit(h.db, { walletId: w.walletId }).map((e) => e.event)).toEqual([
        "share_stored",
        "wallet_created",
        "share_stored",
      ]);
    }
    // A commit repeated (a lost reply) changes nothing.
    await hosts[0]!.commit("dkg", sessionId, w.walletId, 0);
    expect(listShares(hosts[0]!.db, w.walletId)).toHaveLength(1);
  });

  it("one holder's database locked: its persist fails, every holder's rollback removes its pending share, a late persist is refused", async () => {
    const { hosts, aborted, paths } = cluster();
    const w = wallet("w-dkg-locked");
    const sessionId = randomBytes(32);
    const session = sessionId.toString("hex");
    await startAll(hosts, w, sessionId);
    await hosts[0]!.persist("dkg", sessionId, w, FINAL);
    await hosts[1]!.persist("dkg", sessionId, w, FINAL);
    const release = lock(paths[2]!);
    try {
      await expect(hosts[2]!.persist("dkg", sessionId, w, FINAL)).rejects.toThrow(
        /database is locked/,
      );
      // Still locked: node-3 answers from memory that it never stored the session.
      expect(hosts[2]!.ceremonyOutcome(w.walletId, sessionId)).toEqual({
        outcome: "rolled_back",
        generation: 0,
      });
      // The coordinator's rollback reaches every holder (node-3's own write fails; its fence is in memory).
      await Promise.allSettled(hosts.map((h) => h.rollback("dkg", sessionId, w.walletId)));
    } finally {
      release();
    }
    for (const [k, h] of hosts.entries()) {
      expect(h.walletInfo(w.walletId)).toBeNull();
      expect(h.listWallets()).toEqual([]);
      expect(listShares(h.db, w.walletId)).toEqual([]);
      expect(aborted[k]).toContain(session);
    }
    expect(readAudit(hosts[0]!.db, { walletId: w.walletId }).map((e) => e.event)).toEqual([
      "share_stored",
      "dkg_aborted",
    ]);
    // node-3 never stores it later (a persist delivered late), nor does a holder that rolled back.
    await expect(hosts[2]!.persist("dkg", sessionId, w, FINAL)).rejects.toMatchObject({
      code: "conflict",
    });
    await expect(hosts[0]!.persist("dkg", sessionId, w, FINAL)).rejects.toMatchObject({
      code: "conflict",
    });
    await expect(hosts[0]!.commit("dkg", sessionId, w.walletId, 0)).rejects.toMatchObject({
      code: "conflict",
    });
    // A new DKG under the same wallet id (another key) runs as if the first never was.
    const again = { ...wallet(w.walletId) };
    const second = randomBytes(32);
    await startAll(hosts, again, second);
    for (const h of hosts) await h.persist("dkg", second, again, FINAL);
    for (const h of hosts) await h.commit("dkg", second, w.walletId, 0);
    for (const h of hosts) expect(h.walletInfo(w.walletId)?.publicKey).toEqual(again.publicKey);
  });

  it("a coordinator lost after every holder stored: each holder's recovery commits once every other holder reports it pending", async () => {
    const { hosts } = cluster(0);
    const w = wallet("w-dkg-lost-all");
    const sessionId = randomBytes(32);
    await startAll(hosts, w, sessionId);
    for (const h of hosts) await h.persist("dkg", sessionId, w, FINAL);
    // The coordinator is gone: its sessions end (abortSessionsStartedBy) without a commit.
    for (const h of hosts) await h.abort(sessionId);
    const first = await hosts[0]!.resolvePending();
    expect(first).toEqual([
      { walletId: w.walletId, sessionId: sessionId.toString("hex"), decision: "committed" },
    ]);
    // The others follow node-1's commit.
    for (const h of hosts.slice(1)) await h.resolvePending();
    for (const h of hosts) expect(h.walletInfo(w.walletId)?.walletId).toBe(w.walletId);
  });

  it("a coordinator lost before one holder stored: that holder's word is rolled back, the others roll back", async () => {
    const { hosts } = cluster(0);
    const w = wallet("w-dkg-lost-one");
    const sessionId = randomBytes(32);
    await startAll(hosts, w, sessionId);
    await hosts[0]!.persist("dkg", sessionId, w, FINAL);
    await hosts[1]!.persist("dkg", sessionId, w, FINAL);
    // node-3's persist never came; the coordinator is gone and every node's session ends.
    for (const h of hosts) await h.abort(sessionId);
    const r = await hosts[0]!.resolvePending();
    expect(r.map((x) => x.decision)).toEqual(["rolled_back"]);
    await hosts[1]!.resolvePending();
    for (const h of hosts) {
      expect(h.listWallets()).toEqual([]);
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
    }
    await expect(hosts[2]!.persist("dkg", sessionId, w, FINAL)).rejects.toMatchObject({
      code: "conflict",
    });
  });
});
