/**
 * A share repair through the enclave's ceremony wiring (src/enclave/ceremonies.ts):
 * `repair` starts at t helpers and at the target, whose phase 4 keeps the
 * hollow share; then the complete refresh, a refresh start naming the repair
 * session at the target and an ordinary one at every other holder. The shares
 * it produces sign with quorums including the target, and the lost holder's
 * old share combines with none. Refused: approvals for another target machine
 * or party, a target that already holds a share, a target attested without a
 * node identity or on the machine (PCR4) of another member, fewer than t
 * helpers, a refresh naming another repair, and one without its own approval
 * (which leaves the repaired party in place).
 *
 * The peer channel is a pass-through here (sealing is peer-envelope.ts's,
 * tested there); the target's "attestation document" is its PCR4 itself, as
 * the pass-through's peerIdentity reads it. Shares are the real core's.
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { approve, approverKeyOf, KeySigner, validity } from "../../src/client/signers.ts";
import { adminPolicyOf, type ApprovalSettings } from "../../src/enclave/approval-gate.ts";
import { openTrustedPolicy, type TrustedPolicy } from "../../src/enclave/approvals.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { type KeyShare, loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import type { ShareTable } from "../../src/enclave/shares.ts";
import { dkgInProcess, signInProcess } from "../../src/dev/in-process.ts";
import { toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import {
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import type { CeremonyReply, CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { inboxFor, parseMessage } from "../../src/shared/wire/protocol-message.ts";
import { repairTargetDigest } from "../../src/shared/wire/repair.ts";

const T = 3;
const N = 5;
const LOST = 2;
const HELPERS = [1, 3, 4];
const WALLET = "w_repair";
const NEW_PCR4 = new Uint8Array(48).fill(0x46);

const owner = KeySigner.generate("ed25519");
const admin = KeySigner.generate("ed25519");
const policyBytes = encodePolicy({ quorum: 1, approvers: [approverKeyOf(owner)] });
const policy: TrustedPolicy = openTrustedPolicy(policyBytes, policyHash(policyBytes));
const settings: ApprovalSettings = {
  adminPolicy: adminPolicyOf(toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] }))),
  requireApprovals: true,
};

/** Bytes pass through; a peer's "document" is its PCR4 (an empty one: attested without one). */
const passThrough = {
  open: () => ({
    seal: (b: Uint8Array) => b.slice(),
    open: (b: Uint8Array) => b.slice(),
    close() {},
    peerSigningKeys: () => new Map<number, Uint8Array>(),
  }),
  peerIdentity: (doc: Uint8Array) => (doc.length === 0 ? {} : { pcr4: doc }),
  ownSigningKey: () => new Uint8Array(32),
  signWithChannelKey: () => new Uint8Array(64),
} as unknown as PeerSessions;

/** One enclave: its loaded share (none at the target) and what its refresh produced. */
interface Node {
  ceremonies: Ceremonies;
  produced: KeyShare[];
}

function enclave(share: KeyShare | null, pcr4 = new Uint8Array(48).fill(0x11)): Node {
  const produced: KeyShare[] = [];
  const table = {
    pin: () => {
      if (!share) throw new EnclaveError("share_not_loaded", "none");
      return {
        entry: {
          share,
          generation: share.generation,
          partyIndex: share.index,
          publicKey: share.publicKey,
          policy,
        },
        release() {},
      };
    },
    current: () => (share ? { share, generation: 0, partyIndex: share.index, policy } : undefined),
    refuseIfStale() {},
    holdPending: (_id: string, _w: string, s: KeyShare) => produced.push(s),
    dropPending: () => false,
  } as unknown as ShareTable;
  return {
    ceremonies: new Ceremonies(
      table,
      passThrough,
      () => {},
      60_000,
      60_000,
      settings,
      undefined,
      pcr4,
    ),
    produced,
  };
}

async function approval(
  requestId: string,
  o: { party?: number; pcr4?: Uint8Array; signer?: KeySigner; operation?: "repair" | "refresh" },
) {
  const operation = o.operation ?? "repair";
  const req: ApprovableRequest = {
    operation,
    walletId: WALLET,
    requestId,
    ...validity(300),
    ...(operation === "repair"
      ? { digest: repairTargetDigest(o.party ?? LOST, o.pcr4 ?? NEW_PCR4) }
      : {}),
  };
  const a = await approve(req, [o.signer ?? owner]);
  return { approvalRequest: a.request, approvals: a.approvals.map(encodeApproval) };
}

