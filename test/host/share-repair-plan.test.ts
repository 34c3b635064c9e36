/**
 * The coordinator's checks of a share repair request before anything runs
 * (src/host/share-repair.ts planRepair), and who it counts as replaced
 * (replacedHolders): a party out of range, a target that already holds a
 * share or is offline, too few helpers, a complete refresh that would miss a
 * holder are refused with their own sentence; the helpers are t current
 * holders, the coordinator first. A node told it was replaced refuses the
 * wallet (and deletes nothing) only when max(t, n - t + 1) peers, each
 * answering as the node asked, answer at a newer generation, one of them
 * holding its party index, and it has no pending share (checkReplacedHere,
 * over a real store); then it no longer reports, loads or starts the wallet.
 */
import { describe, expect, it } from "vitest";
import { checkReplacedHere, planRepair, replacedHolders } from "../../src/host/share-repair.ts";
import { RequestError } from "../../src/host/planning.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import {
  insertActiveShare,
  insertWallet,
  migrate,
  openDatabase,
  readAudit,
  recordWalletMembers,
  replacedBy,
  stagePendingShare,
  walletMembers,
} from "../../src/host/store/index.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";
import { rejected } from "../helpers/thrown.ts";

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
    insertActiveShare(db, share(generation));
    return db;
  }
  const share = (generation: number) => ({
    walletId: "w_r",
    nodeId: "node-5",
    partyIndex: 5,
    generation,
    sealedShare: new Uint8Array(40).fill(7),
    kmsCiphertextBlob: new Uint8Array(40).fill(8),
    kmsKeyId: "k",
    sessionId: "ab".repeat(32),
  });
  // Each answer as the node named in it gave it, unless `asked` says another node was asked.
  const node = (db: ReturnType<typeof lostNode>, answers: HeldWallet[], asked?: string[]) => ({
    nodeId: "node-5",
    db,
    holders: async () => answers.map((h, k) => ({ asked: asked?.[k] ?? h.nodeId, answer: h })),
    forget() {},
    log() {},
  });
  const shares = (db: ReturnType<typeof lostNode>) =>
    db.get("SELECT count(*) AS c FROM shares WHERE wallet_id = 'w_r'")?.c;
  // Node 5's host; its enclave is never reached (the refusals tested come before it).
  const hostOn = (db: ReturnType<typeof lostNode>) =>
    new NodeHost({
      nodeId: "node-5",
      enclave: {} as EnclaveClient,
      credentials: async () => ({ accessKeyId: "id", secretAccessKey: "secret" }),
      db,
    });
  const newer = [1, 2, 3, 4].map((p) => held(`node-${p}`, p, 4));
  const confirming = [...newer.slice(0, 2), held("node-6", 5, 4)];

  it("refuses the wallet on enough confirming answers and deletes nothing", async () => {
    const db = lostNode();
    // Its party held by nobody else at the newer generation: merely behind.
    expect(await checkReplacedHere(node(db, newer), "w_r")).toEqual({ replaced: false });
    // Only two answers at the newer generation, one of them node 6 with party 5: max(3, 3) = 3 needed.
    expect(await checkReplacedHere(node(db, [newer[0]!, held("node-6", 5, 4)]), "w_r")).toEqual({
      replaced: false,
    });
    expect(replacedBy(db, "w_r", "node-5")).toBeNull();
    expect(await checkReplacedHere(node(db, confirming), "w_r")).toEqual({ replaced: true });
    // Unverified hosts' words never destroy a share: the rows stay, the wallet is refused here.
    expect(shares(db)).toBe(1);
    expect(replacedBy(db, "w_r", "node-5")).toEqual({
      nodeId: "node-6",
      partyIndex: 5,
      generation: 4,
    });
    expect(walletMembers(db, "w_r")).toEqual([{ partyIndex: 5, nodeId: "node-6", generation: 4 }]);
    const audited = readAudit(db).filter((x) => x.event === "share_replaced");
    expect(audited.map((x) => x.detail)).toEqual([
      expect.objectContaining({ partyIndex: 5, generation: 3, byNode: "node-6" }),
    ]);
    // Already refused: nothing more is asked or recorded.
    expect(await checkReplacedHere(node(db, []), "w_r")).toEqual({ replaced: true });
    expect(readAudit(db).filter((x) => x.event === "share_replaced")).toHaveLength(1);
  });

  it("counts an answer only as the node asked, and only about this wallet's key", async () => {
    const db = lostNode();
    // Node 3 answers in node 6's name, holding party 5 (the attack: a host speaks for another).
    const forged = [newer[0]!, newer[1]!, held("node-6", 5, 4)];
    expect(
      await checkReplacedHere(node(db, forged, ["node-1", "node-2", "node-3"]), "w_r"),
    ).toEqual({ replaced: false });
    // Or node 1 answers twice, once as node 6.
    expect(
      await checkReplacedHere(node(db, forged, ["node-1", "node-2", "node-1"]), "w_r"),
    ).toEqual({ replaced: false });
    // The same answer twice from one node counts once.
    expect(
      await checkReplacedHere(
        node(db, [newer[0]!, newer[0]!, held("node-6", 5, 4)], ["node-1", "node-1", "node-6"]),
        "w_r",
      ),
    ).toEqual({ replaced: false });
    // Answers about another key (another wallet under the same id elsewhere) do not count.
    const otherKey = confirming.map((h) => ({
      ...h,
      publicKey: Uint8Array.of(3, ...new Uint8Array(32).fill(0x22)),
    }));
    expect(await checkReplacedHere(node(db, otherKey), "w_r")).toEqual({ replaced: false });
    expect(replacedBy(db, "w_r", "node-5")).toBeNull();
  });

  it("refuses nothing while it holds a pending share or a row as new as the answers", async () => {
    // Its refresh to generation 4 staged here, its commit withheld: the answers may be of that very refresh.
    const pending = lostNode();
    stagePendingShare(pending, share(4));
    expect(await checkReplacedHere(node(pending, confirming), "w_r")).toEqual({
      replaced: false,
    });
    // Nor when the answers claim a generation beyond that pending share.
    const later = confirming.map((h) => ({ ...h, generation: 5 }));
    expect(await checkReplacedHere(node(pending, later), "w_r")).toEqual({ replaced: false });
    expect(replacedBy(pending, "w_r", "node-5")).toBeNull();
    // Answers at the generation it holds itself are no newer generation.
    const current = lostNode();
    const same = confirming.map((h) => ({ ...h, generation: 3 }));
    expect(await checkReplacedHere(node(current, same), "w_r")).toEqual({ replaced: false });
    expect(walletMembers(current, "w_r")).toEqual([]);
  });

  it("a node whose party was moved no longer reports, loads or starts the wallet", async () => {
    const db = lostNode();
    const host = hostOn(db);
    expect(host.walletInfo("w_r")?.partyIndex).toBe(5);
    recordWalletMembers(db, "w_r", [{ partyIndex: 5, nodeId: "node-6" }], 4);
    expect(host.walletInfo("w_r")).toBeNull();
    expect(host.listWallets()).toEqual([]);
    const loading = await rejected(Error, host.prepare("w_r"));
    expect((loading as { code?: string }).code).toBe("stale_share");
    const starting = await rejected(
      Error,
      host.start({
        kind: "sign",
        sessionId: new Uint8Array(32).fill(1),
        walletId: "w_r",
      } as CeremonyStartRequest),
    );
    expect((starting as { code?: string }).code).toBe("stale_share");
    // Its own entry at an older generation, or another party's move, refuses nothing.
    const other = lostNode();
    recordWalletMembers(other, "w_r", [{ partyIndex: 4, nodeId: "node-6" }], 4);
    recordWalletMembers(other, "w_r", [{ partyIndex: 5, nodeId: "node-6" }], 3);
    expect(replacedBy(other, "w_r", "node-5")).toBeNull();
  });

  it("recordMembers keeps only the receiving node's own entry", () => {
    const db = lostNode();
    const host = hostOn(db);
    host.recordMembers("w_r", 3, [
      { partyIndex: 1, nodeId: "node-9" },
      { partyIndex: 5, nodeId: "node-5" },
    ]);
    expect(walletMembers(db, "w_r")).toEqual([{ partyIndex: 5, nodeId: "node-5", generation: 3 }]);
    // A list that does not name this node at its own index and generation is refused.
    expect(() => host.recordMembers("w_r", 3, [{ partyIndex: 5, nodeId: "node-9" }])).toThrow();
    expect(() => host.recordMembers("w_r", 4, [{ partyIndex: 5, nodeId: "node-5" }])).toThrow();
  });
});
