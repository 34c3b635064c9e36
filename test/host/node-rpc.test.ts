/**
 * The node RPC operation table: every op's arguments are checked at the
 * server before the host sees them (bounded, bad_request naming the field),
 * and the caller side (RemoteParticipant, the peer directory) speaks the same
 * table through the real JSON payload codec.
 */
import { describe, expect, it } from "vitest";
import { decodeJson, encodeJson, RPC_LIMITS } from "../../src/shared/wire/json-payload.ts";
import {
  MAX_ATTESTATION_DOCUMENT_BYTES,
  MAX_RELAYED_MESSAGE_BYTES,
  MAX_RELAYED_MESSAGES,
  NODE_OP_NAMES,
  nodeOpDispatcher,
  type NodeCaller,
  type HeldWallet,
} from "../../src/shared/wire/node-rpc.ts";
import { CodedError } from "../../src/shared/wire/errors.ts";
import type { CeremonyReply, CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import {
  RemoteParticipant,
  serveNodeOps,
  type LocalNode,
} from "../../src/host/remote-participant.ts";
import { BusPeerDirectory } from "../../src/host/peer-directory.ts";
import type { NodeHost } from "../../src/host/node-host.ts";

const SESSION = new Uint8Array(32).fill(3);
const PK = Uint8Array.of(2, ...new Uint8Array(32).fill(1));
const CHAIN = new Uint8Array(32).fill(4);
const WALLET = {
  walletId: "w-1",
  threshold: 2,
  parties: 3,
  publicKey: PK,
  publicPackage: Uint8Array.of(9, 9),
  chainCode: CHAIN,
};
const HELD: HeldWallet = { ...WALLET, nodeId: "node-1", generation: 0, partyIndex: 1 };
const REPLY: CeremonyReply = { messages: [Uint8Array.of(1, 2, 3)], generation: 0 };
const START: CeremonyStartRequest = {
  kind: "sign",
  sessionId: SESSION,
  walletId: "w-1",
  signers: [1, 2],
  digest: new Uint8Array(32),
  path: "m/0/7",
  expectedGeneration: 0,
  peerDocuments: [Uint8Array.of(5)],
  peerParties: [2],
};

/** A local host that records what reached it. */
function fakeHost(nodeId = "node-1") {
  const calls: [string, unknown[]][] = [];
  const rec =
    <R>(name: string, result: R) =>
    async (...a: unknown[]) => {
      calls.push([name, a]);
      return result;
    };
  const host = {
    nodeId,
    prepare: rec("prepare", { walletId: "w-1", generation: 0, partyIndex: 1 }),
    attestation: rec("attestation", Uint8Array.of(7, 7)),
    start: rec("start", REPLY),
    step: rec("step", REPLY),
    abort: rec("abort", undefined),
    persist: rec("persist", Uint8Array.of(9, 9)),
    commit: rec("commit", undefined),
    rollback: rec("rollback", undefined),
    walletInfo: (walletId: string) => (
      calls.push(["walletInfo", [walletId]]), walletId === "w-1" ? HELD : null
    ),
    listWallets: () => [HELD],
    requestContext: (...a: unknown[]) => (
      calls.push(["requestContext", a]), { request: null, wallet: HELD }
    ),
    ceremonyOutcome: (...a: unknown[]) => (
      calls.push(["ceremonyOutcome", a]), { outcome: "pending" as const, generation: 1 }
    ),
    retiredParty: (...a: unknown[]) => (calls.push(["retiredParty", a]), null),
    recordMembers: (...a: unknown[]) => void calls.push(["recordMembers", a]),
    checkReplaced: async (...a: unknown[]) => (
      calls.push(["checkReplaced", a]), { replaced: false }
    ),
    proveActive: async (...a: unknown[]) => (calls.push(["proveActive", a]), null),
    retireWallet: rec("retireWallet", {
      retired: true as const,
      partyIndex: 1,
      generation: 0,
      approverKeyIds: [],
    }),
  } satisfies LocalNode;
  return { host, calls };
}

/** The wire both ways: what a remote node would see and answer. */
function loopback(
  serve: (op: string, args: unknown) => Promise<unknown>,
): NodeCaller & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    async callNode(_node, op, args) {
      sent.push(op);
      const call = decodeJson(encodeJson({ op, args }, RPC_LIMITS)) as {
        op: string;
        args: unknown;
      };
      const result = await serve(call.op, call.args);
      return (decodeJson(encodeJson({ ok: true, result: result ?? null })) as { result: unknown })
        .result;
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<CodedError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CodedError);
  expect((e as CodedError).code).toBe("bad_request");
  return e as CodedError;
}

