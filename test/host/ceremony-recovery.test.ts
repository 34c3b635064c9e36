/**
 * Crash-safe refreshes on one node's store (real libsql files), with an enclave stand-in that
 * answers only what the host relays: a rollback removes only its own session's pending rows,
 * one DKG/refresh per wallet at a time, a pending share settled from its peers' answers
 * (ceremonyOutcome, fenced so the answer stays true), and a restarted coordinator's
 * "running" ceremonies failed with an audit row. The version with real enclaves is
 * test/integration/ceremony-recovery.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeHost, type OutcomeSource } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import {
  abortRefresh,
  generationOf,
  getCeremony,
  insertActiveShare,
  insertWallet,
  listShares,
  openStore,
  pendingShares,
  readAudit,
  stagePendingShare,
  startCeremony,
  type Db,
} from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import type { CeremonyOutcomeAnswer } from "../../src/shared/wire/node-rpc.ts";

const WALLET: WalletRecord = {
  walletId: "w-recovery",
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(9)),
  publicPackage: new Uint8Array(40).fill(1),
  chainCode: new Uint8Array(32).fill(2),
};

let dir: string;
let files = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tss-recovery-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh libsql file holding node `nodeId`'s active share of WALLET at generation 0. */
function storeFor(nodeId: string, partyIndex: number): Db {
  const { db } = openStore({ path: join(dir, `n${files++}.db`) });
  insertWallet(db, { ...WALLET, generation: 0 });
  insertActiveShare(db, share(nodeId, partyIndex, 0));
  return db;
}

const share = (nodeId: string, partyIndex: number, generation: number, sessionId?: string) => ({
  walletId: WALLET.walletId,
  nodeId,
  partyIndex,
  generation,
  sealedShare: Uint8Array.of(generation + 1),
  kmsCiphertextBlob: Uint8Array.of(7),
  kmsKeyId: "arn:key",
  ...(sessionId === undefined ? {} : { sessionId }),
});

/** What the host asks of its enclave in these tests, answered as the enclave would for party `partyIndex`. */
function enclaveStandIn(partyIndex: number): EnclaveClient {
  return {
    startCeremony: async () => ({ messages: [], generation: 1 }),
    abortCeremony: async () => ({ dropped: true }),
    sealShare: async () => ({
      sealed: Uint8Array.of(2),
      ciphertextBlob: Uint8Array.of(7),
      kmsKeyId: "arn:key",
      generation: 1,
      partyIndex,
      publicKey: WALLET.publicKey,
    }),
    activateShare: async () => ({ generation: 1, partyIndex }),
  } as unknown as EnclaveClient;
}

function host(nodeId: string, partyIndex: number, o: { db?: Db; graceMs?: number } = {}) {
  return new NodeHost({
    nodeId,
    enclave: enclaveStandIn(partyIndex),
    credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
    db: o.db ?? storeFor(nodeId, partyIndex),
    pendingGraceMs: o.graceMs ?? 60_000,
  });
}

const refreshStart = (sessionId: Uint8Array) => ({
  kind: "refresh" as const,
  sessionId,
  walletId: WALLET.walletId,
  expectedGeneration: 0,
  peerDocuments: [],
  peerParties: [],
});
const FINAL = { messages: [], generation: 1 };

/** Peers answering fixed words. */
const answering =
  (answers: Record<string, CeremonyOutcomeAnswer | null>): OutcomeSource =>
  async () =>
    Object.entries(answers).map(([nodeId, answer]) => ({ nodeId, answer }));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: unknown }).code);
  }
  throw new Error("expected a refusal");
}

describe("rollback scope", () => {
  it("abortRefresh with a session removes only that session's pending rows", () => {
    const db = storeFor("n1", 1);
    const a = toHex(randomBytes(32));
    const b = toHex(randomBytes(32));
    stagePendingShare(db, share("n1", 1, 1, a));
    expect(pendingShares(db, "n1")[0]!.sessionId).toBe(a);
    expect(abortRefresh(db, WALLET.walletId, "n1", b)).toBe(0);
    expect(pendingShares(db, "n1")).toHaveLength(1);
    expect(abortRefresh(db, WALLET.walletId, "n1", a)).toBe(1);
    expect(pendingShares(db, "n1")).toHaveLength(0);
  });

  it("a node's rollback of session B leaves session A's pending share in place", async () => {
    const n1 = host("n1", 1);
    const a = randomBytes(32);
    await n1.start(refreshStart(a));
    await n1.persist("refresh", a, WALLET, FINAL);
    await n1.rollback("refresh", randomBytes(32), WALLET.walletId);
    expect(pendingShares(n1.db, "n1").map((p) => p.sessionId)).toEqual([toHex(a)]);
    // n1 stored session a: it rolls back only on a peer's rollback (here n3, which never stored it).
    n1.outcomeSource = answering({
      n2: { outcome: "pending", generation: 1 },
      n3: { outcome: "rolled_back", generation: 1 },
    });
    await n1.rollback("refresh", a, WALLET.walletId);
    expect(pendingShares(n1.db, "n1")).toEqual([]);
    expect(generationOf(n1.db, WALLET.walletId)).toBe(0);
    // Rolled back is final: the coordinator's commit of it now is refused.
    expect(await codeOf(n1.commit("refresh", a, WALLET.walletId, 1))).toBe("conflict");
  });
});

