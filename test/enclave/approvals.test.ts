/**
 * The enclave's approval check (src/enclave/approvals.ts): a quorum of
 * distinct policy keys, mixed Ed25519 and P-256, accepts exactly the request
 * they signed; every refusal names its reason; tampering any request field
 * breaks every approval; the frozen vectors' approvals verify.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { describe, expect, it } from "vitest";
import { KeySigner, approve, approverKeyOf } from "../../src/client/signers.ts";
import {
  openTrustedPolicy,
  verifyApprovals,
  type ApprovalCheck,
  type ExpectedRequest,
  type TrustedPolicy,
} from "../../src/enclave/approvals.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  APPROVAL_BYTES,
  ApprovalError,
  encodeApproval,
  encodePolicy,
  encodeRequest,
  MAX_APPROVALS,
  MAX_CLOCK_SKEW_SECONDS,
  parseApprovalUnverified,
  policyHash,
  type ApprovableRequest,
  type ApprovalPolicy,
  type ApprovalRefusal,
} from "../../src/shared/wire/approval.ts";
import { fromJson } from "../vectors/vector-json.ts";

const ed1 = KeySigner.generate("ed25519");
const ed2 = KeySigner.generate("ed25519");
const pSecret = p256.utils.randomSecretKey();
const pA = KeySigner.fromSecretKey("p256", pSecret);
const outsider = KeySigner.generate("p256");
const policyOf = (quorum: number, signers: KeySigner[]): ApprovalPolicy => ({
  quorum,
  approvers: signers.map(approverKeyOf),
});
const twoOfThree = policyOf(2, [ed1, ed2, pA]);
const trusted = (p: ApprovalPolicy): TrustedPolicy =>
  openTrustedPolicy(encodePolicy(p), policyHash(p));

const NOW = 1_900_000_000;
const digest = new Uint8Array(32).fill(0xab);
const signRequest: ApprovableRequest = {
  operation: "sign",
  walletId: "w_1",
  requestId: "req-1",
  issuedAt: NOW - 10,
  expiresAt: NOW + 290,
  digest,
  path: "m/0/7",
};
const expectedSign: ExpectedRequest = {
  operation: "sign",
  walletId: "w_1",
  requestId: "req-1",
  digest,
  path: "m/0/7",
};

async function approved(
  req: ApprovableRequest,
  signers: KeySigner[],
): Promise<{ request: Uint8Array; approvals: Uint8Array[] }> {
  const { request, approvals } = await approve(req, signers);
  return { request, approvals: approvals.map(encodeApproval) };
}

const check = (over: Partial<ApprovalCheck> & Pick<ApprovalCheck, "request" | "approvals">) =>
  verifyApprovals({
    policy: trusted(twoOfThree),
    expected: expectedSign,
    nowSeconds: NOW,
    ...over,
  });

function refusal(f: () => unknown): ApprovalError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ApprovalError);
    return e as ApprovalError;
  }
  throw new Error("accepted");
}
const refused = (reason: ApprovalRefusal, f: () => unknown): ApprovalError => {
  const e = refusal(f);
  expect(e.reason).toBe(reason);
  expect(e.code).toBe(
    reason === "malformed"
      ? "bad_request"
      : reason === "expired"
        ? "approval_expired"
        : reason === "replayed"
          ? "approval_replayed"
          : "unauthorised",
  );
  return e;
};

describe("a quorum of approvals", () => {
  it("m of k with mixed algorithms: any m or more distinct policy keys", async () => {
    for (const set of [
      [ed1, pA],
      [ed2, ed1],
      [pA, ed2],
      [ed1, ed2, pA],
    ]) {
      const a = await approved(signRequest, set);
      const verdict = check(a);
      expect(verdict.signers).toEqual(set.map((s) => s.keyId));
      expect(verdict.request.digest).toEqual(digest);
    }
    const one = await approved(signRequest, [pA]);
    refused("below_quorum", () => check(one));
    // 1 of 1 with a P-256 key alone.
    const solo = policyOf(1, [pA]);
    expect(check({ ...one, policy: trusted(solo) }).signers).toEqual([pA.keyId]);
  });

  it('a sign without a path is approved as "m"', async () => {
    const { path: _, ...noPath } = signRequest;
    const a = await approved(noPath, [ed1, ed2]);
    const { path: __, ...expectedNoPath } = expectedSign;
    expect(check({ ...a, expected: expectedNoPath }).signers).toHaveLength(2);
    refused("wrong_path", () => check(a));
  });

  it("refresh, policy_change and dkg", async () => {
    const times = { issuedAt: NOW, expiresAt: NOW + 60 };
    const refresh = await approved(
      { operation: "refresh", walletId: "w_1", requestId: "r", ...times },
      [ed1, pA],
    );
    const expectRefresh: ExpectedRequest = {
      operation: "refresh",
      walletId: "w_1",
      requestId: "r",
    };
    expect(check({ ...refresh, expected: expectRefresh }).signers).toHaveLength(2);
    refused("wrong_operation", () => check(refresh));

    const next = policyOf(1, [outsider]);
    const changeReq: ApprovableRequest = {
      operation: "policy_change",
      walletId: "w_1",
      requestId: "c",
      ...times,
      policyHash: policyHash(next),
      currentPolicyHash: policyHash(twoOfThree),
    };
    const change = await approved(changeReq, [ed2, pA]);
    const expectChange: ExpectedRequest = {
      operation: "policy_change",
      walletId: "w_1",
      requestId: "c",
      policyHash: policyHash(next),
    };
    expect(check({ ...change, expected: expectChange }).signers).toHaveLength(2);
    refused("wrong_policy", () =>
      check({ ...change, expected: { ...expectChange, policyHash: policyHash(twoOfThree) } }),
    );
    // The same approvals cannot replace any other policy that has the same approvers.
    const sameKeysOtherQuorum = policyOf(3, [ed1, ed2, pA]);
    refused("wrong_policy", () =>
      check({ ...change, expected: expectChange, policy: trusted(sameKeysOtherQuorum) }),
    );

    const admins = policyOf(1, [outsider]);
    const dkgReq: ApprovableRequest = {
      operation: "dkg",
      walletId: "w_new",
      requestId: "d",
      ...times,
      policyHash: policyHash(twoOfThree),
      threshold: 2,
      parties: 3,
    };
    const dkg = await approved(dkgReq, [outsider]);
    const expectDkg: ExpectedRequest = {
      operation: "dkg",
      walletId: "w_new",
      requestId: "d",
      policyHash: policyHash(twoOfThree),
      threshold: 2,
      parties: 3,
    };
    const asAdmin = { ...dkg, policy: trusted(admins), expected: expectDkg };
    expect(check(asAdmin).signers).toEqual([outsider.keyId]);
    refused("wrong_parameters", () =>
      check({ ...asAdmin, expected: { ...expectDkg, threshold: 3 } }),
    );
    refused("wrong_parameters", () =>
      check({ ...asAdmin, expected: { ...expectDkg, parties: 4 } }),
    );
    refused("wrong_policy", () =>
      check({ ...asAdmin, expected: { ...expectDkg, policyHash: policyHash(admins) } }),
    );
  });
});

describe("every refusal names its reason", () => {
  it("missing", async () => {
    const a = await approved(signRequest, [ed1, ed2]);
    refused("missing", () => check({ ...a, approvals: [] }));
    refused("missing", () => check({ ...a, approvals: undefined as never }));
  });

  it("expired, at and after the expiry second; not yet valid beyond the clock skew", async () => {
    const a = await approved(signRequest, [ed1, ed2]);
    expect(check({ ...a, nowSeconds: signRequest.expiresAt - 1 }).signers).toHaveLength(2);
    refused("expired", () => check({ ...a, nowSeconds: signRequest.expiresAt }));
    refused("expired", () => check({ ...a, nowSeconds: signRequest.expiresAt + 10_000 }));
    const skew = signRequest.issuedAt - MAX_CLOCK_SKEW_SECONDS;
    expect(check({ ...a, nowSeconds: skew }).signers).toHaveLength(2);
    refused("not_yet_valid", () => check({ ...a, nowSeconds: skew - 1 }));
  });

  it("duplicate signer, even when the duplicate is byte-identical or re-signed", async () => {
    const a = await approved(signRequest, [ed1, ed2]);
    refused("duplicate_signer", () =>
      check({ ...a, approvals: [a.approvals[0]!, a.approvals[0]!] }),
    );
    // P-256 signatures are randomisable by the signer: a second, different signature by the same key.
    const p1 = await approved(signRequest, [pA]);
    const p2 = encodeApproval({
      ...parseApprovalUnverified(p1.approvals[0]!),
      signature: p256.sign(a.request, pSecret, { extraEntropy: true }),
    });
    expect(toHex(p2)).not.toBe(toHex(p1.approvals[0]!));
    refused("duplicate_signer", () => check({ ...a, approvals: [p1.approvals[0]!, p2] }));
  });

  it("unknown signer: a key outside the policy, or a policy key under the other algorithm", async () => {
    const a = await approved(signRequest, [ed1, outsider]);
    refused("unknown_signer", () => check(a));
    const wrongAlg = parseApprovalUnverified(a.approvals[0]!);
    refused("unknown_signer", () =>
      check({ ...a, approvals: [encodeApproval({ ...wrongAlg, algorithm: "p256" })] }),
    );
  });

  it("bad signature: any flipped signature bit, a high-S twin, or a signature over other bytes", async () => {
    const a = await approved(signRequest, [ed1, pA]);
    for (const which of [0, 1]) {
      for (const at of [33, 50, 64, 96]) {
        const bad = new Uint8Array(a.approvals[which]!);
        bad[at]! ^= 0x01;
        const approvals = [...a.approvals];
        approvals[which] = bad;
        refused("bad_signature", () => check({ ...a, approvals }));
      }
    }
    // The high-S twin of a valid P-256 signature also verifies under plain ECDSA; the format refuses it.
    const pa = parseApprovalUnverified(a.approvals[1]!);
    const sig = p256.Signature.fromBytes(pa.signature);
    const high = new p256.Signature(sig.r, p256.Point.CURVE().n - sig.s).toBytes();
    expect(p256.verify(high, a.request, pA.publicKey, { lowS: false })).toBe(true);
    refused("bad_signature", () =>
      check({ ...a, approvals: [a.approvals[0]!, encodeApproval({ ...pa, signature: high })] }),
    );
    // ed1's signature over another request, presented with this one.
    const other = await approved({ ...signRequest, requestId: "req-2" }, [ed1]);
    refused("bad_signature", () =>
      check({ ...a, approvals: [other.approvals[0]!, a.approvals[1]!] }),
    );
  });

  it("one bad approval refuses the request even beside a quorum of good ones", async () => {
    const a = await approved(signRequest, [ed1, ed2, pA]);
    const bad = new Uint8Array(a.approvals[2]!);
    bad[90]! ^= 0x80;
    refused("bad_signature", () =>
      check({ ...a, approvals: [a.approvals[0]!, a.approvals[1]!, bad] }),
    );
  });

  it("wrong operation, wallet, request id, digest, path", async () => {
    const a = await approved(signRequest, [ed1, ed2]);
    const cases: [ApprovalRefusal, Partial<ExpectedRequest>][] = [
      ["wrong_operation", { operation: "refresh", digest: undefined, path: undefined }],
      ["wrong_wallet", { walletId: "w_2" }],
      ["wrong_request_id", { requestId: "req-2" }],
      ["wrong_digest", { digest: new Uint8Array(32).fill(0xac) }],
      ["wrong_path", { path: "m/0/8" }],
    ];
    for (const [reason, change] of cases)
      refused(reason, () => check({ ...a, expected: { ...expectedSign, ...change } }));
  });

  it("malformed: request bytes, approval bytes, too many approvals", async () => {
    const a = await approved(signRequest, [ed1, ed2]);
    refused("malformed", () => check({ ...a, request: a.request.subarray(1) }));
    refused("malformed", () => check({ ...a, request: undefined as never }));
    refused("malformed", () =>
      check({ ...a, approvals: [a.approvals[0]!.subarray(0, APPROVAL_BYTES - 1)] }),
    );
    refused("malformed", () =>
      check({ ...a, approvals: Array.from({ length: MAX_APPROVALS + 1 }, () => a.approvals[0]!) }),
    );
  });

  it("policy mismatch: a policy other than the trusted hash, and unusable keys", () => {
    const other = policyOf(1, [ed1]);
    refused("policy_mismatch", () =>
      openTrustedPolicy(encodePolicy(twoOfThree), policyHash(other)),
    );
    refused("policy_mismatch", () =>
      openTrustedPolicy(encodePolicy(twoOfThree), new Uint8Array(31)),
    );
    refused("malformed", () =>
      openTrustedPolicy(encodePolicy(twoOfThree).subarray(1), policyHash(other)),
    );
    // The Ed25519 identity point (small order) and a P-256 x with no point.
    const identity = ed25519.Point.ZERO.toBytes();
    const smallOrder = {
      quorum: 1,
      approvers: [{ algorithm: "ed25519" as const, publicKey: identity }],
    };
    refused("malformed", () => openTrustedPolicy(encodePolicy(smallOrder), policyHash(smallOrder)));
    const offCurve = {
      quorum: 1,
      approvers: [
        {
          algorithm: "p256" as const,
          publicKey: Uint8Array.of(0x02, ...new Uint8Array(32).fill(0xff)),
        },
      ],
    };
    refused("malformed", () => openTrustedPolicy(encodePolicy(offCurve), policyHash(offCurve)));
  });
});

describe("tampering", () => {
  it("changing any field of the request breaks every approval", async () => {
    const a = await approved(signRequest, [ed1, ed2, pA]);
    const tampered: Partial<ApprovableRequest>[] = [
      { walletId: "w_2" },
      { requestId: "req-2" },
      { digest: Uint8Array.from(digest, (b, i) => (i === 31 ? b ^ 1 : b)) },
      { path: "m/0/8" },
      { path: "m" },
      { issuedAt: signRequest.issuedAt - 1 },
      { expiresAt: signRequest.expiresAt + 1 },
    ];
    for (const change of tampered) {
      const req = { ...signRequest, ...change };
      // The enclave expects what the tampered request says, so only the signatures stand between.
      const expected: ExpectedRequest = {
        operation: "sign",
        walletId: req.walletId,
        requestId: req.requestId,
        digest: req.digest,
        path: req.path,
      };
      const request = encodeRequest(req);
      for (const approval of a.approvals)
        refused("bad_signature", () =>
          check({
            request,
            approvals: [approval],
            expected,
            policy: trusted(policyOf(1, [ed1, ed2, pA])),
          }),
        );
    }
    // The operation too: the same wallet and request id as a refresh.
    const refresh = encodeRequest({
      operation: "refresh",
      walletId: "w_1",
      requestId: "req-1",
      issuedAt: signRequest.issuedAt,
      expiresAt: signRequest.expiresAt,
    });
    for (const approval of a.approvals)
      refused("bad_signature", () =>
        check({
          request: refresh,
          approvals: [approval],
          expected: { operation: "refresh", walletId: "w_1", requestId: "req-1" },
          policy: trusted(policyOf(1, [ed1, ed2, pA])),
        }),
      );
  });
});

describe("frozen vectors", () => {
  it("the approvals in approval.json verify under the vectors' 2-of-3 policy", () => {
    const V = JSON.parse(
      readFileSync(join(import.meta.dirname, "../vectors/approval.json"), "utf8"),
    ) as {
      policies: { hex: string; hash: string }[];
      requests: { hex: string; fields: never }[];
      approvals: { hex: string }[];
    };
    const policy = openTrustedPolicy(fromHex(V.policies[1]!.hex), fromHex(V.policies[1]!.hash));
    const req = fromJson(V.requests[0]!.fields) as ApprovableRequest;
    const verdict = verifyApprovals({
      policy,
      expected: {
        operation: "sign",
        walletId: req.walletId,
        requestId: req.requestId,
        digest: req.digest,
        path: req.path,
      },
      request: fromHex(V.requests[0]!.hex),
      approvals: V.approvals.map((x) => fromHex(x.hex)),
      nowSeconds: req.issuedAt,
    });
    expect(verdict.signers).toHaveLength(3);
  });
});