describe("node RPC operation table", () => {
  it("has a checker for every op the participants and coordinators use", () => {
    expect([...NODE_OP_NAMES].sort()).toEqual([
      "abort",
      "attestation",
      "ceremonyOutcome",
      "checkReplaced",
      "commit",
      "listWallets",
      "persist",
      "prepare",
      "proveActive",
      "recordMembers",
      "requestContext",
      "retireWallet",
      "retiredParty",
      "rollback",
      "start",
      "step",
      "walletInfo",
    ]);
  });

  it("refuses an unknown op with bad_request", async () => {
    const { host, calls } = fakeHost();
    const e = await refusal(serveNodeOps(host)("lookupRequest", {}));
    expect(e.message).toMatch(/unknown node operation "lookupRequest"/);
    await refusal(serveNodeOps(host)("__proto__", {}));
    expect(calls).toEqual([]);
  });

  it("passes checked arguments to the host, without keys the op does not know", async () => {
    const { host, calls } = fakeHost();
    const serve = serveNodeOps(host);
    expect(await serve("start", { ...START, extra: "dropped" })).toEqual(REPLY);
    expect(calls[0]![0]).toBe("start");
    expect(calls[0]![1][0]).toEqual(START);
    expect(await serve("walletInfo", { walletId: "w-1" })).toEqual(HELD);
    expect(
      await serve("requestContext", { kind: "sign", requestId: "r-1", walletId: "w-1" }),
    ).toEqual({ request: null, wallet: HELD });
    expect(calls.at(-1)).toEqual(["requestContext", ["sign", "r-1", "w-1", undefined]]);
    expect(await serve("ceremonyOutcome", { walletId: "w-1", sessionId: SESSION })).toEqual({
      outcome: "pending",
      generation: 1,
    });
    expect(calls.at(-1)).toEqual(["ceremonyOutcome", ["w-1", SESSION]]);
    await serve("requestContext", { kind: "dkg", requestId: "r-2" });
    expect(calls.at(-1)).toEqual(["requestContext", ["dkg", "r-2", undefined, undefined]]);
    // The client user scopes the request id (planning.ts gatherRequestContext).
    await serve("requestContext", { kind: "dkg", requestId: "r-3", client: "alice" });
    expect(calls.at(-1)).toEqual(["requestContext", ["dkg", "r-3", undefined, "alice"]]);
    await expect(
      serve("requestContext", { kind: "dkg", requestId: "r-3", client: "a/b" }),
    ).rejects.toMatchObject({ code: "bad_request" });
  });

  it("refuses malformed and out-of-bound arguments before the host sees them, naming the field", async () => {
    const { host, calls } = fakeHost();
    const serve = serveNodeOps(host);
    const big = (n: number) => new Uint8Array(n);
    const cases: [string, unknown, RegExp][] = [
      ["prepare", [], /prepare must be an object/],
      ["prepare", Uint8Array.of(1), /prepare must be an object/],
      ["prepare", {}, /prepare\.walletId must be 1-128/],
      ["prepare", { walletId: "bad id/with slash" }, /walletId/],
      ["abort", { sessionId: big(31) }, /abort\.sessionId must be 32 bytes/],
      [
        "step",
        { sessionId: SESSION, phase: 5, messages: [] },
        /step\.phase must be an integer in 2\.\.4/,
      ],
      [
        "step",
        {
          sessionId: SESSION,
          phase: 2,
          messages: Array.from({ length: MAX_RELAYED_MESSAGES + 1 }, () => Uint8Array.of(1)),
        },
        /step\.messages must be a list of at most 64/,
      ],
      [
        "step",
        { sessionId: SESSION, phase: 2, messages: [big(MAX_RELAYED_MESSAGE_BYTES + 1)] },
        /step\.messages\[0\] must be 1\.\./,
      ],
      ["step", { sessionId: SESSION, phase: 2, messages: ["not bytes"] }, /step\.messages\[0\]/],
      ["start", { ...START, kind: "steal" }, /start\.kind must be one of dkg, sign, refresh/],
      ["start", { ...START, path: "m/0'" }, /start\.path must be a non-hardened path/],
      ["start", { ...START, path: "m/2147483648" }, /start\.path/],
      ["start", { ...START, digest: big(31) }, /start\.digest must be 32 bytes/],
      [
        "start",
        { ...START, signers: [1, 17] },
        /start\.signers\[1\] must be an integer in 1\.\.16/,
      ],
      [
        "start",
        { ...START, peerDocuments: [big(MAX_ATTESTATION_DOCUMENT_BYTES + 1)] },
        /start\.peerDocuments\[0\]/,
      ],
      [
        "start",
        { ...START, peerDocuments: Array.from({ length: 16 }, () => Uint8Array.of(1)) },
        /start\.peerDocuments must be a list of at most 15/,
      ],
      ["start", { ...START, expectedGeneration: -1 }, /start\.expectedGeneration/],
      [
        "persist",
        { kind: "sign", sessionId: SESSION, wallet: WALLET, final: REPLY },
        /persist\.kind must be one of dkg, refresh/,
      ],
      [
        "persist",
        {
          kind: "dkg",
          sessionId: SESSION,
          wallet: { ...WALLET, chainCode: big(31) },
          final: REPLY,
        },
        /persist\.wallet\.chainCode must be 32 bytes/,
      ],
      [
        "persist",
        {
          kind: "dkg",
          sessionId: SESSION,
          wallet: { ...WALLET, publicKey: big(65) },
          final: REPLY,
        },
        /persist\.wallet\.publicKey must be 33 bytes/,
      ],
      [
        "persist",
        {
          kind: "dkg",
          sessionId: SESSION,
          wallet: WALLET,
          final: { ...REPLY, generation: 2 ** 32 },
        },
        /persist\.final\.generation/,
      ],
      [
        "commit",
        { kind: "refresh", sessionId: SESSION, walletId: "w-1", generation: 1.5 },
        /commit\.generation/,
      ],
      ["requestContext", { kind: "wallet", requestId: "r-1" }, /requestContext\.kind/],
      ["requestContext", { kind: "sign", requestId: "" }, /requestContext\.requestId/],
      [
        "ceremonyOutcome",
        { walletId: "w-1", sessionId: new Uint8Array(31) },
        /ceremonyOutcome\.sessionId/,
      ],
      ["ceremonyOutcome", { walletId: "", sessionId: SESSION }, /ceremonyOutcome\.walletId/],
    ];
    for (const [op, args, message] of cases) {
      const e = await refusal(serve(op, decodeJson(encodeJson(args))));
      expect(e.message, `${op} ${message}`).toMatch(message);
    }
    expect(calls).toEqual([]);
  });
});