describe("one DKG/refresh per wallet at a time", () => {
  it("refuses a second refresh while the first runs, and while its pending share is unresolved", async () => {
    const n1 = host("n1", 1);
    const a = randomBytes(32);
    await n1.start(refreshStart(a));
    expect(await codeOf(n1.start(refreshStart(randomBytes(32))))).toBe("conflict");
    await n1.persist("refresh", a, WALLET, FINAL);
    // A later host (restarted: no memory of the run) still finds the pending share.
    const restarted = host("n1", 1, { db: n1.db });
    const e = await restarted.start(refreshStart(randomBytes(32))).catch((x: Error) => x);
    expect((e as { code?: string }).code).toBe("conflict");
    expect((e as Error).message).toMatch(/pending share .* not resolved/);
    // Signing is not a ceremony of the wallet's shares: it is not held up.
    await expect(
      restarted.start({ ...refreshStart(randomBytes(32)), kind: "sign" }),
    ).resolves.toBeTruthy();
    // After its commit the wallet is free again.
    await n1.commit("refresh", a, WALLET.walletId, 1);
    await expect(restarted.start(refreshStart(randomBytes(32)))).resolves.toBeTruthy();
  });

  it("frees the wallet when the session is aborted", async () => {
    const n1 = host("n1", 1);
    const a = randomBytes(32);
    await n1.start(refreshStart(a));
    await n1.abort(a);
    await expect(n1.start(refreshStart(randomBytes(32)))).resolves.toBeTruthy();
  });
});

describe("commit convergence", () => {
  it("answers ceremonyOutcome, and fences a session it never stored", async () => {
    const n1 = host("n1", 1);
    const n3 = host("n3", 3);
    const a = randomBytes(32);
    await n1.start(refreshStart(a));
    await n1.persist("refresh", a, WALLET, FINAL);
    expect(n1.ceremonyOutcome(WALLET.walletId, a)).toEqual({ outcome: "pending", generation: 1 });
    expect(n1.ceremonyOutcome("w-other", a)).toEqual({ outcome: "unknown" });
    // n3 never stored session a: it answers rolled back and refuses a late persist of it.
    expect(n3.ceremonyOutcome(WALLET.walletId, a).outcome).toBe("rolled_back");
    expect(await codeOf(n3.persist("refresh", a, WALLET, FINAL))).toBe("conflict");
    await n1.commit("refresh", a, WALLET.walletId, 1);
    expect(n1.ceremonyOutcome(WALLET.walletId, a)).toEqual({
      outcome: "committed",
      generation: 1,
    });
  });

  /** Node n1 with session a's share pending, restarted, with peers answering `answers`. */
  async function pendingAfterRestart(
    answers: Record<string, CeremonyOutcomeAnswer | null>,
    graceMs = 60_000,
  ) {
    const before = host("n1", 1);
    const a = randomBytes(32);
    await before.start(refreshStart(a));
    await before.persist("refresh", a, WALLET, FINAL);
    const n1 = host("n1", 1, { db: before.db, graceMs });
    n1.outcomeSource = answering(answers);
    return { n1, a, resolved: await n1.resolvePending() };
  }

  it("commits when any peer committed: the pending share becomes current, the old one is gone", async () => {
    // With its proof (the stand-in enclave accepts any receipts; test/integration/commit-proof.test.ts
    // has real ones, and a "committed" without them while a holder is silent stays pending).
    const { n1, resolved } = await pendingAfterRestart({
      n2: { outcome: "committed", generation: 1, receipts: [Uint8Array.of(5)] },
      n3: null,
    });
    expect(resolved.map((r) => r.decision)).toEqual(["committed"]);
    expect(generationOf(n1.db, WALLET.walletId)).toBe(1);
    expect(listShares(n1.db, WALLET.walletId, "n1").map((s) => [s.generation, s.status])).toEqual([
      [1, "active"],
    ]);
  });

  it("rolls back when a peer rolled back (or fenced) and none committed", async () => {
    const { n1, a, resolved } = await pendingAfterRestart({
      n2: { outcome: "pending", generation: 1 },
      n3: { outcome: "rolled_back", generation: 1 },
    });
    expect(resolved.map((r) => r.decision)).toEqual(["rolled_back"]);
    expect(generationOf(n1.db, WALLET.walletId)).toBe(0);
    expect(pendingShares(n1.db, "n1")).toEqual([]);
    expect(await codeOf(n1.commit("refresh", a, WALLET.walletId, 1))).toBe("conflict");
  });

  it("leaves it pending while a peer is silent or the coordinator may still decide", async () => {
    const silent = await pendingAfterRestart({ n2: { outcome: "pending" }, n3: null }, 0);
    expect(silent.resolved.map((r) => r.decision)).toEqual(["pending"]);
    const fresh = await pendingAfterRestart({
      n2: { outcome: "pending" },
      n3: { outcome: "pending" },
    });
    expect(fresh.resolved.map((r) => r.decision)).toEqual(["pending"]);
    expect(pendingShares(fresh.n1.db, "n1")).toHaveLength(1);
  });

  it("commits when every other holder holds it pending past the grace", async () => {
    const { n1, resolved } = await pendingAfterRestart(
      { n2: { outcome: "pending" }, n3: { outcome: "pending" }, n4: { outcome: "unknown" } },
      0,
    );
    expect(resolved.map((r) => r.decision)).toEqual(["committed"]);
    expect(generationOf(n1.db, WALLET.walletId)).toBe(1);
  });

  it("settles a pending share before taking part in the wallet's next refresh", async () => {
    const before = host("n1", 1);
    const a = randomBytes(32);
    await before.start(refreshStart(a));
    await before.persist("refresh", a, WALLET, FINAL);
    const n1 = host("n1", 1, { db: before.db });
    n1.outcomeSource = answering({
      n2: { outcome: "committed", generation: 1, receipts: [Uint8Array.of(5)] },
    });
    await expect(
      n1.start({ ...refreshStart(randomBytes(32)), expectedGeneration: 1 }),
    ).resolves.toBeTruthy();
    expect(generationOf(n1.db, WALLET.walletId)).toBe(1);
  });
});

