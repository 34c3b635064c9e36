/**
 * Only the node that started a DKG/refresh on a holder may persist, commit or roll it back
 * there over node RPC (NodeHost.refuseNonFinisher), as for step and abort. A holder settling
 * from its peers (ceremonyOutcome) is not such a call and stays open to every node. Real
 * libsql files; the enclave is a stand-in answering only what the host relays (as in
 * ceremony-recovery.test.ts), the RPC server side is the real one (serveNodeOps).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeHost } from "../../src/host/node-host.ts";
import { serveNodeOps } from "../../src/host/remote-participant.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import {
  generationOf,
  insertActiveShare,
  insertWallet,
  openStore,
  pendingShares,
} from "../../src/host/store/index.ts";
import type { WalletRecord } from "../../src/host/participant.ts";

const WALLET: WalletRecord = {
  walletId: "w-finish",
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(9)),
  publicPackage: new Uint8Array(40).fill(1),
  chainCode: new Uint8Array(32).fill(2),
};
const FINAL = { messages: [], generation: 1 };

let dir: string;
let files = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tss-finish-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function holder(nodeId: string, partyIndex: number) {
  const { db } = openStore({ path: join(dir, `n${files++}.db`) });
  insertWallet(db, { ...WALLET, generation: 0 });
  insertActiveShare(db, {
    walletId: WALLET.walletId,
    nodeId,
    partyIndex,
    generation: 0,
    sealedShare: Uint8Array.of(1),
    kmsCiphertextBlob: Uint8Array.of(7),
    kmsKeyId: "arn:key",
  });
  const activated: number[] = [];
  const receiptsSeen: (Uint8Array[] | undefined)[] = [];
  const enclave = {
    startCeremony: async () => ({ messages: [], generation: 1 }),
    stepCeremony: async () => ({ messages: [], generation: 1 }),
    abortCeremony: async () => ({ dropped: true }),
    sealShare: async () => ({
      sealed: Uint8Array.of(2),
      ciphertextBlob: Uint8Array.of(7),
      kmsKeyId: "arn:key",
      generation: 1,
      partyIndex,
      publicKey: WALLET.publicKey,
      receipt: Uint8Array.of(5),
    }),
    activateShare: async (req: { sealReceipts?: Uint8Array[] }) => {
      receiptsSeen.push(req.sealReceipts);
      activated.push(1);
      return { generation: 1, partyIndex };
    },
  } as unknown as EnclaveClient;
  const host = new NodeHost({
    nodeId,
    enclave,
    credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
    db,
    pendingGraceMs: 60_000,
  });
  return { host, rpc: serveNodeOps(host), activated, receiptsSeen };
}

/** What a node RPC call from `caller` answers: its result, or the refusal's code. */
async function call(
  rpc: ReturnType<typeof serveNodeOps>,
  op: string,
  args: unknown,
  caller: string,
): Promise<unknown> {
  try {
    return await rpc(op, args, caller);
  } catch (e) {
    return { refused: (e as { code?: unknown }).code, message: (e as Error).message };
  }
}

/** Node n2's part of refresh `sessionId`, started and run to its last phase by node-1. */
async function finishedOnN2(sessionId: Uint8Array) {
  const n2 = holder("node-2", 2);
  const start = {
    kind: "refresh",
    sessionId,
    walletId: WALLET.walletId,
    expectedGeneration: 0,
    peerDocuments: [],
    peerParties: [],
  };
  expect(await call(n2.rpc, "start", start, "node-1")).toMatchObject({ generation: 1 });
  for (const phase of [2, 3, 4])
    expect(await call(n2.rpc, "step", { sessionId, phase, messages: [] }, "node-1")).toMatchObject({
      generation: 1,
    });
  return n2;
}

