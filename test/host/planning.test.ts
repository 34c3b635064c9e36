/**
 * Planning a client request: one round of node RPCs tells the coordinator
 * both an earlier outcome of the request id and who holds the wallet; node
 * selection for DKG, sign and refresh.
 */
import { describe, expect, it } from "vitest";
import type {
  HeldWallet,
  NodeOpArgs,
  NodeOpName,
  NodeOpResult,
  RequestContext,
  StoredRequest,
} from "../../src/shared/wire/node-rpc.ts";
import {
  currentHolders,
  gatherRequestContext,
  nodesByParty,
  planDkg,
  planRefresh,
  planSign,
  priorOutcome,
  RequestError,
  walletHolders,
} from "../../src/host/planning.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import type { NodeHost } from "../../src/host/node-host.ts";

const held = (nodeId: string, partyIndex: number, generation = 0): HeldWallet => ({
  walletId: "w-1",
  nodeId,
  partyIndex,
  generation,
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(1)),
  publicPackage: Uint8Array.of(1),
  chainCode: new Uint8Array(32),
});
const stored = (status: string, result?: unknown, error: string | null = null): StoredRequest => ({
  status,
  result: result === undefined ? null : new TextEncoder().encode(JSON.stringify(result)),
  error,
});

/** A directory whose nodes answer requestContext/walletInfo from a table, counting every question. */
function directory(answers: Record<string, RequestContext | null>) {
  const asked: [string, string, unknown][] = [];
  const peers: PeerDirectory = {
    liveNodes: () => Object.keys(answers).map((nodeId, k) => ({ nodeId, since: k })),
    participant: () => {
      throw new Error("no ceremony expected");
    },
    async ask<K extends NodeOpName>(
      nodeId: string,
      op: K,
      args: NodeOpArgs<K>,
    ): Promise<NodeOpResult<K> | null> {
      asked.push([nodeId, op, args]);
      const a = answers[nodeId] ?? null;
      if (op === "requestContext") return a as NodeOpResult<K>;
      if (op === "walletInfo") return (a?.wallet ?? null) as NodeOpResult<K>;
      return null;
    },
  };
  return { peers, asked };
}

function refused(f: () => unknown, code: string): RequestError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    expect((e as RequestError).code).toBe(code);
    return e as RequestError;
  }
  throw new Error(`expected ${code}`);
}

describe("one round of node RPCs per request", () => {
  it("asks every live node once, with the wallet, and gets holders and no prior outcome", async () => {
    const { peers, asked } = directory({
      a: { request: null, wallet: held("a", 1) },
      b: null,
      c: { request: null, wallet: held("c", 3) },
    });
    const ctx = await gatherRequestContext(peers, "sign", "r-1", "w-1");
    expect(ctx.prior).toBeUndefined();
    expect(ctx.holders.map((h) => h.nodeId)).toEqual(["a", "c"]);
    expect(asked).toEqual([
      ["a", "requestContext", { kind: "sign", requestId: "r-1", walletId: "w-1" }],
      ["b", "requestContext", { kind: "sign", requestId: "r-1", walletId: "w-1" }],
      ["c", "requestContext", { kind: "sign", requestId: "r-1", walletId: "w-1" }],
    ]);
  });

  it("a DKG names no wallet", async () => {
    const { peers, asked } = directory({ a: { request: null, wallet: null } });
    expect(await gatherRequestContext(peers, "dkg", "r-1")).toEqual({
      prior: undefined,
      holders: [],
    });
    expect(asked).toEqual([["a", "requestContext", { kind: "dkg", requestId: "r-1" }]]);
  });

  it("an earlier run of the request id decides: stored success returned, running or failed refused", async () => {
    const { peers } = directory({
      a: { request: null, wallet: held("a", 1) },
      b: { request: stored("succeeded", { walletId: "w-1", n: 1 }), wallet: held("b", 2) },
    });
    expect((await gatherRequestContext(peers, "sign", "r-1", "w-1")).prior).toEqual({
      walletId: "w-1",
      n: 1,
    });
    refused(() => priorOutcome("r-1", [null, stored("running")]), "bad_request");
    expect(
      refused(() => priorOutcome("r-1", [stored("failed", undefined, "boom")]), "ceremony_failed")
        .message,
    ).toMatch(/already failed: boom/);
    // A stored success anywhere wins (a dead coordinator's row stays "running");
    // otherwise the first running or failed answer in live-node order decides.
    expect(priorOutcome("r-1", [stored("succeeded", 1), stored("running")])).toBe(1);
    expect(priorOutcome("r-1", [stored("running"), stored("succeeded", 1)])).toBe(1);
    refused(() => priorOutcome("r-1", [stored("running"), stored("failed")]), "bad_request");
    refused(() => priorOutcome("r-1", [stored("failed"), stored("running")]), "ceremony_failed");
    expect(priorOutcome("r-1", [null, null])).toBeUndefined();
  });

  it("the wallet query asks walletInfo of every live node", async () => {
    const { peers, asked } = directory({ a: { request: null, wallet: held("a", 1) }, b: null });
    expect((await walletHolders(peers, "w-1")).map((h) => h.nodeId)).toEqual(["a"]);
    expect(asked.map((x) => x[1])).toEqual(["walletInfo", "walletInfo"]);
  });
});

