/**
 * A reshare's pending share is settled against its own committee (security review H1, M1),
 * on a real libsql file: a dealer of a 2-of-3 wallet reshared to 3-of-4 holds its pending
 * share with the committee and shape its enclave finished with (pending_shapes). Its wallet
 * row still says n_old = 3 until the commit, so "every other holder reports pending" must
 * mean every named member, not n_old - 1 answers: with the added node silent, or "unknown"
 * (it never stored), the share stays pending and the old one active. Once every member says
 * pending, the store-only commit applies the kept t, n and package to the row.
 * No enclave is asked for anything here: the settlement is the host's store decision.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { NodeHost, type OutcomeSource } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import {
  getWallet,
  insertActiveShare,
  insertWallet,
  keepPendingShape,
  listShares,
  openStore,
  pendingShape,
  stagePendingShare,
  type Db,
} from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import type { CeremonyOutcomeAnswer } from "../../src/shared/wire/node-rpc.ts";

const W = {
  walletId: "w-reshare-settle",
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(9)),
  publicPackage: new Uint8Array(40).fill(1),
  chainCode: new Uint8Array(32).fill(2),
};
const COMMITTEE = ["node-1", "node-2", "node-3", "node-4"];
const NEW_PACKAGE = new Uint8Array(48).fill(5);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tss-reshare-settle-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (generation: number, sessionId?: string) => ({
  walletId: W.walletId,
  nodeId: "node-1",
  partyIndex: 1,
  generation,
  sealedShare: Uint8Array.of(generation + 1),
  kmsCiphertextBlob: Uint8Array.of(7),
  kmsKeyId: "arn:key",
  ...(sessionId === undefined ? {} : { sessionId }),
});

/** node-1's store: active share at generation 0, the reshare's pending one at 1 with its shape. */
function dealerStore(session: string): Db {
  const { db } = openStore({ path: join(dir, `${session.slice(0, 8)}.db`) });
  insertWallet(db, { ...W, generation: 0 });
  insertActiveShare(db, row(0));
  db.transaction(() => {
    stagePendingShare(db, row(1, session));
    keepPendingShape(db, W.walletId, "node-1", session, {
      threshold: 3,
      parties: 4,
      publicPackage: NEW_PACKAGE,
      committee: COMMITTEE,
    });
  });
  return db;
}

const answering =
  (answers: Record<string, CeremonyOutcomeAnswer | null>): OutcomeSource =>
  async () =>
    Object.entries(answers).map(([nodeId, answer]) => ({ nodeId, answer }));

function dealer(db: Db, outcomes: OutcomeSource): NodeHost {
  const h = new NodeHost({
    nodeId: "node-1",
    // Never reached by a store-only settlement (abort's failure is logged and ignored).
    enclave: {} as EnclaveClient,
    credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
    db,
    pendingGraceMs: 0,
    log: () => {},
  });
  h.outcomeSource = outcomes;
  return h;
}

const pending = { outcome: "pending" as const, generation: 1 };

describe("a reshare's pending share is settled against its committee, by node id", () => {
  it.each([
    ["silent", null],
    ["unknown", { outcome: "unknown" as const }],
  ])("the added node %s: n_old - 1 pending answers do not commit it", async (_, added) => {
    const session = toHex(randomBytes(32));
    const db = dealerStore(session);
    const h = dealer(db, answering({ "node-2": pending, "node-3": pending, "node-4": added }));
    const [r] = await h.resolvePending(W.walletId);
    expect(r?.decision).toBe("pending");
    // The old share stays active, the row keeps the old shape.
    expect(listShares(db, W.walletId, "node-1").map((s) => [s.generation, s.status])).toEqual([
      [0, "active"],
      [1, "pending"],
    ]);
    expect(getWallet(db, W.walletId)).toMatchObject({ threshold: 2, parties: 3 });
  });

  it("a node outside the committee does not count, pending or rolled back", async () => {
    const session = toHex(randomBytes(32));
    const db = dealerStore(session);
    const h = dealer(
      db,
      answering({ "node-2": pending, "node-3": pending, "node-9": pending, "node-4": null }),
    );
    expect((await h.resolvePending(W.walletId))[0]?.decision).toBe("pending");
    // Nor does its "rolled back": the share stays pending, the old one active.
    const lying = dealer(
      db,
      answering({
        "node-2": pending,
        "node-3": pending,
        "node-9": { outcome: "rolled_back", generation: 1 },
      }),
    );
    expect((await lying.resolvePending(W.walletId))[0]?.decision).toBe("pending");
  });

  it("every member pending: committed in the store with the kept t, n and package", async () => {
    const session = toHex(randomBytes(32));
    const db = dealerStore(session);
    const h = dealer(db, answering({ "node-2": pending, "node-3": pending, "node-4": pending }));
    expect((await h.resolvePending(W.walletId))[0]?.decision).toBe("committed");
    expect(listShares(db, W.walletId, "node-1").map((s) => [s.generation, s.status])).toEqual([
      [1, "active"],
    ]);
    const w = getWallet(db, W.walletId)!;
    expect([w.threshold, w.parties, toHex(w.publicPackage)]).toEqual([3, 4, toHex(NEW_PACKAGE)]);
    expect(pendingShape(db, W.walletId, "node-1", session)).toBeUndefined();
  });
});