const persistArgs = (sessionId: Uint8Array) => ({
  kind: "refresh",
  sessionId,
  wallet: WALLET,
  final: FINAL,
});
const commitArgs = (sessionId: Uint8Array) => ({
  kind: "refresh",
  sessionId,
  walletId: WALLET.walletId,
  generation: 1,
  receipts: [Uint8Array.of(5)],
});

describe("persist, commit and rollback: only the session's starter", () => {
  it("refuses another node's persist, commit and rollback; the starter's go through", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    for (const caller of ["node-3", "node-2"]) {
      expect(await call(n2.rpc, "persist", persistArgs(a), caller)).toMatchObject({
        refused: "unauthorised",
      });
      expect(await call(n2.rpc, "commit", commitArgs(a), caller)).toMatchObject({
        refused: "unauthorised",
      });
      expect(
        await call(
          n2.rpc,
          "rollback",
          { kind: "refresh", sessionId: a, walletId: WALLET.walletId },
          caller,
        ),
      ).toMatchObject({ refused: "unauthorised" });
    }
    // Nothing was stored, committed or fenced by the refused calls.
    expect(pendingShares(n2.host.db, "node-2")).toEqual([]);
    expect(await call(n2.rpc, "persist", persistArgs(a), "node-1")).toEqual({
      receipt: Uint8Array.of(5),
    });
    expect(pendingShares(n2.host.db, "node-2").map((p) => p.generation)).toEqual([1]);
    // Another node's commit of the stored share is refused too: it stays pending.
    expect(await call(n2.rpc, "commit", commitArgs(a), "node-3")).toMatchObject({
      refused: "unauthorised",
    });
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(0);
    expect(n2.activated).toEqual([]);
    expect(await call(n2.rpc, "commit", commitArgs(a), "node-1")).toEqual({});
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(1);
    expect(n2.activated).toEqual([1]);
    // The enclave was asked with the receipts the coordinator handed in, before the store committed.
    expect(n2.receiptsSeen).toEqual([[Uint8Array.of(5)]]);
  });

  it("refuses a commit of a session this host never saw finish (unknown starter), any caller", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    expect(await call(n2.rpc, "persist", persistArgs(a), "node-1")).toMatchObject({});
    const other = randomBytes(32);
    expect(await call(n2.rpc, "commit", commitArgs(other), "node-1")).toMatchObject({
      refused: "unauthorised",
    });
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(0);
  });

  it("a rollback before the last phase: only the starter's counts", async () => {
    const a = randomBytes(32);
    const n2 = holder("node-2", 2);
    await call(
      n2.rpc,
      "start",
      {
        kind: "refresh",
        sessionId: a,
        walletId: WALLET.walletId,
        expectedGeneration: 0,
        peerDocuments: [],
        peerParties: [],
      },
      "node-1",
    );
    const rollback = { kind: "refresh", sessionId: a, walletId: WALLET.walletId };
    expect(await call(n2.rpc, "rollback", rollback, "node-3")).toMatchObject({
      refused: "unauthorised",
    });
    // Not fenced by node-3: the session is still node-1's.
    expect(n2.host.ceremonyOutcome(WALLET.walletId, a).outcome).not.toBe("committed");
    expect(await call(n2.rpc, "rollback", rollback, "node-1")).toEqual({});
  });

  it("ceremonyOutcome (a holder settling from its peers) stays open to any node", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    expect(await call(n2.rpc, "persist", persistArgs(a), "node-1")).toMatchObject({});
    expect(
      await call(n2.rpc, "ceremonyOutcome", { walletId: WALLET.walletId, sessionId: a }, "node-3"),
    ).toMatchObject({ outcome: "pending", generation: 1 });
  });
});