describe("node selection", () => {
  it("current holders are those of the newest generation; none is not_found", () => {
    const { generation, current } = currentHolders("w-1", [
      held("a", 1, 0),
      held("b", 2, 1),
      held("c", 3, 1),
    ]);
    expect(generation).toBe(1);
    expect(current.map((h) => h.nodeId)).toEqual(["b", "c"]);
    refused(() => currentHolders("w-1", []), "not_found");
  });

  it("DKG takes n live nodes, the coordinator first", () => {
    for (let k = 0; k < 20; k++) {
      const chosen = planDkg("me", ["x", "me", "y", "z"], 2, 3);
      expect(chosen[0]).toBe("me");
      expect(new Set(chosen).size).toBe(3);
    }
    expect(refused(() => planDkg("me", ["me", "x"], 2, 3), "not_enough_nodes").message).toMatch(
      /needs 3 live nodes; 2 are online/,
    );
  });

  it("sign takes t current holders, the coordinator first when it holds one", () => {
    const hs = [held("a", 1), held("me", 2), held("c", 3)];
    for (let k = 0; k < 20; k++) {
      const chosen = planSign("me", "w-1", 0, hs, 2);
      expect(chosen).toHaveLength(2);
      expect(chosen[0]).toBe("me");
    }
    const seen = new Set<string>();
    for (let k = 0; k < 50; k++) for (const n of planSign("other", "w-1", 0, hs, 2)) seen.add(n);
    expect([...seen].sort()).toEqual(["a", "c", "me"]);
    refused(() => planSign("me", "w-1", 0, hs.slice(0, 1), 2), "not_enough_nodes");
  });

  it("refresh takes every holder, by party index", () => {
    const hs = [held("c", 3), held("a", 1), held("b", 2)];
    expect(planRefresh(hs, 3)).toEqual(["a", "b", "c"]);
    expect(nodesByParty(hs)).toEqual(["a", "b", "c"]);
    refused(() => planRefresh(hs.slice(1), 3), "not_enough_nodes");
  });
});

describe("RequestHandler uses one round before any ceremony", () => {
  function replyRecorder() {
    const out: { done?: unknown; fail?: { code: string; message: string; node?: string | null } } =
      {};
    const reply: Reply = {
      progress: () => {},
      done: (r) => (out.done = r),
      fail: (e) => (out.fail = e),
    };
    return { out, reply };
  }
  const self = { nodeId: "a" } as unknown as NodeHost;

  it("a repeated request id returns the stored result after one question per node", async () => {
    const { peers, asked } = directory({
      a: { request: null, wallet: held("a", 1) },
      b: { request: stored("succeeded", { same: true }), wallet: held("b", 2) },
    });
    const { out, reply } = replyRecorder();
    await new RequestHandler(self, peers, { phaseTimeoutMs: 1_000 }).handle(
      "sign",
      { requestId: "r-1", walletId: "w-1", digest: "00".repeat(32) },
      reply,
    );
    expect(out).toEqual({ done: { same: true } });
    expect(asked.map((x) => `${x[0]}:${x[1]}`)).toEqual(["a:requestContext", "b:requestContext"]);
  });

  it("too few current holders fail with not_enough_nodes after the same single round", async () => {
    const { peers, asked } = directory({
      a: { request: null, wallet: held("a", 1) },
      b: { request: null, wallet: null },
    });
    const { out, reply } = replyRecorder();
    await new RequestHandler(self, peers, { phaseTimeoutMs: 1_000 }).handle(
      "sign",
      { requestId: "r-2", walletId: "w-1", digest: "00".repeat(32) },
      reply,
    );
    expect(out.fail?.code).toBe("not_enough_nodes");
    expect(asked).toHaveLength(2);
    const noWallet = directory({ a: { request: null, wallet: null } });
    const r2 = replyRecorder();
    await new RequestHandler(self, noWallet.peers, { phaseTimeoutMs: 1_000 }).handle(
      "refresh",
      { requestId: "r-3", walletId: "w-9" },
      r2.reply,
    );
    expect(r2.out.fail?.code).toBe("not_found");
  });

  it("a bad wallet id is refused only after the request id's history is checked, as before", async () => {
    const { peers, asked } = directory({
      a: { request: stored("succeeded", { earlier: 1 }), wallet: null },
    });
    const r1 = replyRecorder();
    await new RequestHandler(self, peers, { phaseTimeoutMs: 1_000 }).handle(
      "sign",
      { requestId: "r-1", walletId: "bad id" },
      r1.reply,
    );
    expect(r1.out.done).toEqual({ earlier: 1 });
    expect(asked[0]![2]).toEqual({ kind: "sign", requestId: "r-1" });
    const fresh = directory({ a: { request: null, wallet: null } });
    const r2 = replyRecorder();
    await new RequestHandler(self, fresh.peers, { phaseTimeoutMs: 1_000 }).handle(
      "sign",
      { requestId: "r-1", walletId: "bad id" },
      r2.reply,
    );
    expect(r2.out.fail).toMatchObject({ code: "bad_request", message: "walletId is required" });
  });
});
