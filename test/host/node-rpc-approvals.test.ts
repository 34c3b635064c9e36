/**
 * Node RPC carries what the enclaves check (src/shared/wire/node-rpc.ts):
 * `start` keeps the client's request id, approvable request, approvals and a
 * DKG's policy byte for byte, within approval.ts's bounds; `persist` keeps
 * the wallet's policy with the wallet record. Nothing is dropped silently
 * that an enclave would then miss, and nothing oversized gets through.
 */
import { describe, expect, it } from "vitest";
import {
  APPROVAL_BYTES,
  MAX_APPROVALS,
  MAX_POLICY_BYTES,
  MAX_REQUEST_BYTES,
} from "../../src/shared/wire/approval.ts";
import { checkNodeOpArgs } from "../../src/shared/wire/node-rpc.ts";

const start = {
  kind: "sign",
  sessionId: new Uint8Array(32),
  walletId: "w_1",
  signers: [1, 2],
  digest: new Uint8Array(32),
  expectedGeneration: 0,
  peerDocuments: [new Uint8Array(10)],
  peerParties: [2],
  requestId: "req-1",
  approvalRequest: new Uint8Array(100).fill(1),
  approvals: [new Uint8Array(APPROVAL_BYTES).fill(2), new Uint8Array(APPROVAL_BYTES).fill(3)],
  policy: new Uint8Array(50).fill(4),
};

const refusal = (args: unknown): string => {
  try {
    checkNodeOpArgs("start", args);
  } catch (e) {
    expect((e as { code?: string }).code).toBe("bad_request");
    return (e as Error).message;
  }
  throw new Error("not refused");
};

describe("node RPC start and persist carry the approval fields", () => {
  it("keeps them byte for byte", () => {
    const checked = checkNodeOpArgs("start", start);
    expect(checked.requestId).toBe("req-1");
    expect(checked.approvalRequest).toEqual(start.approvalRequest);
    expect(checked.approvals).toEqual(start.approvals);
    expect(checked.policy).toEqual(start.policy);
  });

  it("refuses them out of bounds, naming the field", () => {
    expect(refusal({ ...start, requestId: "no spaces" })).toMatch(/start\.requestId/);
    expect(refusal({ ...start, approvalRequest: new Uint8Array(MAX_REQUEST_BYTES + 1) })).toMatch(
      /start\.approvalRequest/,
    );
    expect(refusal({ ...start, approvals: [new Uint8Array(APPROVAL_BYTES - 1)] })).toMatch(
      /start\.approvals\[0\]/,
    );
    const many = Array.from({ length: MAX_APPROVALS + 1 }, () => start.approvals[0]!);
    expect(refusal({ ...start, approvals: many })).toMatch(/start\.approvals/);
    expect(refusal({ ...start, policy: new Uint8Array(MAX_POLICY_BYTES + 1) })).toMatch(
      /start\.policy/,
    );
  });

  it("persist keeps the wallet's policy", () => {
    const wallet = {
      walletId: "w_1",
      threshold: 2,
      parties: 3,
      publicKey: Uint8Array.of(2, ...new Uint8Array(32)),
      publicPackage: new Uint8Array(5),
      chainCode: new Uint8Array(32),
      policy: new Uint8Array(50).fill(4),
    };
    const checked = checkNodeOpArgs("persist", {
      kind: "dkg",
      sessionId: new Uint8Array(32),
      wallet,
      final: { messages: [], generation: 0 },
    });
    expect(checked.wallet.policy).toEqual(wallet.policy);
  });
});