describe("RemoteParticipant and the peer directory speak the same table", () => {
  it("a remote participant's calls arrive checked and typed over the JSON codec", async () => {
    const { host, calls } = fakeHost();
    const wire = loopback(serveNodeOps(host));
    const p = new RemoteParticipant("node-1", wire, 1_000);
    expect(await p.prepare("w-1")).toEqual({ walletId: "w-1", generation: 0, partyIndex: 1 });
    expect(await p.attestation()).toEqual(Uint8Array.of(7, 7));
    expect(await p.start(START)).toEqual(REPLY);
    // The holder's seal receipt comes back; commit carries every holder's.
    expect(
      await p.persist("dkg", SESSION, WALLET, {
        ...REPLY,
        publicKey: PK,
        publicPackage: WALLET.publicPackage,
        chainCode: CHAIN,
        partyIndex: 1,
      }),
    ).toEqual(Uint8Array.of(9, 9));
    await p.commit("dkg", SESSION, "w-1", 0, [Uint8Array.of(9, 9), Uint8Array.of(8)]);
    await p.rollback("refresh", SESSION, "w-1");
    expect(wire.sent).toEqual(["prepare", "attestation", "start", "persist", "commit", "rollback"]);
    expect(calls.find((c) => c[0] === "persist")![1][2]).toEqual(WALLET);
    expect(calls.find((c) => c[0] === "commit")![1][4]).toEqual([
      Uint8Array.of(9, 9),
      Uint8Array.of(8),
    ]);
    // A bad argument fails the call; abort swallows it (best effort) but it never reaches the host.
    await expect(p.prepare("no such/id")).rejects.toThrow(/walletId/);
    await p.abort(new Uint8Array(5));
    expect(calls.some((c) => c[0] === "abort")).toBe(false);
  });

  it("asks itself in process through the same checks, and a node that fails to answer counts as unknowing", async () => {
    const self = fakeHost("node-1");
    const other = fakeHost("node-2");
    const logged: string[] = [];
    const wire = loopback(serveNodeOps(other.host));
    const bus = {
      liveNodes: () => [
        { nodeId: "node-1", since: 1 },
        { nodeId: "node-2", since: 2 },
        { nodeId: "node-3", since: 3 },
      ],
      callNode: (node: string, op: string, args: unknown) =>
        node === "node-3" ? Promise.reject(new Error("no answer")) : wire.callNode(node, op, args),
    };
    const peers = new BusPeerDirectory(self.host as unknown as NodeHost, bus, {
      phaseTimeoutMs: 1_000,
      log: (e) => logged.push(e),
    });
    expect(peers.participant("node-1")).toBe(self.host);
    expect(peers.participant("node-2")).toBeInstanceOf(RemoteParticipant);
    expect(peers.participant("node-2")).toBe(peers.participant("node-2"));
    expect(await peers.ask("node-1", "walletInfo", { walletId: "w-1" })).toEqual(HELD);
    expect(await peers.ask("node-2", "listWallets", {})).toEqual([HELD]);
    expect(await peers.ask("node-3", "listWallets", {})).toBeNull();
    expect(logged).toEqual(["peer_unanswered"]);
    await expect(peers.ask("node-1", "walletInfo", { walletId: "" })).rejects.toThrow(/walletId/);
    expect(self.calls).toEqual([["walletInfo", ["w-1"]]]);
  });

  it("a dispatcher built from the table rejects what its handlers never see", async () => {
    let reached = 0;
    const { host } = fakeHost();
    const serve = nodeOpDispatcher({
      ...Object.fromEntries(NODE_OP_NAMES.map((op) => [op, () => void reached++])),
      walletInfo: (a) => (reached++, host.walletInfo(a.walletId)),
    } as Parameters<typeof nodeOpDispatcher>[0]);
    await refusal(serve("walletInfo", { walletId: 7 }));
    expect(reached).toBe(0);
    expect(await serve("walletInfo", { walletId: "w-2" })).toBeNull();
    expect(reached).toBe(1);
  });
});
