/**
 * The enclave's approval gate at ceremony start (src/enclave/approval-gate.ts,
 * src/enclave/ceremonies.ts): `expected` is built from the CEREMONY_START
 * fields, so approvals for another digest, wallet, path or request, and
 * tampered, expired, duplicated or too few approvals, are refused with the
 * approval code and its reason; a DKG needs the administrators' approval of
 * the wallet's policy; a refused start creates no session and no phase-1
 * message.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeySigner, approve, approverKeyOf, validity } from "../../src/client/signers.ts";
import {
  adminPolicyOf,
  builtInApprovalSettings,
  checkDkgStart,
  checkShareStart,
  policyChangeOf,
  type ApprovalSettings,
} from "../../src/enclave/approval-gate.ts";
import { openTrustedPolicy, type TrustedPolicy } from "../../src/enclave/approvals.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import { ADMIN_POLICY_HEX } from "../../src/enclave/admin-policy.ts";
import {
  approvalSettingsFor,
  exposeEnclaveError,
  type EnclavePlatform,
} from "../../src/enclave/program.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  ApprovalError,
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
  type ApprovalErrorCode,
  type ApprovalRefusal,
} from "../../src/shared/wire/approval.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";

const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const outsider = KeySigner.generate("ed25519");
const walletPolicyBytes = encodePolicy({
  quorum: 2,
  approvers: [alice, bob, carol].map(approverKeyOf),
});
const walletPolicy: TrustedPolicy = openTrustedPolicy(
  walletPolicyBytes,
  policyHash(walletPolicyBytes),
);
const admin = KeySigner.generate("ed25519");
const adminPolicyHex = toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] }));
const required: ApprovalSettings = {
  adminPolicy: adminPolicyOf(adminPolicyHex),
  requireApprovals: true,
};

const digest = new Uint8Array(32).fill(7);
const signStart: CeremonyStartRequest = {
  kind: "sign",
  sessionId: new Uint8Array(32),
  walletId: "w_gate",
  signers: [1, 2],
  digest,
  path: "m/0/7",
  expectedGeneration: 0,
  peerDocuments: [],
  peerParties: [],
  requestId: "req-gate",
};
const signRequest = (over: Partial<ApprovableRequest> = {}): ApprovableRequest => ({
  operation: "sign",
  walletId: "w_gate",
  requestId: "req-gate",
  ...validity(300),
  digest,
  path: "m/0/7",
  ...over,
});

async function approved(req: ApprovableRequest, signers: KeySigner[]) {
  const a = await approve(req, signers);
  return { approvalRequest: a.request, approvals: a.approvals.map(encodeApproval) };
}

function refusal(f: () => unknown): ApprovalError {
  try {
    f();
  } catch (e) {
    if (e instanceof ApprovalError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

const expectRefused = (f: () => unknown, code: ApprovalErrorCode, reason: ApprovalRefusal) =>
  expect({ code: refusal(f).code, reason: refusal(f).reason }).toEqual({ code, reason });

const dkgStart: CeremonyStartRequest = {
  kind: "dkg",
  sessionId: new Uint8Array(32),
  walletId: "w_new",
  threshold: 2,
  parties: 3,
  partyIndex: 1,
  peerDocuments: [],
  peerParties: [],
  requestId: "req-dkg",
  policy: walletPolicyBytes,
};
const dkgRequest = (over: Partial<ApprovableRequest> = {}): ApprovableRequest => ({
  operation: "dkg",
  walletId: "w_new",
  requestId: "req-dkg",
  ...validity(300),
  policyHash: policyHash(walletPolicyBytes),
  threshold: 2,
  parties: 3,
  ...over,
});

describe("sign and refresh starts are checked against the sealed policy", () => {
  it("accepts a quorum of approvals of exactly this start", async () => {
    const a = await approved(signRequest(), [alice, bob]);
    expect(() => checkShareStart(required, { ...signStart, ...a }, walletPolicy)).not.toThrow();
    const all = await approved(signRequest(), [alice, bob, carol]);
    expect(() => checkShareStart(required, { ...signStart, ...all }, walletPolicy)).not.toThrow();
  });

  it("refuses missing, below-quorum, duplicated and outsider approvals", async () => {
    const check = (over: Partial<CeremonyStartRequest>) => () =>
      checkShareStart(required, { ...signStart, ...over }, walletPolicy);
    const one = await approved(signRequest(), [alice]);
    expectRefused(check({ approvalRequest: one.approvalRequest }), "unauthorised", "missing");
    expectRefused(check(one), "unauthorised", "below_quorum");
    const dup = { ...one, approvals: [one.approvals[0]!, one.approvals[0]!] };
    expectRefused(check(dup), "unauthorised", "duplicate_signer");
    const withOutsider = await approved(signRequest(), [alice, outsider]);
    expectRefused(check(withOutsider), "unauthorised", "unknown_signer");
  });

  it("refuses tampered approvals and a tampered request", async () => {
    const a = await approved(signRequest(), [alice, bob]);
    const check = (over: Partial<CeremonyStartRequest>) => () =>
      checkShareStart(required, { ...signStart, ...over }, walletPolicy);
    const sig = a.approvals[1]!.slice();
    sig[sig.length - 1]! ^= 1;
    expectRefused(
      check({ ...a, approvals: [a.approvals[0]!, sig] }),
      "unauthorised",
      "bad_signature",
    );
    // The expiry is not compared with anything the start says: only the signatures protect it.
    const req = a.approvalRequest.slice();
    const expiresAt = 4 + 15 + 1 + 4 + 6 + 4 + 8 + 8 + 8 - 1;
    req[expiresAt]! ^= 1;
    expectRefused(check({ ...a, approvalRequest: req }), "unauthorised", "bad_signature");
    expectRefused(
      check({ ...a, approvalRequest: a.approvalRequest.subarray(1) }),
      "bad_request",
      "malformed",
    );
  });

  it("refuses approvals of another digest, wallet, path, request id or operation", async () => {
    const check = async (req: Partial<ApprovableRequest>, reason: ApprovalRefusal) => {
      const a = await approved(signRequest(req), [alice, bob]);
      expectRefused(
        () => checkShareStart(required, { ...signStart, ...a }, walletPolicy),
        "unauthorised",
        reason,
      );
    };
    await check({ digest: new Uint8Array(32).fill(8) }, "wrong_digest");
    await check({ walletId: "w_other" }, "wrong_wallet");
    await check({ path: "m/0/8" }, "wrong_path");
    await check({ path: undefined }, "wrong_path");
    await check({ requestId: "req-other" }, "wrong_request_id");
    const refresh = await approved(
      { operation: "refresh", walletId: "w_gate", requestId: "req-gate", ...validity(300) },
      [alice, bob],
    );
    expectRefused(
      () => checkShareStart(required, { ...signStart, ...refresh }, walletPolicy),
      "unauthorised",
      "wrong_operation",
    );
    // ...which is exactly what a refresh start accepts.
    const refreshStart = { ...signStart, kind: "refresh" as const, ...refresh };
    expect(() => checkShareStart(required, refreshStart, walletPolicy)).not.toThrow();
  });

  it("refuses expired approvals with approval_expired", async () => {
    const now = Math.floor(Date.now() / 1000);
    const a = await approved(signRequest({ issuedAt: now - 400, expiresAt: now - 100 }), [
      alice,
      bob,
    ]);
    expectRefused(
      () => checkShareStart(required, { ...signStart, ...a }, walletPolicy),
      "approval_expired",
      "expired",
    );
  });

  it("refuses a start without the request id the approvals name", async () => {
    const a = await approved(signRequest(), [alice, bob]);
    const { requestId: _none, ...noId } = signStart;
    expectRefused(
      () => checkShareStart(required, { ...noId, ...a }, walletPolicy),
      "bad_request",
      "malformed",
    );
  });

  it("a share sealed without a policy cannot be approved when approvals are required", () => {
    expectRefused(
      () => checkShareStart(required, signStart, null),
      "unauthorised",
      "policy_mismatch",
    );
    const off = { adminPolicy: null, requireApprovals: false };
    expect(() => checkShareStart(off, signStart, null)).not.toThrow();
    // A share sealed with a policy is checked whatever the setting.
    expectRefused(() => checkShareStart(off, signStart, walletPolicy), "unauthorised", "missing");
  });
});

describe("a refresh that carries a new policy is a policy change", () => {
  const newPolicyBytes = encodePolicy({ quorum: 1, approvers: [outsider].map(approverKeyOf) });
  const changeStart = {
    ...signStart,
    kind: "refresh" as const,
    digest: undefined,
    path: undefined,
    signers: undefined,
    policy: newPolicyBytes,
  };
  const change = (over: Partial<ApprovableRequest> = {}): ApprovableRequest => ({
    operation: "policy_change",
    walletId: "w_gate",
    requestId: "req-gate",
    ...validity(300),
    policyHash: policyHash(newPolicyBytes),
    currentPolicyHash: walletPolicy.hash,
    ...over,
  });

  it("needs the current policy's quorum approving exactly this new policy in place of the sealed one", async () => {
    const a = await approved(change(), [alice, bob]);
    expect(checkShareStart(required, { ...changeStart, ...a }, walletPolicy)!.operation).toBe(
      "policy_change",
    );
    expect(toHex(policyChangeOf({ ...changeStart, ...a })!.hash)).toBe(
      toHex(policyHash(newPolicyBytes)),
    );
    const check = (over: Partial<CeremonyStartRequest>) => () =>
      checkShareStart(required, { ...changeStart, ...over }, walletPolicy);
    // The new policy's own keys cannot approve it.
    expectRefused(check(await approved(change(), [outsider])), "unauthorised", "unknown_signer");
    expectRefused(check(await approved(change(), [alice])), "unauthorised", "below_quorum");
    // Another new policy than the one the start carries, or replacing another than the sealed one.
    const other = policyHash(walletPolicyBytes);
    expectRefused(
      check(await approved(change({ policyHash: other }), [alice, bob])),
      "unauthorised",
      "wrong_policy",
    );
    expectRefused(
      check(await approved(change({ currentPolicyHash: other.map((b) => b ^ 1) }), [alice, bob])),
      "unauthorised",
      "wrong_policy",
    );
    // A plain refresh's approvals do not change a policy.
    const refresh = await approved(
      { operation: "refresh", walletId: "w_gate", requestId: "req-gate", ...validity(300) },
      [alice, bob],
    );
    expectRefused(check(refresh), "unauthorised", "wrong_operation");
  });

  it("refuses a policy on a sign start, a malformed new policy, and a wallet sealed without one", async () => {
    const a = await approved(signRequest(), [alice, bob]);
    expectRefused(
      () => checkShareStart(required, { ...signStart, ...a, policy: newPolicyBytes }, walletPolicy),
      "bad_request",
      "malformed",
    );
    const c = await approved(change(), [alice, bob]);
    expectRefused(
      () =>
        checkShareStart(
          required,
          { ...changeStart, ...c, policy: new Uint8Array(9) },
          walletPolicy,
        ),
      "bad_request",
      "malformed",
    );
    // Not even with approvals switched off: nobody can approve changing a policy-less wallet.
    const off = { adminPolicy: null, requireApprovals: false };
    expectRefused(
      () => checkShareStart(off, { ...changeStart, ...c }, null),
      "unauthorised",
      "policy_mismatch",
    );
  });
});

describe("DKG starts need the administrators' approval of the wallet's policy", () => {
  it("returns the wallet's policy when an administrator approved this very DKG", async () => {
    const a = await approved(dkgRequest(), [admin]);
    const started = checkDkgStart(required, { ...dkgStart, ...a }, 2, 3);
    expect(started!.approved.operation).toBe("dkg");
    expect(toHex(started!.policy.hash)).toBe(toHex(policyHash(walletPolicyBytes)));
  });

  it("refuses wallet keys as admins, another policy, other parameters and no admins at all", async () => {
    const byWalletKeys = await approved(dkgRequest(), [alice]);
    expectRefused(
      () => checkDkgStart(required, { ...dkgStart, ...byWalletKeys }, 2, 3),
      "unauthorised",
      "unknown_signer",
    );
    const other = encodePolicy({ quorum: 1, approvers: [approverKeyOf(outsider)] });
    const forOther = await approved(dkgRequest({ policyHash: policyHash(other) }), [admin]);
    expectRefused(
      () => checkDkgStart(required, { ...dkgStart, ...forOther }, 2, 3),
      "unauthorised",
      "wrong_policy",
    );
    // The approved policy, relayed with another one in the start: the enclave seals what it checked.
    const a = await approved(dkgRequest(), [admin]);
    expectRefused(
      () => checkDkgStart(required, { ...dkgStart, ...a, policy: other }, 2, 3),
      "unauthorised",
      "wrong_policy",
    );
    expectRefused(
      () => checkDkgStart(required, { ...dkgStart, ...a }, 3, 3),
      "unauthorised",
      "wrong_parameters",
    );
    const none = { adminPolicy: null, requireApprovals: true };
    expectRefused(
      () => checkDkgStart(none, { ...dkgStart, ...a }, 2, 3),
      "unauthorised",
      "unknown_signer",
    );
    const { policy: _none, ...noPolicy } = dkgStart;
    expectRefused(
      () => checkDkgStart(required, { ...noPolicy, ...a }, 2, 3),
      "bad_request",
      "malformed",
    );
  });

  it("without required approvals, a DKG without a policy creates a wallet without one", () => {
    const off = { adminPolicy: null, requireApprovals: false };
    const { policy: _none, requestId: _id, ...plain } = dkgStart;
    expect(checkDkgStart(off, plain, 2, 3)).toBeNull();
  });
});

describe("the production settings", () => {
  it("use the administrators' policy built into the bundle and require approvals; only a development platform replaces them", async () => {
    const built = builtInApprovalSettings(ADMIN_POLICY_HEX);
    expect(built.requireApprovals).toBe(true);
    const nsm = {} as EnclavePlatform["nsm"];
    const off = { adminPolicy: null, requireApprovals: false };
    expect(approvalSettingsFor({ nsm, peerRoots: [], developmentApprovals: off })).toEqual(built);
    expect(
      approvalSettingsFor({
        nsm,
        peerRoots: [],
        allowDevelopment: true,
        developmentApprovals: off,
      }),
    ).toBe(off);
    if (ADMIN_POLICY_HEX === null) {
      // An image built without administrators creates no wallet, whoever approves.
      const a = await approved(dkgRequest(), [admin]);
      const start = { ...dkgStart, ...a };
      expectRefused(() => checkDkgStart(built, start, 2, 3), "unauthorised", "unknown_signer");
    }
  });
});

describe("Ceremonies.start refuses before phase 1", () => {
  it("a refused DKG start opens no session and reports code and reason as fields", async () => {
    const logged: [string, Record<string, unknown>][] = [];
    const shares = new ShareTable(null, "00".repeat(48), () => {}, 60_000);
    let peersOpened = 0;
    const peers = {
      open: () => {
        peersOpened++;
        throw new EnclaveError("bad_request", "no peers in this test");
      },
    } as unknown as PeerSessions;
    const ceremonies = new Ceremonies(
      shares,
      peers,
      (e, f) => logged.push([e, f]),
      60_000,
      0,
      required,
    );
    const start: CeremonyStartRequest = {
      kind: "dkg",
      sessionId: randomBytes(32),
      walletId: "w_new",
      threshold: 2,
      parties: 2,
      partyIndex: 1,
      peerDocuments: [],
      peerParties: [],
      requestId: "req-dkg",
      policy: walletPolicyBytes,
    };
    let err: unknown;
    try {
      ceremonies.start(start);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnclaveError);
    expect(exposeEnclaveError(err)).toEqual({
      code: "unauthorised",
      message: "the request carries no approvals",
      reason: "missing",
    });
    expect(peersOpened).toBe(0);
    expect(ceremonies.size).toBe(0);
    expect(logged).toContainEqual([
      "ceremony_refused",
      { kind: "dkg", walletId: "w_new", code: "unauthorised", reason: "missing" },
    ]);
  });
});
