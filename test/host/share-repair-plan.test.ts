/**
 * The coordinator's checks of a share repair request before anything runs
 * (src/host/share-repair.ts planRepair), and who it counts as replaced
 * (replacedHolders): a party out of range, a target that already holds a
 * share or is offline, too few helpers, a complete refresh that would miss a
 * holder are refused with their own sentence; the helpers are t current
 * holders, the coordinator first. A node told it was replaced asks its
 * enclave (played here) for a verdict only with a complete set of peers'
 * statements of a newer generation (generation and index read from the
 * statements, never the answers' claims), each answering as the node asked,
 * one of them holding its party index, an active proof from every holder for
 * its enclave's nonce, and no pending share (checkReplacedHere, over a real
 * store); only on the verdict, and with its rows unchanged since the check,
 * does it delete them (then it no longer reports the wallet), and a refusal
 * deletes nothing. NodeHost.checkReplaced holds the wallet's ceremony claim
 * while it checks and rate-limits checks per wallet. Without a client user a
 * repair's stored row and a refresh's never answer each other's retries. A
 * node whose membership row names another holder no longer reports, loads or
 * starts the wallet.
 */
import { describe, expect, it } from "vitest";
import {
  checkReplacedHere,
  completeSets,
  planRepair,
  replacedHolders,
} from "../../src/host/share-repair.ts";
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  parseSignedWalletStatementUnverified,
} from "../../src/shared/wire/wallet-statement.ts";
import { RequestError } from "../../src/host/planning.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import {
  finishCeremony,
  insertActiveShare,
  insertWallet,
  migrate,
  openDatabase,
  readAudit,
  recordWalletMembers,
  replacedBy,
  stagePendingShare,
  startCeremony,
  walletMembers,
} from "../../src/host/store/index.ts";
import type {
  CeremonyStartRequest,
  SupersededShareReply,
  SupersededShareRequest,
} from "../../src/shared/wire/enclave-ops.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";
import { rejected } from "../helpers/thrown.ts";
import { thrownCode } from "../helpers/thrown.ts";

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

