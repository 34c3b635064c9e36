/**
 * Idempotency scoped to (client user, request id): migration 5 stores the
 * client user and a parameters hash with the ceremony row; the same id from
 * another user is another request, and the same id with other parameters is
 * refused with `conflict` without telling anything of the first run.
 */
import { describe, expect, it } from "vitest";
import {
  findCeremonyByRequest,
  findClientRequest,
  finishCeremony,
  migrate,
  openDatabase,
  startCeremony,
  StoreError,
} from "../../src/host/store/index.ts";
import {
  gatherRequestContext,
  priorOutcome,
  RequestError,
  requestParamsHash,
} from "../../src/host/planning.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { fromHex } from "../../src/shared/hex.ts";
import type { StoredRequest } from "../../src/shared/wire/node-rpc.ts";

const sid = (n: number) => n.toString(16).padStart(64, "0");
const DIGEST = "11".repeat(32);
const sign = (digest: string, extra: Record<string, unknown> = {}) =>
  requestParamsHash("sign", { requestId: "r-1", walletId: "w-1", digest, ...extra });

function fresh() {
  const db = openDatabase({ path: ":memory:" });
  expect(migrate(db).applied).toContain(5);
  return db;
}

describe("the ceremony row keyed by client user and request id (migration 5)", () => {
  it("lets two users use one request id, refuses one user's id twice (any kind), and reads back user and hash", () => {
    const db = fresh();
    const base = {
      kind: "sign" as const,
      walletId: "w-1",
      coordinator: "n1",
      participants: ["n1"],
    };
    const hash = fromHex(sign(DIGEST), 32);
    startCeremony(db, {
      ...base,
      ceremonyId: sid(1),
      requestId: "r-1",
      clientUser: "alice",
      paramsHash: hash,
    });
    startCeremony(db, { ...base, ceremonyId: sid(2), requestId: "r-1", clientUser: "bob" });
    expect(() =>
      startCeremony(db, {
        ...base,
        kind: "refresh",
        ceremonyId: sid(3),
        requestId: "r-1",
        clientUser: "alice",
      }),
    ).toThrow(StoreError);
    const a = findClientRequest(db, "alice", "r-1")!;
    expect(a.ceremonyId).toBe(sid(1));
    expect(a.clientUser).toBe("alice");
    expect(a.paramsHash).toEqual(hash);
    expect(findClientRequest(db, "bob", "r-1")!.ceremonyId).toBe(sid(2));
    expect(findClientRequest(db, "carol", "r-1")).toBeUndefined();
    // Rows without a client user (before migration 5) are a separate, per-kind space.
    startCeremony(db, { ...base, ceremonyId: sid(4), requestId: "r-1" });
    expect(findCeremonyByRequest(db, "sign", "r-1")!.ceremonyId).toBe(sid(4));
    expect(() => startCeremony(db, { ...base, ceremonyId: sid(5), requestId: "r-1" })).toThrow(
      StoreError,
    );
    finishCeremony(db, sid(1), { status: "succeeded", result: new Uint8Array([1]) });
    expect(findClientRequest(db, "alice", "r-1")!.status).toBe("succeeded");
  });

  it("refuses a parameters hash that is not 32 bytes", () => {
    const db = fresh();
    expect(() =>
      startCeremony(db, {
        ceremonyId: sid(1),
        kind: "sign",
        walletId: "w-1",
        coordinator: "n1",
        participants: ["n1"],
        requestId: "r-1",
        clientUser: "alice",
        paramsHash: new Uint8Array(31),
      }),
    ).toThrow(StoreError);
  });
});

describe("the parameters hash", () => {
  it("differs with the digest, path, wallet, kind and DKG shape, and ignores the approvals and 0x/case", () => {
    expect(sign(DIGEST)).toBe(sign(`0x${DIGEST.toUpperCase()}`));
    expect(sign(DIGEST)).toBe(sign(DIGEST, { approval: { request: "00", approvals: [] } }));
    const others = [
      sign("22".repeat(32)),
      sign(DIGEST, { path: "m/0/1" }),
      sign(DIGEST, { walletId: "w-2" }),
      requestParamsHash("refresh", { walletId: "w-1" }),
      requestParamsHash("dkg", { threshold: 2, parties: 3 }),
    ];
    expect(new Set([sign(DIGEST), ...others]).size).toBe(others.length + 1);
    expect(requestParamsHash("dkg", {})).toBe(
      requestParamsHash("dkg", { threshold: 3, parties: 5 }),
    );
    expect(requestParamsHash("dkg", { threshold: 2, parties: 3 })).not.toBe(
      requestParamsHash("dkg", { threshold: 2, parties: 4 }),
    );
  });
});

describe("a stored run under the same user's request id", () => {
  const run = (status: string, paramsHash: string | null, result?: unknown): StoredRequest => ({
    status,
    result: result === undefined ? null : new TextEncoder().encode(JSON.stringify(result)),
    error: status === "failed" ? "boom" : null,
    paramsHash,
  });

  it("with the same parameters answers its result; with others is a conflict that tells nothing of it", () => {
    const mine = sign(DIGEST);
    const theirs = sign("22".repeat(32));
    expect(priorOutcome("r-1", [null, run("succeeded", mine, { sig: 1 })], mine)).toEqual({
      sig: 1,
    });
    for (const status of ["succeeded", "running", "failed"]) {
      let caught: unknown;
      try {
        priorOutcome("r-1", [run(status, mine, { sig: "secret" })], theirs);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(RequestError);
      expect((caught as RequestError).code).toBe("conflict");
      expect((caught as Error).message).not.toMatch(/secret|boom|running/);
    }
  });
});

describe("the coordinator's round of requestContext calls", () => {
  it("asks every live node for the client user's request id and refuses a reuse with other parameters", async () => {
    const asked: unknown[] = [];
    const hash = sign(DIGEST);
    const peers = {
      liveNodes: () => [
        { nodeId: "a", since: 0 },
        { nodeId: "b", since: 1 },
      ],
      participant: () => {
        throw new Error("no ceremony expected");
      },
      ask: async (nodeId: string, _op: string, args: unknown) => {
        asked.push(args);
        return {
          request:
            nodeId === "b"
              ? {
                  status: "succeeded",
                  result: new TextEncoder().encode("1"),
                  error: null,
                  paramsHash: hash,
                }
              : null,
          wallet: null,
        };
      },
    } as unknown as PeerDirectory;
    const who = { client: "alice", paramsHash: hash };
    expect((await gatherRequestContext(peers, "sign", "r-1", "w-1", who)).prior).toBe(1);
    expect(asked).toEqual([
      { kind: "sign", requestId: "r-1", walletId: "w-1", client: "alice" },
      { kind: "sign", requestId: "r-1", walletId: "w-1", client: "alice" },
    ]);
    await expect(
      gatherRequestContext(peers, "sign", "r-1", "w-1", {
        client: "alice",
        paramsHash: sign("22".repeat(32)),
      }),
    ).rejects.toMatchObject({ code: "conflict" });
  });
});
