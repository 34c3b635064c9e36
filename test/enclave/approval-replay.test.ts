/**
 * One session per approved request in each enclave (src/enclave/approval-replay.ts,
 * wired into src/enclave/ceremonies.ts): a second start of the same approved
 * request is refused with approval_replayed while the first is open and for
 * good once the first emitted its last (phase-3) messages; a session that
 * ended before that is forgotten, so the request may run again; entries end
 * with their approval; the cache refuses rather than forgets when full.
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { KeySigner, approve, approverKeyOf, validity } from "../../src/client/signers.ts";
import { adminPolicyOf, type ApprovalSettings } from "../../src/enclave/approval-gate.ts";
import { ApprovalReplayCache } from "../../src/enclave/approval-replay.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  ApprovalError,
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { contractCode } from "../../src/shared/wire/errors.ts";
import { inboxFor, parseMessage } from "../../src/shared/wire/protocol-message.ts";

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a refusal");
}

/** A verified sign request as the gate hands it over: `name` is its request id; issued a minute before it expires. */
const request = (name: string, expiresAt: number, over: Partial<ApprovableRequest> = {}) => ({
  operation: "sign" as const,
  walletId: "w_cache",
  requestId: name.replace(/ /g, "-"),
  issuedAt: expiresAt - 60,
  expiresAt,
  digest: new Uint8Array(32),
  path: "m",
  ...over,
});

const claimOf =
  (cache: ApprovalReplayCache) =>
  (name: string, expiresAt: number, session = "55", supersede?: (s: string) => void) =>
    cache.claim(request(name, expiresAt), session, supersede);

describe("ApprovalReplayCache", () => {
  it("refuses a second claim of the same request while the first is held, and for good once spent", () => {
    const claim = claimOf(new ApprovalReplayCache(8, () => 1_000));
    const first = claim("request A", 2_000);
    const e = thrown(() => claim("request A", 2_000)) as ApprovalError;
    expect(e).toBeInstanceOf(ApprovalError);
    expect({ code: e.code, reason: e.reason }).toEqual({
      code: "approval_replayed",
      reason: "replayed",
    });
    expect(e.message).toMatch(/session open/);
    // Another request id is another request.
    claim("request B", 2_000);
    first.spend();
    first.release();
    expect(thrown(() => claim("request A", 2_000)).message).toMatch(/already ran/);
  });

  it("is the request, not the approval: re-approved with other times it is the same; another digest is another", () => {
    let now = 1_000;
    const cache = new ApprovalReplayCache(8, () => now);
    cache.claim(request("req-A", 1_100), "55").spend();
    // Freshly signed approvals of the same request id and parameters, valid longer.
    expect(() => cache.claim(request("req-A", 1_500), "55")).toThrow(ApprovalError);
    expect(() =>
      cache.claim(request("req-A", 1_100, { digest: new Uint8Array(32).fill(1) }), "55"),
    ).not.toThrow();
    // The refused approval was valid until 1500: the request is remembered that long.
    now = 1_200;
    expect(() => cache.claim(request("req-A", 1_500), "55")).toThrow(ApprovalError);
    now = 1_500;
    expect(() => cache.claim(request("req-A", 2_000), "55")).not.toThrow();
  });

  it("a lower session id supersedes an unspent one (the same winner in every order); a spent one never", () => {
    const claim = claimOf(new ApprovalReplayCache(8, () => 1_000));
    const dropped: string[] = [];
    const drop = (s: string) => {
      dropped.push(s);
      held.get(s)!.release();
    };
    const held = new Map([["50", claim("request A", 2_000, "50", drop)]]);
    // Higher: refused whatever the caller offers.
    expect(() => claim("request A", 2_000, "70", drop)).toThrow(ApprovalError);
    held.set("30", claim("request A", 2_000, "30", drop));
    expect(dropped).toEqual(["50"]);
    expect(() => claim("request A", 2_000, "40", drop)).toThrow(ApprovalError);
    // Without a way to drop the held session: refused.
    expect(() => claim("request A", 2_000, "10")).toThrow(ApprovalError);
    held.get("30")!.spend();
    expect(thrown(() => claim("request A", 2_000, "10", drop)).message).toMatch(/already ran/);
    expect(dropped).toEqual(["50"]);
  });

  it("forgets a request whose session ended before it was spent, and every request once its approval expired", () => {
    let now = 1_000;
    const claim = claimOf(new ApprovalReplayCache(8, () => now));
    const held = claim("request A", 1_500);
    held.release();
    held.release();
    const again = claim("request A", 1_500);
    // A stale claim's release does not drop the newer claim of the same request.
    held.release();
    expect(() => claim("request A", 1_500)).toThrow(ApprovalError);
    again.spend();
    now = 1_499;
    expect(() => claim("request A", 1_500)).toThrow(ApprovalError);
    now = 1_500;
    expect(() => claim("request A", 1_500)).not.toThrow();
  });

  it("when full of unexpired requests refuses new ones (a rate limit), forgetting none early; expired ones make room", () => {
    let now = 1_000;
    const cache = new ApprovalReplayCache(3, () => now);
    const claim = claimOf(cache);
    claim("1", 1_100).spend();
    claim("2", 1_200).spend();
    claim("3", 1_300).spend();
    const full = thrown(() => claim("4", 1_300)) as EnclaveError;
    expect(full).toBeInstanceOf(EnclaveError);
    expect(full.code).toBe("replay_cache_full");
    expect(contractCode(full.code)).toBe("rate_limited");
    // Still remembered: the full cache forgot nothing.
    expect(() => claim("1", 1_100)).toThrow(ApprovalError);
    now = 1_100;
    claim("4", 1_300);
    expect(cache.size).toBe(3);
    expect(() => claim("2", 1_200)).toThrow(ApprovalError);
  });
});