function repairStart(
  me: number,
  sessionId: Uint8Array,
  requestId: string,
  a: { approvalRequest: Uint8Array; approvals: Uint8Array[] },
  helpers = HELPERS,
  targetDoc = NEW_PCR4,
): CeremonyStartRequest {
  const everyone = [...helpers, LOST].filter((p) => p !== me);
  return {
    kind: "repair",
    sessionId,
    walletId: WALLET,
    threshold: T,
    parties: N,
    partyIndex: me,
    repairTarget: LOST,
    repairHelpers: helpers,
    peerParties: everyone,
    peerDocuments: everyone.map((p) => (p === LOST ? targetDoc : new Uint8Array(48).fill(p))),
    requestId,
    ...a,
    ...(me === LOST ? { policy: policyBytes } : {}),
  };
}

/** Runs phases 2-4 among `starts`, routing each message by its header; the phase-4 replies. */
function drive(
  parties: Map<number, Ceremonies>,
  replies: Map<number, CeremonyReply>,
  id: Uint8Array,
) {
  let out = [...replies.values()].flatMap((r) => r.messages);
  for (const phase of [2, 3, 4]) {
    const next: Uint8Array[] = [];
    for (const [index, c] of parties) {
      const inbox = inboxFor(
        index,
        out.map((b) => parseMessage(b)),
      ).map((m) => m.bytes);
      const reply = c.step({
        sessionId: id,
        phase,
        messages: inbox,
        ...(phase === 2 ? { shareStates: [] } : {}),
      });
      replies.set(index, reply);
      next.push(...reply.messages);
    }
    out = next;
  }
  return replies;
}

function signs(shares: readonly KeyShare[], quorum: number[], publicKey: Uint8Array): boolean {
  const digest = randomBytes(32);
  try {
    return verifySignature(publicKey, digest, signInProcess(shares, quorum, digest)[0]!);
  } catch {
    return false;
  }
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as EnclaveError).code ?? String(e);
  }
  return "not refused";
}

let shares: KeyShare[];

beforeAll(() => {
  loadDkls();
  shares = dkgInProcess(T, N);
});

