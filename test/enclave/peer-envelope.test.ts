import { randomBytes } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { beforeAll, describe, expect, it } from "vitest";
import { createDevelopmentPki, type DevelopmentPki } from "../../src/dev/dev-pki.ts";
import { pcr0ForCode, SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import type { TrustedRoot } from "../../src/attestation/verifier.ts";
import { Dkg, loadDkls } from "../../src/enclave/dkls23/binding.ts";
import {
  PeerAttestationError,
  verifyPeer,
  type PeerIdentity,
  type VerifyPeerOptions,
} from "../../src/enclave/peer-attestation.ts";
import {
  PeerMessageError,
  PeerSession,
  type PeerMessageErrorCode,
} from "../../src/enclave/peer-envelope.ts";
import {
  MAX_SEALED_LEN,
  NONCE_BYTES,
  PROTECTED_WIRE_VERSION,
  PeerEnvelopeFormatError,
  TAG_BYTES,
  readUnverifiedHeader,
} from "../../src/shared/wire/peer-envelope-header.ts";
import {
  CHANNEL_BINDING_BYTES,
  PeerKeys,
  parseChannelKeyBinding,
} from "../../src/enclave/peer-keys.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  HEADER_LEN,
  inboxFor,
  parseMessage,
  type ProtocolMessage,
} from "../../src/shared/wire/protocol-message.ts";

const PARTIES = [1, 2, 3] as const;
const text = (s: string) => new TextEncoder().encode(s);
const PCR0 = pcr0ForCode([text("enclave image A")]);
const OTHER_PCR0 = pcr0ForCode([text("enclave image B")]);

let pki: DevelopmentPki;
let roots: TrustedRoot[];
const keys = new Map<number, PeerKeys>();
const docs = new Map<number, Uint8Array>();
const identities = new Map<number, PeerIdentity>();

function verifyOpts(over: Partial<VerifyPeerOptions> = {}): VerifyPeerOptions {
  return {
    roots,
    allowDevelopment: true,
    now: new Date(),
    allowedPcr0: [toHex(PCR0), randomBytes(48)],
    maxAgeMs: 10 * 60_000,
    ...over,
  };
}

function nsmFor(pcr0: Uint8Array): SimulatedNsm {
  return new SimulatedNsm({ pki, pcrs: { 0: pcr0 } });
}

/** A core-format message (version 1 header + body), as the DKLs23 core would emit. */
function coreMessage(
  sessionId: Uint8Array,
  phase: number,
  from: number,
  to: number,
  body: Uint8Array,
): Uint8Array {
  const m = new Uint8Array(HEADER_LEN + body.length);
  m.set([1, 1, phase, from, to], 0);
  m.set(sessionId, 5);
  m.set(body, HEADER_LEN);
  return m;
}

function session(
  me: number,
  sessionId: Uint8Array,
  peers: ReadonlyMap<number, PeerIdentity> = identities,
): PeerSession {
  return new PeerSession({ sessionId, me, keys: keys.get(me)!, peers });
}