describe("Ceremonies: an approved DKG request starts one session per enclave", () => {
  const admin = KeySigner.generate("ed25519");
  const settings: ApprovalSettings = {
    adminPolicy: adminPolicyOf(
      toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
    ),
    requireApprovals: true,
  };
  const walletPolicy = encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] });
  // Bytes pass through unchanged: these tests are about the approval memory, not the channel.
  const passThrough = {
    open: () => ({
      seal: (b: Uint8Array) => b.slice(),
      open: (b: Uint8Array) => b.slice(),
      close() {},
    }),
    // The wallet statement's signature: its bytes do not matter here.
    signWithChannelKey: () => new Uint8Array(64),
  } as unknown as PeerSessions;
  const enclave = () =>
    new Ceremonies(
      new ShareTable(null, "00".repeat(48), () => {}, 60_000),
      passThrough,
      () => {},
      60_000,
      60_000,
      settings,
    );
  let approval: { approvalRequest: Uint8Array; approvals: Uint8Array[] };

  beforeAll(async () => {
    loadDkls();
    const a = await approve(
      {
        operation: "dkg",
        walletId: "w_replay",
        requestId: "req-replay",
        ...validity(300),
        policyHash: policyHash(walletPolicy),
        threshold: 2,
        parties: 2,
      },
      [admin],
    );
    approval = { approvalRequest: a.request, approvals: a.approvals.map(encodeApproval) };
  });

  const start = (sessionId: Uint8Array, partyIndex: number): CeremonyStartRequest => ({
    kind: "dkg",
    sessionId,
    walletId: "w_replay",
    threshold: 2,
    parties: 2,
    partyIndex,
    peerDocuments: [],
    peerParties: [],
    requestId: "req-replay",
    policy: walletPolicy,
    ...approval,
  });
  const refusedWith = (f: () => unknown) => {
    const e = thrown(f) as EnclaveError;
    return { code: e.code, reason: e.reason };
  };
  const replayed = { code: "approval_replayed", reason: "replayed" };

  const id = (byte: number) => new Uint8Array(32).fill(byte);

  it("refuses a second session while the first is open, runs it again after an abort before phase 3", () => {
    const one = enclave();
    expect(one.start(start(id(0x80), 1)).messages.length).toBeGreaterThan(0);
    expect(refusedWith(() => one.start(start(id(0x90), 1)))).toEqual(replayed);
    expect(one.size).toBe(1);
    one.abort({ sessionId: id(0x80) });
    // Its phase-3 messages never left: no peer can finish it, so the request may run again.
    expect(one.start(start(id(0xa0), 1)).messages.length).toBeGreaterThan(0);
    one.closeAll();
  });

  it("a concurrent duplicate with a lower session id supersedes the open one, whose next step says so", () => {
    const one = enclave();
    one.start(start(id(0x80), 1));
    one.start(start(id(0x20), 1));
    expect(one.size).toBe(1);
    expect(refusedWith(() => one.step({ sessionId: id(0x80), phase: 2, messages: [] }))).toEqual(
      replayed,
    );
    // The superseding session goes on (its step fails here only for want of peers' messages).
    expect(
      (thrown(() => one.step({ sessionId: id(0x20), phase: 2, messages: [] })) as EnclaveError)
        .code,
    ).toBe("ceremony_failed");
    one.closeAll();
  });

  it("once an enclave emitted phase 3 of a session, the request never starts again there, even after that session ends", () => {
    const parties = [enclave(), enclave()];
    const sessionId = randomBytes(32);
    let out = parties.flatMap((c, i) =>
      c.start(start(sessionId, i + 1)).messages.map((m) => parseMessage(m)),
    );
    for (const phase of [2, 3]) {
      out = parties.flatMap((c, i) =>
        c
          .step({ sessionId, phase, messages: inboxFor(i + 1, out).map((m) => m.bytes) })
          .messages.map((m) => parseMessage(m)),
      );
    }
    // Party 1 is aborted after phase 3 (its last messages are out); party 2 finishes.
    parties[0]!.abort({ sessionId });
    const done = parties[1]!.step({
      sessionId,
      phase: 4,
      messages: inboxFor(2, out).map((m) => m.bytes),
    });
    expect(done.publicKey).toBeInstanceOf(Uint8Array);
    for (const c of parties)
      expect(refusedWith(() => c.start(start(randomBytes(32), 1)))).toEqual(replayed);
  });
});