describe("a coordinator's rollback once holders stored (the order the grace rule left open)", () => {
  /** Three holders on their own stores, asking one another directly as the ceremonyOutcome op would. */
  async function threeHolders(storedOn: string[]) {
    const hosts = [
      host("n1", 1, { graceMs: 0 }),
      host("n2", 2, { graceMs: 0 }),
      host("n3", 3, { graceMs: 0 }),
    ];
    const a = randomBytes(32);
    for (const h of hosts) {
      h.outcomeSource = async (walletId, sessionId) =>
        hosts
          .filter((o) => o !== h)
          .map((o) => ({ nodeId: o.nodeId, answer: o.ceremonyOutcome(walletId, sessionId) }));
      await h.start(refreshStart(a));
      if (storedOn.includes(h.nodeId)) await h.persist("refresh", a, WALLET, FINAL);
    }
    // The session has ended on each (the participants' abort when the coordinator's Last Will
    // or phase deadline came, or the slot's end): their pending shares are open to settling.
    for (const h of hosts) await h.abort(a);
    return { hosts, a };
  }
  const generations = (hosts: NodeHost[]) => hosts.map((h) => generationOf(h.db, WALLET.walletId));

  it("a holder commits on all pending while the live coordinator rolls back (a persist reply lost): every holder commits", async () => {
    const { hosts, a } = await threeHolders(["n1", "n2", "n3"]);
    const [n1, n2, n3] = hosts as [NodeHost, NodeHost, NodeHost];
    // n1 settles its pending share (past the grace) and has just heard "pending" from n2 and n3;
    // before it decides, the coordinator, which took n3's lost persist reply for a failure,
    // rolls back on every holder. That was the uncovered order: n2 and n3 rolled back, n1 committed.
    const ask = n1.outcomeSource!;
    let coordinatorRollback: Promise<unknown> | undefined;
    n1.outcomeSource = async (walletId, sessionId) => {
      const answers = await ask(walletId, sessionId);
      expect(answers.map((x) => x.answer?.outcome)).toEqual(["pending", "pending"]);
      coordinatorRollback = Promise.all(
        [n2, n3].map((h) => h.rollback("refresh", a, WALLET.walletId)),
      );
      await coordinatorRollback;
      return answers;
    };
    const resolved = await n1.resolvePending();
    expect(resolved.map((r) => r.decision)).toEqual(["committed"]);
    // The coordinator's rollback reaching n1 last is refused: committed is final.
    expect(await codeOf(n1.rollback("refresh", a, WALLET.walletId))).toBe("conflict");
    await coordinatorRollback;
    expect(generations(hosts)).toEqual([1, 1, 1]);
    for (const h of hosts) {
      expect(pendingShares(h.db, h.nodeId)).toEqual([]);
      expect(h.ceremonyOutcome(WALLET.walletId, a).outcome).toBe("committed");
    }
  });

  it("the coordinator's rollback first, then a holder settles: still every holder commits", async () => {
    const { hosts, a } = await threeHolders(["n1", "n2", "n3"]);
    await Promise.all(hosts.slice(1).map((h) => h.rollback("refresh", a, WALLET.walletId)));
    expect((await hosts[0]!.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    expect(generations(hosts)).toEqual([1, 1, 1]);
  });

  it("a holder that never stored: the rollback is fenced there and every holder rolls back, a late persist refused", async () => {
    const { hosts, a } = await threeHolders(["n1", "n2"]);
    const [n1, n2, n3] = hosts as [NodeHost, NodeHost, NodeHost];
    await Promise.all(hosts.map((h) => h.rollback("refresh", a, WALLET.walletId)));
    expect(generations(hosts)).toEqual([0, 0, 0]);
    for (const h of hosts) expect(pendingShares(h.db, h.nodeId)).toEqual([]);
    expect(await codeOf(n3.persist("refresh", a, WALLET, FINAL))).toBe("conflict");
    expect(await codeOf(n1.commit("refresh", a, WALLET.walletId, 1))).toBe("conflict");
    expect(n2.ceremonyOutcome(WALLET.walletId, a).outcome).toBe("rolled_back");
  });

  it("a stored holder that hears from no peer keeps the share pending rather than roll back alone", async () => {
    const { hosts, a } = await threeHolders(["n1", "n2", "n3"]);
    const n1 = hosts[0]!;
    n1.outcomeSource = answering({ n2: { outcome: "pending", generation: 1 }, n3: null });
    await n1.rollback("refresh", a, WALLET.walletId);
    expect(pendingShares(n1.db, "n1").map((p) => p.sessionId)).toEqual([toHex(a)]);
    // n3 answers later: all pending, the share commits (n2 and n3 follow from n1's commit).
    n1.outcomeSource = answering({
      n2: { outcome: "pending", generation: 1 },
      n3: { outcome: "pending", generation: 1 },
    });
    expect((await n1.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    for (const h of hosts.slice(1))
      expect((await h.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    expect(generations(hosts)).toEqual([1, 1, 1]);
  });
});

describe("a restarted coordinator's running ceremonies", () => {
  it("are marked failed with a ceremony_aborted audit row; other coordinators' are left alone", async () => {
    const db = storeFor("n1", 1);
    const mine = toHex(randomBytes(32));
    const theirs = toHex(randomBytes(32));
    startCeremony(
      db,
      {
        ceremonyId: mine,
        kind: "sign",
        walletId: WALLET.walletId,
        coordinator: "n1",
        participants: ["n1", "n2"],
        requestId: "req-1",
      },
      Date.now() - 1000,
    );
    startCeremony(db, {
      ceremonyId: theirs,
      kind: "sign",
      walletId: WALLET.walletId,
      coordinator: "n2",
      participants: ["n1", "n2"],
    });
    const restartedHost = host("n1", 1, { db });
    // A ceremony this host starts itself after its start-up is live, not stale.
    const live = toHex(randomBytes(32));
    startCeremony(
      db,
      {
        ceremonyId: live,
        kind: "sign",
        walletId: WALLET.walletId,
        coordinator: "n1",
        participants: ["n1", "n2"],
      },
      Date.now() + 1,
    );
    const r = await restartedHost.recover();
    expect(r.staleCeremonies).toEqual([mine]);
    expect(getCeremony(db, mine)!.status).toBe("failed");
    expect(getCeremony(db, mine)!.error).toMatch(/restarted/);
    expect(getCeremony(db, theirs)!.status).toBe("running");
    expect(getCeremony(db, live)!.status).toBe("running");
    const aborted = readAudit(db).filter((e) => e.event === "ceremony_aborted");
    expect(aborted).toHaveLength(1);
    expect(aborted[0]).toMatchObject({ ceremonyId: mine, walletId: WALLET.walletId });
    expect(aborted[0]!.detail).toMatchObject({ requestId: "req-1", code: "ceremony_failed" });
    // Once resolved they stay resolved: a later start-up finds only what ran since.
    await new Promise((r) => setTimeout(r, 5));
    expect((await host("n1", 1, { db }).recover()).staleCeremonies).toEqual([live]);
  });
});