const refused = (f: () => unknown) => thrownCode(RequestError, f);

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

  it("counts a holder of an older generation as replaced only when another node holds its party now or the committee no longer has its index", () => {
    const after = [...holders.map((h) => ({ ...h, generation: 4 })), held("node-6", 5, 4)];
    expect(replacedHolders([...after, held("node-5", 5, 3)])).toEqual(["node-5"]);
    // Merely behind (its party held by no one else): settled by refresh recovery, not removed.
    expect(replacedHolders([...after.slice(0, 4), held("node-5", 5, 3)])).toEqual([]);
    // A reshare to 3-of-4 left party 5 out: its index is beyond the committee now.
    const shrunk = holders.map((h) => ({ ...h, parties: 4, generation: 4 }));
    expect(replacedHolders([...shrunk, held("node-5", 5, 3)])).toEqual(["node-5"]);
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
  const NONCE = new Uint8Array(32).fill(0x4e);
  // Each answer as the node named in it gave it, unless `asked` says another node was asked.
  // Its enclave's verdict is played here (its checks: test/enclave/supersession.test.ts).
  const node = (
    db: ReturnType<typeof lostNode>,
    answers: HeldWallet[],
    asked?: string[],
    o: {
      refuse?: boolean;
      silent?: string;
      during?: () => void;
    } = {},
  ) => {
    const asks: SupersededShareRequest[] = [];
    const proved: string[] = [];
    return {
      asks,
      proved,
      nodeId: "node-5",
      db,
      holders: async () => answers.map((h, k) => ({ asked: asked?.[k] ?? h.nodeId, answer: h })),
      nonce: async () => NONCE,
      proof: async (nodeId: string, _w: string, nonce: Uint8Array) => {
        proved.push(nodeId);
        expect(nonce).toEqual(NONCE);
        return nodeId === o.silent ? null : Uint8Array.of(Number(nodeId.slice(5)), 9);
      },
      verdict: async (req: SupersededShareRequest): Promise<SupersededShareReply> => {
        asks.push(req);
        o.during?.();
        if (o.refuse) throw new Error("supersession refused: a forged statement");
        return {
          walletId: req.walletId,
          partyIndex: req.partyIndex,
          generation: req.generation,
          supersededBy: parseSignedWalletStatementUnverified(req.statements[0]).statement
            .generation,
          holderPcr4: new Uint8Array(48).fill(6),
        };
      },
      forget() {},
      log() {},
    };
  };
  /** A statement as its enclave would encode it (the host reads it unverified; the signature is not checked here). */
  const statementOf = (h: Pick<HeldWallet, "partyIndex" | "generation" | "publicKey">) =>
    encodeSignedWalletStatement(
      encodeWalletStatement({
        walletId: "w_r",
        threshold: 3,
        parties: 5,
        partyIndex: h.partyIndex,
        generation: h.generation,
        publicKey: h.publicKey,
        chainCode: new Uint8Array(32),
        publicPackageHash: new Uint8Array(32),
        policyHash: null,
      }),
      new Uint8Array(64),
    );
  const vouched = (h: HeldWallet): HeldWallet => ({
    ...h,
    statement: statementOf(h),
    attestation: Uint8Array.of(h.partyIndex, 2),
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
  const newer = [1, 2, 3, 4].map((p) => vouched(held(`node-${p}`, p, 4)));
  const confirming = [...newer, vouched(held("node-6", 5, 4))];
  const partyOf = (x: Uint8Array) => parseSignedWalletStatementUnverified(x).statement.partyIndex;

  it("on its enclave's verdict deletes its rows, records the new holder and audits the evidence's generation", async () => {
    const db = lostNode();
    const n = node(db, confirming);
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: true });
    // What its enclave was asked: its own row, the newer statements by party, every holder's proof for its nonce.
    expect(n.asks).toHaveLength(1);
    expect(n.asks[0]).toMatchObject({
      walletId: "w_r",
      partyIndex: 5,
      generation: 3,
      nonce: NONCE,
    });
    expect(n.asks[0]!.statements.map(partyOf)).toEqual([1, 2, 3, 4, 5]);
    expect(n.asks[0]!.documents.map((x) => x[0])).toEqual([1, 2, 3, 4, 5]);
    expect(n.asks[0]!.activeProofs.map((x) => x[0])).toEqual([1, 2, 3, 4, 6]);
    expect(shares(db)).toBe(0);
    expect(walletMembers(db, "w_r")).toEqual([{ partyIndex: 5, nodeId: "node-6", generation: 4 }]);
    expect(
      readAudit(db)
        .filter((x) => x.event === "share_replaced")
        .map((x) => x.detail),
    ).toEqual([
      expect.objectContaining({
        partyIndex: 5,
        generation: 4,
        replacedGeneration: 3,
        byNode: "node-6",
        byPcr4: "06".repeat(48),
      }),
    ]);
    expect(hostOn(db).walletInfo("w_r")).toBeNull();
  });

  it("its enclave refusing the evidence deletes and records nothing", async () => {
    const db = lostNode();
    const n = node(db, confirming, undefined, { refuse: true });
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: false });
    expect(n.asks).toHaveLength(1);
    expect(shares(db)).toBe(1);
    expect(walletMembers(db, "w_r")).toEqual([]);
    expect(readAudit(db).filter((x) => x.event === "share_replaced")).toEqual([]);
    expect(hostOn(db).walletInfo("w_r")?.partyIndex).toBe(5);
  });

  it("asks its enclave only with a complete newer set holding its party, each as the node asked, and every holder's proof", async () => {
    const asked = async (answers: HeldWallet[], who?: string[], o?: { silent?: string }) => {
      const db = lostNode();
      const n = node(db, answers, who, o);
      expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: false });
      expect(shares(db)).toBe(1);
      return n.asks.length;
    };
    // Its party held by nobody else at the newer generation: merely behind.
    expect(await asked(newer)).toBe(0);
    // Node 3 answers in node 6's name (a host speaking for another).
    const five = ["node-1", "node-2", "node-3", "node-4", "node-3"];
    expect(await asked(confirming, five)).toBe(0);
    // Answers without statements, or whose statements are of another key.
    expect(await asked(confirming.map(({ statement: _s, ...h }) => h))).toBe(0);
    const otherKey = Uint8Array.of(3, ...new Uint8Array(32).fill(0x22));
    expect(
      await asked(
        confirming.map((h) => ({ ...h, statement: statementOf({ ...h, publicKey: otherKey }) })),
      ),
    ).toBe(0);
    // One holder gives no active proof (a holder rolled back, or withholding).
    expect(await asked(confirming, undefined, { silent: "node-3" })).toBe(0);
  });

  it("takes generation and party index from the statements, not the answers' claims, newest complete set first", async () => {
    // Every answer claims a huge generation and node 1 claims party 5: both ignored.
    const lying = confirming.map((h) => ({
      ...h,
      generation: 2 ** 32 - 1,
      partyIndex: h.nodeId === "node-1" ? 5 : h.partyIndex,
    }));
    const db = lostNode();
    const n = node(db, lying);
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: true });
    expect(n.asks[0]!.statements.map(partyOf)).toEqual([1, 2, 3, 4, 5]);
    // One node's statement of a newer generation is no complete set: the set of generation 4 is tried.
    const sets = completeSets(
      [
        ...confirming.map((h) => ({
          nodeId: h.nodeId,
          statement: h.statement!,
          attestation: h.attestation!,
        })),
        {
          nodeId: "node-7",
          statement: statementOf({ ...held("node-7", 5), generation: 9 }),
          attestation: Uint8Array.of(7),
        },
        {
          nodeId: "node-8",
          statement: statementOf({ ...held("node-8", 2), generation: 4 }),
          attestation: Uint8Array.of(8),
        },
      ],
      "w_r",
      held("node-5", 5).publicKey,
      3,
    );
    // Node 8's answer for party 2 is kept as a candidate, tried after the first answer's set.
    expect(sets.map((set) => set.map((c) => c.nodeId))).toEqual([
      ["node-1", "node-2", "node-3", "node-4", "node-6"],
      ["node-1", "node-8", "node-3", "node-4", "node-6"],
    ]);
    expect(sets[0]![0]!.generation).toBe(4);
  });

  it("one host answering first with a replayed statement of a real index, then withholding its proof, does not block the check", async () => {
    // Node 7's host replays party 2's statement of generation 4 (its own enclave signed nothing).
    const replayed = { ...confirming[1]!, nodeId: "node-7" };
    const answers = [replayed, ...confirming];
    const db = lostNode();
    const n = node(db, answers, undefined, { silent: "node-7" });
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: true });
    // The set with node 7 failed on its missing proof; the next, with node 2, was asked.
    expect(n.asks).toHaveLength(1);
    expect(n.asks[0]!.activeProofs.map((x) => x[0])).toEqual([1, 2, 3, 4, 6]);
    expect(n.proved).toContain("node-7");
    expect(shares(db)).toBe(0);
    // With its own record naming node 2 for party 2, node 2's answer is tried first: node 7
    // is never asked for a proof.
    const recorded = lostNode();
    recordWalletMembers(recorded, "w_r", [{ partyIndex: 2, nodeId: "node-2" }], 3);
    const m = node(recorded, answers, undefined, { silent: "node-7" });
    expect(await checkReplacedHere(m, "w_r")).toEqual({ replaced: true });
    expect(m.proved).not.toContain("node-7");
    expect(m.asks).toHaveLength(1);
  });

  it("asks nothing while it holds a pending share or a row as new as the statements", async () => {
    // Its refresh to generation 4 staged here, its commit withheld: the answers may be of that very refresh.
    const pending = lostNode();
    stagePendingShare(pending, share(4));
    const n = node(pending, confirming);
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: false });
    const at5 = confirming.map((h) => vouched({ ...h, generation: 5 }));
    const later = node(pending, at5);
    expect(await checkReplacedHere(later, "w_r")).toEqual({ replaced: false });
    expect(n.asks.length + later.asks.length).toBe(0);
    expect(shares(pending)).toBe(2);
    // Statements at the generation it holds itself are no newer generation.
    const current = lostNode();
    const same = node(
      current,
      confirming.map((h) => vouched({ ...h, generation: 3 })),
    );
    expect(await checkReplacedHere(same, "w_r")).toEqual({ replaced: false });
    expect(same.asks).toEqual([]);
    expect(walletMembers(current, "w_r")).toEqual([]);
  });

  it("deletes nothing when its rows changed while its enclave checked (a share staged meanwhile)", async () => {
    const db = lostNode();
    const n = node(db, confirming, undefined, { during: () => stagePendingShare(db, share(4)) });
    expect(await checkReplacedHere(n, "w_r")).toEqual({ replaced: false });
    expect(n.asks).toHaveLength(1);
    expect(shares(db)).toBe(2);
    expect(walletMembers(db, "w_r")).toEqual([]);
    expect(readAudit(db).filter((x) => x.event === "share_replaced")).toEqual([]);
  });

  it("NodeHost.checkReplaced holds the wallet's ceremony claim while it checks, and checks a wallet at most every few seconds", async () => {
    const db = lostNode();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let asked = 0;
    // Its enclave is never reached: the peers, once released, answer nothing to check.
    const host = hostOn(db);
    host.holderSource = async () => {
      asked++;
      await gate;
      return [];
    };
    host.proofSource = async () => null;
    const running = host.checkReplaced("w_r");
    // A refresh of the wallet cannot start here until the check is over.
    const start = await rejected(
      Error,
      host.start({
        kind: "refresh",
        sessionId: new Uint8Array(32).fill(2),
        walletId: "w_r",
      } as CeremonyStartRequest),
    );
    expect((start as { code?: string; message: string }).code).toBe("conflict");
    expect(start.message).toMatch(/replace-check/);
    release();
    expect(await running).toEqual({ replaced: false });
    // Again at once: refused without asking anyone.
    expect(await host.checkReplaced("w_r")).toEqual({ replaced: false });
    expect(asked).toBe(1);
    expect(shares(db)).toBe(1);
  });

  it("without a client user, a repair's stored row answers no refresh and a refresh's no repair", () => {
    const db = lostNode();
    const host = hostOn(db);
    const row = (ceremonyId: string, requestId: string, paramsHash?: Uint8Array) => {
      startCeremony(db, {
        ceremonyId,
        kind: "refresh",
        requestId,
        walletId: "w_r",
        coordinator: "node-5",
        participants: ["node-1"],
        ...(paramsHash === undefined ? {} : { paramsHash }),
      });
      finishCeremony(db, ceremonyId, { status: "succeeded", result: Uint8Array.of(0x7b, 0x7d) });
    };
    row("a1".repeat(32), "rq-repair", new Uint8Array(32).fill(1));
    row("b2".repeat(32), "rq-refresh");
    expect(host.lookupRequest("repair", "rq-repair")?.status).toBe("succeeded");
    expect(host.lookupRequest("refresh", "rq-refresh")?.status).toBe("succeeded");
    expect(host.lookupRequest("refresh", "rq-repair")).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/was used by a share repair/),
    });
    expect(host.lookupRequest("repair", "rq-refresh")).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/was used by a refresh/),
    });
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
