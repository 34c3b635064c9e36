/** Admission limits (src/host/rate-limits.ts) and their use by the request handler and the participant, with an injected clock. */
import { describe, expect, it } from "vitest";
import {
  ClientLimits,
  ConcurrencyCap,
  MAX_TRACKED_CLIENTS,
  RateLimitError,
  TokenBucket,
} from "../../src/host/rate-limits.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import type { Db } from "../../src/host/store/index.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { contractCode } from "../../src/shared/wire/errors.ts";
import { thrown } from "../helpers/thrown.ts";

function clock(start = 1_000_000) {
  const c = { now: start, read: () => c.now };
  return c;
}

/** The rate_limited refusal `f` throws. */
function refusal(f: () => unknown): RateLimitError {
  const e = thrown(RateLimitError, f);
  expect(e.code).toBe("rate_limited");
  return e;
}

describe("token bucket", () => {
  it("gives its burst at once, then refills at its rate and never beyond the burst", () => {
    const c = clock();
    const b = new TokenBucket(2, 3, c.now);
    expect([1, 2, 3, 4].map(() => b.take(c.now))).toEqual([true, true, true, false]);
    c.now += 499;
    expect(b.take(c.now)).toBe(false);
    c.now += 1; // 500 ms at 2/s is one token
    expect(b.take(c.now)).toBe(true);
    expect(b.take(c.now)).toBe(false);
    c.now += 60_000;
    expect(b.isFull(c.now)).toBe(true);
    expect([1, 2, 3, 4].map(() => b.take(c.now))).toEqual([true, true, true, false]);
  });

  it("refills nothing when the clock steps back", () => {
    const c = clock();
    const b = new TokenBucket(1, 1, c.now);
    expect(b.take(c.now)).toBe(true);
    c.now -= 10_000;
    expect(b.take(c.now)).toBe(false);
    c.now += 10_999;
    expect(b.take(c.now)).toBe(false);
    c.now += 1;
    expect(b.take(c.now)).toBe(true);
  });
});

describe("per client user limits", () => {
  it("caps requests in flight, refusing at once and without spending a token", () => {
    const c = clock();
    const limits = new ClientLimits({ requestsPerSecond: 1, burst: 3, maxInFlight: 2 }, c.read);
    const a = limits.admit("alice");
    limits.admit("alice");
    expect(limits.inFlight("alice")).toBe(2);
    expect(refusal(() => limits.admit("alice")).message).toMatch(
      /alice already has 2 requests in flight on this node \(limit 2\)/,
    );
    a.release();
    a.release(); // releasing twice frees one slot only
    expect(limits.inFlight("alice")).toBe(1);
    // The refusal above took no token: the third of the burst is still there.
    limits.admit("alice");
    expect(limits.peakInFlight).toBe(2);
    expect(limits.refused).toBe(1);
  });

  it("caps requests per second per client; another client keeps its own bucket", () => {
    const c = clock();
    const limits = new ClientLimits({ requestsPerSecond: 5, burst: 2, maxInFlight: 100 }, c.read);
    limits.admit("flood").release();
    limits.admit("flood").release();
    expect(refusal(() => limits.admit("flood")).message).toMatch(
      /flood exceeds 5 requests per second \(burst 2\)/,
    );
    expect(() => limits.admit("honest")).not.toThrow();
    c.now += 200;
    expect(() => limits.admit("flood")).not.toThrow();
    expect(() => limits.admit("flood")).toThrow(RateLimitError);
  });

  it("remembers a bounded number of clients, forgetting idle ones first", () => {
    const c = clock();
    const limits = new ClientLimits({ requestsPerSecond: 1, burst: 1, maxInFlight: 1 }, c.read, 2);
    const held = limits.admit("a");
    limits.admit("b").release(); // b's bucket is empty: remembered
    expect(refusal(() => limits.admit("c")).message).toMatch(/too many client users/);
    c.now += 1_000; // b's bucket is full again and nothing is in flight: b is forgotten
    expect(() => limits.admit("c")).not.toThrow();
    held.release();
    expect(MAX_TRACKED_CLIENTS).toBeGreaterThan(1_000);
  });

  it("refuses settings that would disable a limit", () => {
    expect(() => new ClientLimits({ requestsPerSecond: 0, burst: 1, maxInFlight: 1 })).toThrow(
      /requestsPerSecond/,
    );
    expect(() => new ClientLimits({ requestsPerSecond: 1, burst: 1.5, maxInFlight: 1 })).toThrow(
      /burst/,
    );
    expect(() => new ClientLimits({ requestsPerSecond: 1, burst: 1, maxInFlight: 0 })).toThrow(
      /maxInFlight/,
    );
  });
});

describe("concurrency cap with deadlines", () => {
  it("holds at most max keys; a key counts until released or until its lifetime ends", () => {
    const c = clock();
    const cap = new ConcurrencyCap(2, 1_000, c.read);
    cap.acquire("s1", "busy");
    cap.acquire("s1", "busy"); // the same key again holds nothing more
    cap.acquire("s2", "busy");
    expect(refusal(() => cap.acquire("s3", "node n is busy")).message).toBe(
      "node n is busy (2 at once, limit 2)",
    );
    cap.release("s1");
    c.now += 500;
    cap.acquire("s3", "busy");
    c.now += 499;
    expect(() => cap.acquire("s4", "busy")).toThrow(RateLimitError);
    c.now += 1; // s2 outlived its lifetime (its holder never said it ended)
    cap.acquire("s4", "busy");
    expect(cap.size).toBe(2);
    expect(cap.peak).toBe(2);
  });
});

