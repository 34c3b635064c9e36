/**
 * The coordinator's checks of a share repair request before anything runs
 * (src/host/share-repair.ts planRepair), and who it counts as replaced
 * (replacedHolders): a party out of range, a target that already holds a
 * share or is offline, too few helpers, a complete refresh that would miss a
 * holder are refused with their own sentence; the helpers are t current
 * holders, the coordinator first. A node told it was replaced deletes its
 * rows only when max(t, n - t + 1) peers answer at a newer generation, one
 * of them holding its party index (checkReplacedHere, over a real store).
 */
import { describe, expect, it } from "vitest";
import { checkReplacedHere, planRepair, replacedHolders } from "../../src/host/share-repair.ts";
import { RequestError } from "../../src/host/planning.ts";
import {
  insertActiveShare,
  insertWallet,
  migrate,
  openDatabase,
  readAudit,
  walletMembers,
} from "../../src/host/store/index.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";

const held = (nodeId: string, partyIndex: number, generation = 3): HeldWallet => ({
  walletId: "w_r",
  threshold: 3,
  parties: 5,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(0x11)),
  publicPackage: new Uint8Array(1),
  chainCode: new Uint8Array(32),
  nodeId,
  partyIndex,
  generation,
});
// Node 5 (party 5) is lost: not among the answers.
const holders = [1, 2, 3, 4].map((p) => held(`node-${p}`, p));
const live = ["node-1", "node-2", "node-3", "node-4", "node-6"];
const request = { walletId: "w_r", party: 5, toNode: "node-6" };

function refused(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof RequestError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("not refused");
}

describe("planRepair", () => {
  it("takes t helpers, the coordinator first, and every other holder into the refresh", () => {
    const plan = planRepair("node-3", live, request, holders);
    expect(plan.helpers.map((h) => h.nodeId)).toEqual(["node-3", "node-1", "node-2"]);
    expect(plan.others.map((h) => h.partyIndex)).toEqual([1, 2, 3, 4]);
    expect(plan.fromNode).toBeUndefined();
    expect(plan.generation).toBe(3);
  });

  it("refuses bad input with its own code and sentence", () => {
    expect(refused(() => planRepair("node-1", live, { ...request, party: 6 }, holders))).toEqual({
      code: "bad_request",
      message: "party must be a party index of wallet w_r: 1..5",
    });
    expect(
      refused(() => planRepair("node-1", live, { ...request, toNode: "node-2" }, holders)),
    ).toEqual({ code: "bad_request", message: "node node-2 already holds party 2 of wallet w_r" });
    expect(refused(() => planRepair("node-1", live.slice(0, 4), request, holders)).code).toBe(
      "not_enough_nodes",
    );
    // Two holders lost: too few helpers for a 3-of-5 after one more is missing, and no complete refresh.
    expect(refused(() => planRepair("node-1", live, request, holders.slice(0, 2)))).toEqual({
      code: "not_enough_nodes",
      message: "a repair needs 3 helpers holding generation 3; 2 are online",
    });
    expect(refused(() => planRepair("node-1", live, request, holders.slice(0, 3)))).toEqual({
      code: "not_enough_nodes",
      message:
        "the complete refresh after a repair needs every other holder online; parties 4 are not",
    });
  });

  it("counts a holder of an older generation as replaced only when another node holds its party now", () => {
    const after = [...holders.map((h) => ({ ...h, generation: 4 })), held("node-6", 5, 4)];
    expect(replacedHolders([...after, held("node-5", 5, 3)])).toEqual(["node-5"]);
    // Merely behind (its party held by no one else): settled by refresh recovery, not removed.
    expect(replacedHolders([...after.slice(0, 4), held("node-5", 5, 3)])).toEqual([]);
  });
});

describe("checkReplacedHere", () => {
  function lostNode() {
    const db = openDatabase({ path: ":memory:" });
    migrate(db);
    const { nodeId: _n, partyIndex: _p, generation, ...record } = held("node-5", 5);
    insertWallet(db, { ...record, generation });
    insertActiveShare(db, {
      walletId: "w_r",
      nodeId: "node-5",
      partyIndex: 5,
      generation,
      sealedShare: new Uint8Array(40).fill(7),
      kmsCiphertextBlob: new Uint8Array(40).fill(8),
      kmsKeyId: "k",
    });
    return db;
  }
  const node = (db: ReturnType<typeof lostNode>, answers: HeldWallet[]) => ({
    nodeId: "node-5",
    db,
    holders: async () => answers,
    forget() {},
    log() {},
  });
  const shares = (db: ReturnType<typeof lostNode>) =>
    db.get("SELECT count(*) AS c FROM shares WHERE wallet_id = 'w_r'")?.c;

  it("keeps its rows on too few or no confirming answers, deletes them on enough", async () => {
    const db = lostNode();
    const newer = [1, 2, 3, 4].map((p) => held(`node-${p}`, p, 4));
    // Its party held by nobody else at the newer generation: merely behind.
    expect(await checkReplacedHere(node(db, newer), "w_r")).toEqual({ replaced: false });
    // Only two answers at the newer generation, one of them node 6 with party 5: max(3, 3) = 3 needed.
    expect(await checkReplacedHere(node(db, [newer[0]!, held("node-6", 5, 4)]), "w_r")).toEqual({
      replaced: false,
    });
    expect(shares(db)).toBe(1);
    expect(
      await checkReplacedHere(node(db, [...newer.slice(0, 2), held("node-6", 5, 4)]), "w_r"),
    ).toEqual({ replaced: true });
    expect(shares(db)).toBe(0);
    expect(walletMembers(db, "w_r")).toEqual([{ partyIndex: 5, nodeId: "node-6", generation: 4 }]);
    const audited = readAudit(db).filter((x) => x.event === "share_replaced");
    expect(audited.map((x) => x.detail)).toEqual([
      expect.objectContaining({ partyIndex: 5, generation: 3, byNode: "node-6" }),
    ]);
    // Nothing left to replace.
    expect(await checkReplacedHere(node(db, newer), "w_r")).toEqual({ replaced: false });
  });
});