describe("a coordinator that commits a session one holder never stored", () => {
  it("the enclave's refusal (too few seal receipts) leaves the store pending with the old share active", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    await call(n2.rpc, "persist", persistArgs(a), "node-1");
    // The stand-in refuses as the enclave does without a receipt from every party (seal-receipts.ts).
    (n2.host as unknown as { enclave: { activateShare: unknown } }).enclave.activateShare =
      async () => {
        throw Object.assign(
          new Error(
            "seal receipts refused: needs one receipt from each of the session's 3 parties",
          ),
          {
            code: "bad_request",
          },
        );
      };
    expect(await call(n2.rpc, "commit", commitArgs(a), "node-1")).toMatchObject({
      refused: "bad_request",
    });
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(0);
    expect(pendingShares(n2.host.db, "node-2").map((p) => p.generation)).toEqual([1]);
    expect(n2.host.ceremonyOutcome(WALLET.walletId, a).outcome).toBe("pending");
  });

  it("settling from peers that contradict each other (committed and rolled back) keeps the share pending", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    await call(n2.rpc, "persist", persistArgs(a), "node-1");
    // node-1 (the coordinator) claims it committed; node-3, which it skipped, never stored it.
    n2.host.outcomeSource = async () => [
      { nodeId: "node-1", answer: { outcome: "committed", generation: 1 } },
      { nodeId: "node-3", answer: { outcome: "rolled_back", generation: 1 } },
    ];
    await call(
      n2.rpc,
      "rollback",
      { kind: "refresh", sessionId: a, walletId: WALLET.walletId },
      "node-1",
    );
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(0);
    expect(pendingShares(n2.host.db, "node-2").map((p) => p.generation)).toEqual([1]);
    expect((await n2.host.resolvePending()).map((r) => r.decision)).toEqual(["pending"]);
  });

  it("the coordinator's committed while the skipped holder is silent: pending without a proof the enclave accepts", async () => {
    const a = randomBytes(32);
    const n2 = await finishedOnN2(a);
    await call(n2.rpc, "persist", persistArgs(a), "node-1");
    // A restarted host (the live ceremony's slot would skip the session); same store and enclave.
    const settling = new NodeHost({
      nodeId: "node-2",
      enclave: (n2.host as unknown as { enclave: EnclaveClient }).enclave,
      credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
      db: n2.host.db,
    });
    const claim = (receipts?: Uint8Array[]) => async () => [
      {
        nodeId: "node-1",
        answer: { outcome: "committed" as const, generation: 1, ...(receipts && { receipts }) },
      },
      { nodeId: "node-3", answer: null },
    ];
    // The bare word: the enclave is not even asked.
    settling.outcomeSource = claim();
    expect((await settling.resolvePending()).map((r) => r.decision)).toEqual(["pending"]);
    expect(n2.receiptsSeen).toEqual([]);
    // Receipts the enclave refuses (the stand-in refuses as seal-receipts.ts does without node-3's).
    const enclave = (settling as unknown as { enclave: { activateShare: unknown } }).enclave;
    const accept = enclave.activateShare;
    enclave.activateShare = async () => {
      throw Object.assign(new Error("seal receipts refused: party 3 missing"), {
        code: "bad_request",
      });
    };
    settling.outcomeSource = claim([Uint8Array.of(5), Uint8Array.of(6)]);
    expect((await settling.resolvePending()).map((r) => r.decision)).toEqual(["pending"]);
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(0);
    // Receipts it accepts: committed, and node-2 now answers with that proof.
    enclave.activateShare = accept;
    settling.outcomeSource = claim([Uint8Array.of(5), Uint8Array.of(6), Uint8Array.of(7)]);
    expect((await settling.resolvePending()).map((r) => r.decision)).toEqual(["committed"]);
    expect(n2.receiptsSeen).toEqual([[Uint8Array.of(5), Uint8Array.of(6), Uint8Array.of(7)]]);
    expect(generationOf(n2.host.db, WALLET.walletId)).toBe(1);
    expect(settling.ceremonyOutcome(WALLET.walletId, a)).toEqual({
      outcome: "committed",
      generation: 1,
      receipts: [Uint8Array.of(5), Uint8Array.of(6), Uint8Array.of(7)],
    });
  });
});