/** An enclave whose ceremonies always start and step; counts what reached it. */
function stubEnclave() {
  const calls = { start: 0, step: 0, abort: 0 };
  const reply = { messages: [], generation: 0 };
  const enclave = {
    startCeremony: async () => (calls.start++, reply),
    stepCeremony: async () => (calls.step++, reply),
    abortCeremony: async () => (calls.abort++, { dropped: true }),
  } as unknown as EnclaveClient;
  return { enclave, calls };
}

const sessionId = (n: number) => new Uint8Array(32).fill(n);
const dkgStart = (n: number) =>
  ({
    kind: "dkg",
    sessionId: sessionId(n),
    // One wallet per session: a node takes part in one DKG/refresh per wallet at a time.
    walletId: `w-${n}`,
    threshold: 2,
    parties: 2,
    partyIndex: 1,
  }) as CeremonyStartRequest;

describe("a node's cap on the ceremonies it takes part in", () => {
  function host(max: number) {
    const { enclave, calls } = stubEnclave();
    const node = new NodeHost({
      nodeId: "node-7",
      enclave,
      credentials: async () => ({ accessKeyId: "id", secretAccessKey: "secret" }),
      db: {} as Db,
      maxCeremonies: max,
    });
    return { node, calls };
  }

  it("refuses one more start with rate_limited naming the node, before its enclave sees it", async () => {
    const { node, calls } = host(2);
    await node.start(dkgStart(1));
    await node.start(dkgStart(2));
    const e = (await node.start(dkgStart(3)).catch((x: unknown) => x)) as RateLimitError;
    expect(e).toBeInstanceOf(RateLimitError);
    expect(e.code).toBe("rate_limited");
    expect(e.message).toMatch(/node node-7 already takes part in its maximum of concurrent/);
    expect(calls.start).toBe(2);
    // A coordinator's RemoteParticipant maps it by contractCode: it stays rate_limited.
    expect(contractCode(e.code)).toBe("rate_limited");
  });

  it("frees a slot after the last phase, after an abort, and after a failed start", async () => {
    const { node } = host(1);
    await node.start(dkgStart(1));
    await node.step({ sessionId: sessionId(1), phase: 2, messages: [] });
    await expect(node.start(dkgStart(2))).rejects.toThrow(RateLimitError);
    await node.step({ sessionId: sessionId(1), phase: 4, messages: [] });
    await node.start(dkgStart(2));
    await node.abort(sessionId(2));
    const failing = host(1);
    (failing.node as unknown as { enclave: EnclaveClient }).enclave = {
      startCeremony: async () => {
        throw Object.assign(new Error("no"), { code: "bad_request" });
      },
    } as unknown as EnclaveClient;
    await expect(failing.node.start(dkgStart(1))).rejects.toThrow("no");
    expect(failing.node.ceremonies.size).toBe(0);
    await node.start(dkgStart(3));
    expect(node.ceremonies.peak).toBe(1);
  });
});

describe("the request handler's admission", () => {
  function recorder(client: string) {
    const out: { done?: unknown; fail?: { code: string; message: string } } = {};
    const reply: Reply = {
      client,
      progress: () => {},
      done: (r) => (out.done = r),
      fail: (e) => (out.fail = e),
    };
    return { out, reply };
  }

  it("answers rate_limited at once while a client is at its in-flight cap, and frees the slot when answered", async () => {
    let answer: (v: unknown) => void = () => {};
    const peers = {
      liveNodes: () => [{ nodeId: "a" }],
      ask: () => new Promise((r) => (answer = r)),
    } as unknown as PeerDirectory;
    const c = clock();
    const limits = new ClientLimits({ requestsPerSecond: 100, burst: 100, maxInFlight: 1 }, c.read);
    const handler = new RequestHandler({ nodeId: "a" } as NodeHost, peers, {
      phaseTimeoutMs: 1_000,
      limits,
    });
    const first = recorder("flood");
    const pending = handler.handle("wallets", { requestId: "r-1" }, first.reply);
    const second = recorder("flood");
    await handler.handle("nodes", { requestId: "r-2" }, second.reply);
    expect(second.out.fail?.code).toBe("rate_limited");
    expect(second.out.fail?.message).toMatch(/flood already has 1 requests in flight/);
    // Another client user is not held up by the flood.
    const honest = recorder("honest");
    await handler.handle("nodes", { requestId: "r-3" }, honest.reply);
    expect(honest.out.done).toBeDefined();
    answer([]);
    await pending;
    expect(first.out.done).toEqual({ wallets: [] });
    expect(limits.inFlight("flood")).toBe(0);
    const third = recorder("flood");
    await handler.handle("nodes", { requestId: "r-4" }, third.reply);
    expect(third.out.done).toBeDefined();
  });
});