function failure(f: () => unknown): PeerMessageErrorCode | "accepted" {
  try {
    f();
    return "accepted";
  } catch (e) {
    if (!(e instanceof PeerMessageError))
      throw new Error(`expected a PeerMessageError, got ${String(e)}`);
    return e.code;
  }
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

/** All header positions, then `count` positions spread evenly over the rest (always including the last byte). */
function flipPositions(length: number, count: number): number[] {
  const set = new Set<number>();
  for (let p = 0; p < HEADER_LEN; p++) set.add(p);
  for (let i = 0; i < count; i++)
    set.add(HEADER_LEN + Math.floor((i * (length - HEADER_LEN)) / count));
  set.add(length - 1);
  return [...set].sort((a, b) => a - b);
}

beforeAll(() => {
  pki = createDevelopmentPki();
  roots = [{ der: pki.root.der, development: true }];
  for (const i of PARTIES) {
    const k = new PeerKeys();
    keys.set(i, k);
    // Each party is a separate enclave (own NSM, same image) binding its own keys.
    docs.set(i, nsmFor(PCR0).attest({ userData: k.channelKeyBinding(), nonce: randomBytes(16) }));
  }
  for (const i of PARTIES) identities.set(i, verifyPeer(docs.get(i)!, verifyOpts()));
});

describe("channel keys and peer admission", () => {
  it("binds both public keys into user_data and recovers them from a verified document", () => {
    const k = keys.get(1)!;
    const binding = k.channelKeyBinding();
    expect(binding.length).toBe(CHANNEL_BINDING_BYTES);
    expect(binding.length).toBeLessThanOrEqual(512);
    expect(parseChannelKeyBinding(binding)).toEqual({
      x25519Public: k.x25519Public,
      ed25519Public: k.ed25519Public,
    });
    const id = identities.get(1)!;
    expect(id.x25519Public).toEqual(k.x25519Public);
    expect(id.ed25519Public).toEqual(k.ed25519Public);
    expect(id.pcr0).toEqual(PCR0);
    expect(id.documentHash).toEqual(sha256(docs.get(1)!));
    // The node identity a repair approval names (lifecycle-repair.ts): PCR4 as the document carries it.
    const pcr4 = new Uint8Array(48).fill(0x44);
    const withPcr4 = new SimulatedNsm({ pki, pcrs: { 0: PCR0, 4: pcr4 } }).attest({
      userData: k.channelKeyBinding(),
    });
    expect(verifyPeer(withPcr4, verifyOpts()).pcr4).toEqual(pcr4);
    // Bytes work as well as hex in the allow list.
    expect(verifyPeer(docs.get(2)!, verifyOpts({ allowedPcr0: [PCR0] })).x25519Public).toEqual(
      keys.get(2)!.x25519Public,
    );
  });

  it("refuses a document whose PCR0 is not allowed, one without a binding, and a development root unless allowed", () => {
    const code = (doc: Uint8Array, over: Partial<VerifyPeerOptions> = {}) => {
      try {
        verifyPeer(doc, verifyOpts(over));
        return "accepted";
      } catch (e) {
        if (!(e instanceof PeerAttestationError)) throw e;
        return e.code === "attestation_invalid" ? `${e.code}:${e.attestationReason}` : e.code;
      }
    };
    const foreign = nsmFor(OTHER_PCR0).attest({ userData: new PeerKeys().channelKeyBinding() });
    expect(code(foreign)).toBe("pcr0_not_allowed");
    expect(code(foreign, { allowedPcr0: [OTHER_PCR0] })).toBe("accepted");
    expect(code(nsmFor(PCR0).attest({}))).toBe("bad_binding");
    expect(code(nsmFor(PCR0).attest({ userData: randomBytes(CHANNEL_BINDING_BYTES) }))).toBe(
      "bad_binding",
    );
    expect(code(docs.get(1)!, { allowDevelopment: false })).toBe(
      "attestation_invalid:development_root",
    );
    expect(
      code(docs.get(1)!, { roots: [{ der: createDevelopmentPki().root.der, development: true }] }),
    ).toBe("attestation_invalid:untrusted_root");
    expect(() => verifyPeer(docs.get(1)!, verifyOpts({ allowedPcr0: [] }))).toThrow(TypeError);
  });
});

describe("round trips among three attested parties", () => {
  it("delivers every point-to-point message and broadcast, keeping p2p bodies secret", () => {
    const sid = randomBytes(32);
    const sessions = new Map(PARTIES.map((i) => [i, session(i, sid)] as const));
    for (const phase of [1, 2, 3]) {
      for (const from of PARTIES) {
        const marker = randomBytes(32);
        const body = new Uint8Array([...randomBytes(40), ...marker, ...randomBytes(40)]);
        // Point to point, to each other party.
        for (const to of PARTIES.filter((p) => p !== from)) {
          const core = coreMessage(sid, phase, from, to, body);
          const sealed = sessions.get(from)!.seal(core);
          expect(sealed[0]).toBe(PROTECTED_WIRE_VERSION);
          expect(sealed.subarray(1, HEADER_LEN)).toEqual(core.subarray(1, HEADER_LEN));
          expect(sealed.length).toBe(core.length + NONCE_BYTES + TAG_BYTES);
          expect(contains(sealed, marker)).toBe(false);
          expect(readUnverifiedHeader(sealed)).toMatchObject({ ceremony: "dkg", phase, from, to });
          expect(sessions.get(to)!.open(sealed, phase)).toEqual(core);
        }
        // Broadcast, opened by each other party.
        const core = coreMessage(sid, phase, from, 0, body);
        const sealed = sessions.get(from)!.seal(core);
        for (const to of PARTIES.filter((p) => p !== from))
          expect(sessions.get(to)!.open(sealed, phase)).toEqual(core);
      }
    }
    for (const s of sessions.values()) expect(s.closed).toBe(false);
  });

  it("runs a real 2-of-3 DKG with every message sealed and opened on the way", () => {
    loadDkls();
    const sid = randomBytes(32);
    const sessions = new Map<number, PeerSession>(PARTIES.map((i) => [i, session(i, sid)]));
    const dkgs = new Map(
      PARTIES.map(
        (i) => [i, new Dkg({ threshold: 2, parties: 3, index: i, sessionId: sid })] as const,
      ),
    );
    // What crosses hosts and the broker: sealed bytes only.
    let wire: Uint8Array[] = PARTIES.flatMap((i) =>
      dkgs
        .get(i)!
        .phase1()
        .map((m) => sessions.get(i)!.seal(m.bytes)),
    );
    const inboxOf = (me: number, phase: number): ProtocolMessage[] => {
      // Hosts route on the clear header alone.
      const routed: ProtocolMessage[] = wire.map((w) => ({ ...readUnverifiedHeader(w), bytes: w }));
      return inboxFor(me, routed).map((m) => parseMessage(sessions.get(me)!.open(m.bytes, phase)));
    };
    for (const phase of [2, 3]) {
      const inboxes = PARTIES.map((i) => inboxOf(i, phase - 1));
      wire = PARTIES.flatMap((i, k) => {
        const out =
          phase === 2 ? dkgs.get(i)!.phase2(inboxes[k]!) : dkgs.get(i)!.phase3(inboxes[k]!);
        return out.map((m) => sessions.get(i)!.seal(m.bytes));
      });
    }
    const shares = PARTIES.map((i) => dkgs.get(i)!.phase4(inboxOf(i, 3)));
    expect(new Set(shares.map((s) => toHex(s.publicKey))).size).toBe(1);
    for (const s of shares) s.free();
  });
});

describe("rejections", () => {
  const body = () => new Uint8Array([...randomBytes(100), ...randomBytes(100)]);

  it("refuses the party whose document binds a substituted key, at message level", () => {
    // An authentic document for the same image, but over an attacker's keys: admission
    // cannot tell (which is why the enclave alone may choose its user_data); the channel can.
    const attacker = new PeerKeys();
    const swapped = verifyPeer(
      nsmFor(PCR0).attest({ userData: attacker.channelKeyBinding() }),
      verifyOpts(),
    );
    const viewOf1 = new Map(identities);
    viewOf1.set(3, swapped);
    const sid = randomBytes(32);
    const one = session(1, sid, viewOf1);
    const three = session(3, sid);
    expect(failure(() => one.open(three.seal(coreMessage(sid, 1, 3, 1, body()))))).toBe("bad_tag");
    expect(
      failure(() =>
        session(1, sid, viewOf1).open(session(3, sid).seal(coreMessage(sid, 1, 3, 0, body()))),
      ),
    ).toBe("bad_signature");
    // And what party 1 seals for "3" under the substituted key does not open at the real party 3.
    expect(
      failure(() =>
        session(3, sid).open(session(1, sid, viewOf1).seal(coreMessage(sid, 1, 1, 3, body()))),
      ),
    ).toBe("bad_tag");
    // Party 2, which holds party 3's genuine identity, is unaffected.
    const core = coreMessage(sid, 2, 3, 2, body());
    expect(session(2, sid).open(session(3, sid).seal(core))).toEqual(core);
  });

  it("rejects every single-byte flip of a sealed point-to-point message", () => {
    const sid = randomBytes(32);
    const sealed = session(2, sid).seal(coreMessage(sid, 2, 2, 1, body()));
    const positions = flipPositions(sealed.length, 170);
    expect(positions.length).toBeGreaterThanOrEqual(200);
    const accepted: number[] = [];
    const codes = new Set<string>();
    for (const pos of positions) {
      const bad = sealed.slice();
      bad[pos]! ^= 0x01 << (pos % 8);
      const code = failure(() => session(1, sid).open(bad));
      if (code === "accepted") accepted.push(pos);
      codes.add(code);
    }
    expect(accepted).toEqual([]);
    expect(codes).toContain("bad_tag");
    expect(codes).toContain("wrong_version");
    expect(codes).toContain("session_mismatch");
    expect(session(1, sid).open(sealed).length).toBe(sealed.length - NONCE_BYTES - TAG_BYTES);
  });

  it("rejects every single-byte flip of a signed broadcast", () => {
    const sid = randomBytes(32);
    const sealed = session(2, sid).seal(coreMessage(sid, 2, 2, 0, body()));
    const accepted: number[] = [];
    for (const pos of flipPositions(sealed.length, 170)) {
      const bad = sealed.slice();
      bad[pos]! ^= 0x80 >> (pos % 8);
      if (failure(() => session(1, sid).open(bad)) === "accepted") accepted.push(pos);
    }
    expect(accepted).toEqual([]);
  });

  it("rejects truncated, extended, oversized and unprotected input", () => {
    const sid = randomBytes(32);
    const core = coreMessage(sid, 1, 2, 1, body());
    const sealed = session(2, sid).seal(core);
    for (const len of [
      0,
      1,
      HEADER_LEN - 1,
      HEADER_LEN,
      HEADER_LEN + NONCE_BYTES + TAG_BYTES - 1,
      sealed.length - 1,
    ]) {
      expect(failure(() => session(1, sid).open(sealed.subarray(0, len)))).not.toBe("accepted");
    }
    expect(failure(() => session(1, sid).open(sealed.subarray(0, HEADER_LEN)))).toBe("truncated");
    expect(failure(() => session(1, sid).open(new Uint8Array([...sealed, 0])))).toBe("bad_tag");
    const huge = new Uint8Array(MAX_SEALED_LEN + 1);
    huge.set(sealed.subarray(0, HEADER_LEN));
    expect(failure(() => session(1, sid).open(huge))).toBe("too_large");
    expect(failure(() => session(1, sid).open(core))).toBe("wrong_version");
  });

  it("reads the clear header without keys, and refuses what is not an envelope header", () => {
    const sid = new Uint8Array(randomBytes(32));
    const sealed = session(2, sid).seal(coreMessage(sid, 3, 2, 1, body()));
    expect(readUnverifiedHeader(sealed)).toEqual({
      ceremony: "dkg",
      phase: 3,
      from: 2,
      to: 1,
      sessionId: sid,
    });
    const code = (b: Uint8Array) => {
      try {
        readUnverifiedHeader(b);
        return "accepted";
      } catch (e) {
        if (!(e instanceof PeerEnvelopeFormatError)) throw e;
        return e.code;
      }
    };
    expect(code(sealed.subarray(0, HEADER_LEN - 1))).toBe("truncated");
    expect(code(new Uint8Array(MAX_SEALED_LEN + 1))).toBe("too_large");
    expect(code(coreMessage(sid, 3, 2, 1, body()))).toBe("wrong_version");
    for (const [at, value] of [
      [1, 9],
      [2, 0],
      [2, 5],
      [3, 0],
      [3, 17],
      [4, 2],
      [4, 17],
    ] as const) {
      const bad = sealed.slice();
      bad[at] = value;
      expect(code(bad)).toBe("bad_header");
    }
  });

  it("rejects a replay inside the session, and then refuses everything (fail closed)", () => {
    const sid = randomBytes(32);
    const two = session(2, sid);
    const one = session(1, sid);
    const p2p = two.seal(coreMessage(sid, 1, 2, 1, body()));
    const bcast = two.seal(coreMessage(sid, 2, 2, 0, body()));
    one.open(p2p);
    one.open(bcast);
    expect(failure(() => one.open(bcast))).toBe("replay");
    expect(one.closed).toBe(true);
    expect(failure(() => one.open(two.seal(coreMessage(sid, 3, 2, 1, body()))))).toBe(
      "session_closed",
    );
    expect(failure(() => session(1, sid).open(p2p))).toBe("accepted"); // a fresh session is a fresh state...
    expect(
      failure(() => {
        const s = session(1, sid);
        s.open(p2p);
        s.open(p2p);
      }),
    ).toBe("replay"); // ...with its own memory
    // The sender will not seal a second message for the same phase and recipient either.
    expect(failure(() => two.seal(coreMessage(sid, 1, 2, 1, body())))).toBe("duplicate_outgoing");
  });

  it("rejects a message delivered into another session", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const sealed = session(2, a).seal(coreMessage(a, 1, 2, 1, body()));
    expect(failure(() => session(1, b).open(sealed))).toBe("session_mismatch");
    const relabelled = sealed.slice();
    relabelled.set(b, 5);
    expect(failure(() => session(1, b).open(relabelled))).toBe("bad_tag");
    const bcast = session(2, a).seal(coreMessage(a, 1, 2, 0, body()));
    const relabelledBcast = bcast.slice();
    relabelledBcast.set(b, 5);
    expect(failure(() => session(1, b).open(relabelledBcast))).toBe("bad_signature");
  });

  it("rejects a message claiming another sender, another recipient, or another phase", () => {
    const sid = randomBytes(32);
    const p2p = session(2, sid).seal(coreMessage(sid, 1, 2, 1, body()));
    const as3 = p2p.slice();
    as3[3] = 3;
    expect(failure(() => session(1, sid).open(as3))).toBe("bad_tag");
    const bcast = session(2, sid).seal(coreMessage(sid, 1, 2, 0, body()));
    const bcastAs3 = bcast.slice();
    bcastAs3[3] = 3;
    expect(failure(() => session(1, sid).open(bcastAs3))).toBe("bad_signature");
    const fromStranger = p2p.slice();
    fromStranger[3] = 5;
    expect(failure(() => session(1, sid).open(fromStranger))).toBe("unknown_sender");
    // Party 3 is handed party 2's message to party 1.
    expect(failure(() => session(3, sid).open(p2p))).toBe("not_for_me");
    const redirected = p2p.slice();
    redirected[4] = 3;
    expect(failure(() => session(3, sid).open(redirected))).toBe("bad_tag");
    expect(failure(() => session(1, sid).open(p2p, 2))).toBe("phase_mismatch");
    // Nor will a party seal a message in another's name.
    expect(failure(() => session(2, sid).seal(coreMessage(sid, 1, 3, 1, body())))).toBe(
      "wrong_sender",
    );
    const without3 = new Map(identities);
    without3.delete(3);
    expect(
      failure(() =>
        session(1, sid, without3).open(session(3, sid).seal(coreMessage(sid, 1, 3, 1, body()))),
      ),
    ).toBe("unknown_sender");
    expect(failure(() => session(1, sid, without3).seal(coreMessage(sid, 1, 1, 3, body())))).toBe(
      "unknown_recipient",
    );
    // One enclave cannot be seated twice, nor can my own identity be seated as a peer.
    expect(() =>
      session(
        1,
        sid,
        new Map([
          [2, identities.get(2)!],
          [3, identities.get(2)!],
        ]),
      ),
    ).toThrow(TypeError);
    expect(() => session(1, sid, new Map([[2, identities.get(1)!]]))).toThrow(TypeError);
  });
});