describe("share repair through the ceremony wiring", () => {
  it("helpers and target run the repair; the refresh that names it completes the party, which then signs", async () => {
    const publicKey = shares[0]!.publicKey;
    const nodes = new Map<number, Node>();
    for (const s of shares) if (s.index !== LOST) nodes.set(s.index, enclave(s));
    const target = enclave(null, NEW_PCR4);
    nodes.set(LOST, target);

    const repairId = randomBytes(32);
    const a = await approval("req-repair", {});
    const repairers = new Map<number, Ceremonies>();
    const replies = new Map<number, CeremonyReply>();
    for (const p of [...HELPERS, LOST]) {
      repairers.set(p, nodes.get(p)!.ceremonies);
      replies.set(p, nodes.get(p)!.ceremonies.start(repairStart(p, repairId, "req-repair", a)));
    }
    // Each helper sends one message, to the target; the target sends none.
    expect(replies.get(LOST)!.messages).toEqual([]);
    for (const h of HELPERS) expect(replies.get(h)!.messages).toHaveLength(1);
    const done = drive(repairers, replies, repairId);
    expect(done.get(LOST)!.partyIndex).toBe(LOST);
    expect(toHex(done.get(LOST)!.publicKey!)).toBe(toHex(publicKey));

    // A refresh naming another repair finds nothing (and does not consume the party).
    const wrong = enclave(null, NEW_PCR4);
    const refreshA = await approval("req-repair", { operation: "refresh" });
    const refreshId = randomBytes(32);
    const refreshStart = (me: number): CeremonyStartRequest => ({
      kind: "refresh",
      sessionId: refreshId,
      walletId: WALLET,
      peerParties: [1, 2, 3, 4, 5].filter((p) => p !== me),
      peerDocuments: [1, 2, 3, 4, 5].filter((p) => p !== me).map(() => new Uint8Array(48)),
      requestId: "req-repair",
      ...refreshA,
      ...(me === LOST ? { repairSession: repairId } : {}),
    });
    expect(code(() => wrong.ceremonies.start(refreshStart(LOST)))).toBe("share_not_loaded");
    expect(
      code(() =>
        target.ceremonies.start({
          ...refreshStart(LOST),
          sessionId: randomBytes(32),
          repairSession: randomBytes(32),
        }),
      ),
    ).toBe("share_not_loaded");

    // A refresh start without the refresh's approval is refused and leaves the party in place.
    expect(
      code(() =>
        target.ceremonies.start({
          ...refreshStart(LOST),
          sessionId: randomBytes(32),
          approvals: [],
        }),
      ),
    ).toBe("unauthorised");

    const refreshers = new Map<number, Ceremonies>();
    const r = new Map<number, CeremonyReply>();
    for (const [p, node] of nodes) {
      refreshers.set(p, node.ceremonies);
      r.set(p, node.ceremonies.start(refreshStart(p)));
    }
    // The target states what the lost holder would have: its generation is the wallet's.
    expect(r.get(LOST)!.generation).toBe(shares[0]!.generation);
    drive(refreshers, r, refreshId);
    const fresh = [1, 2, 3, 4, 5].map((p) => nodes.get(p)!.produced[0]!);
    expect(fresh.map((s) => s.index)).toEqual([1, 2, 3, 4, 5]);
    expect(signs(fresh, [1, 2, 3], publicKey)).toBe(true);
    expect(signs(fresh, [2, 4, 5], publicKey)).toBe(true);
    // The lost holder's old share combines with no current one.
    expect(signs([fresh[0]!, shares[LOST - 1]!, fresh[2]!], [1, 2, 3], publicKey)).toBe(false);
    // The party is handed over once.
    expect(
      code(() => target.ceremonies.start({ ...refreshStart(LOST), sessionId: randomBytes(32) })),
    ).toBe("share_not_loaded");
  });

  it("the administrators' quorum may approve in place of the wallet's", async () => {
    const helper = enclave(shares[0]!);
    const a = await approval("req-admin", { signer: admin });
    expect(
      helper.ceremonies.start(repairStart(1, randomBytes(32), "req-admin", a)).messages,
    ).toHaveLength(1);
    helper.ceremonies.closeAll();
  });

  it("refuses approvals for another machine or party, an outsider's, and none at all", async () => {
    const outsider = KeySigner.generate("ed25519");
    const cases = [
      await approval("req-x1", { pcr4: new Uint8Array(48).fill(0x99) }),
      await approval("req-x2", { party: 5 }),
      await approval("req-x3", { signer: outsider }),
    ];
    for (const [k, a] of cases.entries()) {
      const requestId = `req-x${k + 1}`;
      // At a helper (the target's PCR4 from its document) and at the target (its own).
      expect(
        code(() =>
          enclave(shares[0]!).ceremonies.start(repairStart(1, randomBytes(32), requestId, a)),
        ),
      ).toBe("unauthorised");
      expect(
        code(() =>
          enclave(null, NEW_PCR4).ceremonies.start(
            repairStart(LOST, randomBytes(32), requestId, a),
          ),
        ),
      ).toBe("unauthorised");
    }
    const none = { approvalRequest: cases[0]!.approvalRequest, approvals: [] };
    expect(
      code(() =>
        enclave(shares[0]!).ceremonies.start(repairStart(1, randomBytes(32), "req-x1", none)),
      ),
    ).toBe("unauthorised");
    // The target's approval names this machine: an enclave on another one refuses it.
    const a = await approval("req-x4", {});
    expect(
      code(() => enclave(null).ceremonies.start(repairStart(LOST, randomBytes(32), "req-x4", a))),
    ).toBe("unauthorised");
  });

  it("refuses a target that holds a share, a target attested without a node identity, and fewer than t helpers", async () => {
    const a = await approval("req-y", {});
    // Party 2's old holder (or any holder) as target.
    expect(
      code(() =>
        enclave(shares[LOST - 1]!, NEW_PCR4).ceremonies.start(
          repairStart(LOST, randomBytes(32), "req-y", a),
        ),
      ),
    ).toBe("bad_request");
    expect(
      code(() =>
        enclave(shares[0]!).ceremonies.start(
          repairStart(1, randomBytes(32), "req-y", a, HELPERS, new Uint8Array(0)),
        ),
      ),
    ).toBe("ceremony_failed");
    expect(
      code(() =>
        enclave(null, NEW_PCR4).ceremonies.start(
          repairStart(LOST, randomBytes(32), "req-y", a, [1, 3]),
        ),
      ),
    ).toBe("bad_request");
  });

  it("refuses a target on the machine of a helper or of this enclave (same PCR4)", async () => {
    const a = await approval("req-z", {});
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return { code: (e as EnclaveError).code, message: (e as Error).message };
      }
      return null;
    };
    // At helper 1: the target's document names helper 3's machine (its document is fill(3)).
    expect(
      refusal(() =>
        enclave(shares[0]!).ceremonies.start(
          repairStart(1, randomBytes(32), "req-z", a, HELPERS, new Uint8Array(48).fill(3)),
        ),
      ),
    ).toEqual({ code: "bad_request", message: expect.stringContaining("of its party 3") });
    // At helper 1: the target's document names helper 1's own machine.
    expect(
      refusal(() =>
        enclave(shares[0]!, new Uint8Array(48).fill(0x77)).ceremonies.start(
          repairStart(1, randomBytes(32), "req-z", a, HELPERS, new Uint8Array(48).fill(0x77)),
        ),
      ),
    ).toEqual({ code: "bad_request", message: expect.stringContaining("this helper's machine") });
    // At the target: a helper's document names the target's own machine.
    expect(
      refusal(() =>
        enclave(null, new Uint8Array(48).fill(4)).ceremonies.start(
          repairStart(LOST, randomBytes(32), "req-z", a),
        ),
      ),
    ).toEqual({ code: "bad_request", message: expect.stringContaining("of its party 4") });
  });
});
