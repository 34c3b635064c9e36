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
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ApprovalReplayCache, SUPERSEDE_WINDOW_MS } from "../../src/enclave/approval-replay.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { loadDkls, rekey, type KeyShare } from "../../src/enclave/dkls23/binding.ts";
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

  it("supersedes only a session still before phase 2 and younger than SUPERSEDE_WINDOW_MS", () => {
    let ms = 0;
    const cache = new ApprovalReplayCache(
      8,
      () => 1_000,
      () => ms,
    );
    const dropped: string[] = [];
    const held = new Map<string, ReturnType<ApprovalReplayCache["claim"]>>();
    const drop = (s: string) => {
      dropped.push(s);
      held.get(s)!.release();
    };
    const claim = (name: string, session: string) => {
      held.set(session, cache.claim(request(name, 2_000), session, drop));
    };
    // A session that took its phase-2 step is running: a tiny id cancels it no more.
    claim("request A", "50");
    held.get("50")!.progress();
    expect(thrown(() => claim("request A", "01")).message).toMatch(/session open/);
    // One that waits for phase 2 beyond the window is kept too.
    claim("request B", "50");
    ms = SUPERSEDE_WINDOW_MS;
    expect(() => claim("request B", "01")).toThrow(ApprovalError);
    // Within the window and before phase 2: superseded, as concurrent duplicates need.
    claim("request C", "50");
    ms += SUPERSEDE_WINDOW_MS - 1;
    claim("request C", "01");
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
      // The seal receipt's keys (shares.ts holdPending): their bytes do not matter here.
      peerSigningKeys: () => new Map<number, Uint8Array>(),
    }),
    ownSigningKey: () => new Uint8Array(32),
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
    expect(one.start(start(id(0x80), 1)).superseded).toBeUndefined();
    // The start names the session it cancelled, for the host's audit (node-host.ts).
    expect(toHex(one.start(start(id(0x20), 1)).superseded!)).toBe(toHex(id(0x80)));
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

  it("a session that took its phase-2 step is not superseded by a lower id: it goes on", () => {
    const parties = [enclave(), enclave()];
    const sessionId = id(0x80);
    let out = parties.flatMap((c, i) =>
      c.start(start(sessionId, i + 1)).messages.map((m) => parseMessage(m)),
    );
    out = parties.flatMap((c, i) =>
      c
        .step({ sessionId, phase: 2, messages: inboxFor(i + 1, out).map((m) => m.bytes) })
        .messages.map((m) => parseMessage(m)),
    );
    // A duplicate with a tiny id (anyone able to start sessions at the node): refused.
    expect(refusedWith(() => parties[0]!.start(start(id(0x01), 1)))).toEqual(replayed);
    out = parties.flatMap((c, i) =>
      c
        .step({ sessionId, phase: 3, messages: inboxFor(i + 1, out).map((m) => m.bytes) })
        .messages.map((m) => parseMessage(m)),
    );
    for (const [i, c] of parties.entries())
      expect(
        c.step({ sessionId, phase: 4, messages: inboxFor(i + 1, out).map((m) => m.bytes) })
          .publicKey,
      ).toBeInstanceOf(Uint8Array);
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

describe("Ceremonies: an imported key is dealt at most once per enclave", () => {
  const admin = KeySigner.generate("ed25519");
  const settings: ApprovalSettings = {
    adminPolicy: adminPolicyOf(
      toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
    ),
    requireApprovals: true,
  };
  const walletPolicy = encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] });
  const passThrough = {
    open: () => ({
      seal: (b: Uint8Array) => b.slice(),
      open: (b: Uint8Array) => b.slice(),
      close() {},
      // The seal receipt's keys (shares.ts holdPending): their bytes do not matter here.
      peerSigningKeys: () => new Map<number, Uint8Array>(),
    }),
    ownSigningKey: () => new Uint8Array(32),
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
  const envelope = randomBytes(120);
  const approvalOf = async (requestId: string) => {
    const a = await approve(
      {
        operation: "import",
        walletId: "w_import_once",
        requestId,
        ...validity(300),
        digest: sha256(envelope),
        policyHash: policyHash(walletPolicy),
        threshold: 2,
        parties: 2,
      },
      [admin],
    );
    return { approvalRequest: a.request, approvals: a.approvals.map(encodeApproval) };
  };
  const start = (
    sessionId: Uint8Array,
    requestId: string,
    approval: { approvalRequest: Uint8Array; approvals: Uint8Array[] },
  ): CeremonyStartRequest => ({
    kind: "dkg",
    sessionId,
    walletId: "w_import_once",
    threshold: 2,
    parties: 2,
    partyIndex: 1,
    importDealer: 1,
    importEnvelope: envelope,
    peerDocuments: [],
    peerParties: [],
    requestId,
    policy: walletPolicy,
    ...approval,
  });
  /** The dealer's open: counts how often the envelope was opened. */
  let opened = 0;
  const open = async (): Promise<KeyShare[]> => {
    opened++;
    return rekey({
      threshold: 2,
      parties: 2,
      secretKey: secp256k1.utils.randomSecretKey(),
      sessionId: randomBytes(32),
    });
  };
  const refusal = async (p: Promise<unknown>) => {
    const e = (await p.then(
      () => {
        throw new Error("expected a refusal");
      },
      (x: unknown) => x,
    )) as EnclaveError;
    return { code: e.code, reason: e.reason, message: e.message };
  };

  beforeAll(() => loadDkls());

  it("a session the coordinator dealt and aborted leaves the approval used and the envelope dealt", async () => {
    const dealer = enclave();
    opened = 0;
    const approval = await approvalOf("req-import-1");
    // Session B, the coordinator's own: the dealer deals at phase 1; then it is aborted.
    const b = await dealer.startImport(start(id(0x90), "req-import-1", approval), open);
    expect(b.messages.length).toBe(1);
    dealer.abort({ sessionId: id(0x90) });
    // The real import, with the same envelope and approvals: refused, nothing opened again.
    expect(
      await refusal(dealer.startImport(start(id(0x91), "req-import-1", approval), open)),
    ).toMatchObject({ code: "approval_replayed", reason: "replayed" });
    // Nor under another approval of the same envelope.
    const again = await approvalOf("req-import-2");
    const e = await refusal(dealer.startImport(start(id(0x92), "req-import-2", again), open));
    expect(e).toMatchObject({ code: "approval_replayed", reason: "replayed" });
    expect(e.message).toMatch(/already opened and dealt/);
    expect(opened).toBe(1);
    dealer.closeAll();
  });

  it("a duplicate import start with a lower session id never supersedes the open one", async () => {
    const dealer = enclave();
    opened = 0;
    const approval = await approvalOf("req-import-3");
    await dealer.startImport(start(id(0x80), "req-import-3", approval), open);
    expect(
      await refusal(dealer.startImport(start(id(0x01), "req-import-3", approval), open)),
    ).toMatchObject({ code: "approval_replayed" });
    expect(dealer.size).toBe(1);
    expect(opened).toBe(1);
    dealer.closeAll();
  });

  it("an imported wallet signs nothing at generation 0 in the enclaves that took part", async () => {
    let generation = 0;
    // The share table's part in a sign start, over a real share: generation as the host loaded it.
    const share = (await open())[0]!;
    const table = {
      pin: () => ({
        entry: { share, generation, partyIndex: 1, publicKey: share.publicKey, policy: null },
        release() {},
      }),
      refuseIfStale() {},
      holdPending() {},
      dropPending: () => false,
    } as unknown as ShareTable;
    const dealer = new Ceremonies(table, passThrough, () => {}, 60_000, 60_000, settings);
    const sessionId = id(0x60);
    const approval = await approvalOf("req-import-5");
    await dealer.startImport(start(sessionId, "req-import-5", approval), open);
    // A 2-party import's dealer takes no messages after phase 1.
    for (const phase of [2, 3, 4]) dealer.step({ sessionId, phase, messages: [] });
    const sign: CeremonyStartRequest = {
      kind: "sign",
      sessionId: id(0x61),
      walletId: "w_import_once",
      signers: [1, 2],
      digest: new Uint8Array(32),
      peerDocuments: [],
      peerParties: [],
    };
    const e = thrown(() => dealer.start(sign)) as EnclaveError;
    expect(e.code).toBe("bad_request");
    expect(e.message).toMatch(/imported and is still at generation 0.*refresh it before signing/);
    // Once refreshed the check is passed (this start then fails for want of approvals).
    generation = 1;
    expect(
      (thrown(() => dealer.start({ ...sign, sessionId: id(0x62) })) as EnclaveError).code,
    ).toBe("unauthorised");
  });

  it("a start that fails before dealing opens nothing for good: the envelope may be opened again", async () => {
    const dealer = enclave();
    const approval = await approvalOf("req-import-4");
    const failing = async (): Promise<KeyShare[]> => {
      throw new EnclaveError("bad_request", "the key import envelope could not be opened");
    };
    expect(
      (await refusal(dealer.startImport(start(id(0x70), "req-import-4", approval), failing))).code,
    ).toBe("bad_request");
    opened = 0;
    expect(
      (await dealer.startImport(start(id(0x71), "req-import-4", approval), open)).messages,
    ).toHaveLength(1);
    expect(opened).toBe(1);
    dealer.closeAll();
  });
});

const id = (byte: number) => new Uint8Array(32).fill(byte);
