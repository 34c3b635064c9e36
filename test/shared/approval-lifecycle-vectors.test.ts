/**
 * The key lifecycle's approvable requests (test/vectors/approval-lifecycle.json,
 * written once by generate-approval-lifecycle.ts): retire and import encode
 * and parse byte for byte; an import must name the envelope's digest, the new
 * policy, t and n, and nothing a sign has; the frozen approvals of the import
 * verify; and the enclave's DKG gate asks for exactly this `import` request
 * when a start carries an envelope (digest = its SHA-256), never a `dkg` one,
 * and never waives it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import { KeySigner } from "../../src/client/signers.ts";
import { adminPolicyOf, checkDkgStart } from "../../src/enclave/approval-gate.ts";
import { openTrustedPolicy, verifyApprovals } from "../../src/enclave/approvals.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  ApprovalError,
  encodeApproval,
  encodePolicy,
  encodeRequest,
  parseRequest,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { fromJson } from "../vectors/vector-json.ts";

interface Vectors {
  keys: unknown[];
  walletPolicy: { hex: string; hash: string };
  requests: { description: string; fields: unknown; hex: string }[];
  approvals: { key: number; request: number; hex: string }[];
}
const V = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/approval-lifecycle.json"), "utf8"),
) as Vectors;
const requests = V.requests.map((r) => fromJson(r.fields as never) as ApprovableRequest);
const imported = requests[1]!;

const malformed = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ApprovalError);
    expect((e as ApprovalError).reason).toBe("malformed");
    return;
  }
  throw new Error("not refused");
};

describe("key lifecycle approval vectors", () => {
  it("has the cases it promises", () => {
    expect(requests.map((r) => r.operation)).toEqual(["retire", "import"]);
    expect(V.approvals).toHaveLength(2);
  });

  it("retire and import encode and parse byte for byte", () => {
    for (const [k, r] of requests.entries()) {
      expect(toHex(encodeRequest(r))).toBe(V.requests[k]!.hex);
      expect(toHex(encodeRequest(parseRequest(fromHex(V.requests[k]!.hex))))).toBe(
        V.requests[k]!.hex,
      );
    }
    // The operation byte: 6 for import, after the label.
    const hex = V.requests[1]!.hex;
    expect(parseRequest(fromHex(hex)).operation).toBe("import");
  });

  it("an import names the envelope's digest, the policy, t and n, and no path", () => {
    const { digest: _d, ...noDigest } = imported;
    malformed(() => encodeRequest(noDigest));
    const { policyHash: _p, ...noPolicy } = imported;
    malformed(() => encodeRequest(noPolicy));
    const { threshold: _t, ...noThreshold } = imported;
    malformed(() => encodeRequest(noThreshold));
    malformed(() => encodeRequest({ ...imported, path: "m" }));
    malformed(() => encodeRequest({ ...imported, threshold: 6, parties: 5 }));
  });

  it("the frozen approvals of the import verify under a policy of their two keys", () => {
    const keys = V.keys.map(
      (k) => fromJson(k as never) as { algorithm: never; publicKey: Uint8Array },
    );
    const encoding = encodePolicy({ quorum: 2, approvers: keys });
    const policy = openTrustedPolicy(encoding, sha256(encoding));
    const verdict = verifyApprovals({
      policy,
      expected: {
        operation: "import",
        walletId: imported.walletId,
        requestId: imported.requestId,
        digest: imported.digest,
        policyHash: imported.policyHash,
        threshold: 3,
        parties: 5,
      },
      request: fromHex(V.requests[1]!.hex),
      approvals: V.approvals.map((a) => fromHex(a.hex)),
      nowSeconds: imported.issuedAt,
    });
    expect(verdict.signers).toHaveLength(2);
  });
});

describe("the DKG gate of an import", () => {
  const admin = KeySigner.generate("ed25519");
  const adminPolicy = adminPolicyOf(
    toHex(
      encodePolicy({
        quorum: 1,
        approvers: [{ algorithm: "ed25519", publicKey: admin.publicKey }],
      }),
    ),
  );
  const envelope = new Uint8Array(82).fill(7);
  const walletPolicy = fromHex(V.walletPolicy.hex);
  const now = Math.floor(Date.now() / 1000);
  const approved = async (r: Omit<ApprovableRequest, "issuedAt" | "expiresAt">) => {
    const request = encodeRequest({
      ...r,
      issuedAt: now,
      expiresAt: now + 300,
    } as ApprovableRequest);
    const approval = encodeApproval({
      algorithm: "ed25519",
      keyId: fromHex(admin.keyId),
      signature: await admin.sign(request),
    });
    return { approvalRequest: request, approvals: [approval] };
  };
  const start = (extra: Partial<CeremonyStartRequest>): CeremonyStartRequest => ({
    kind: "dkg",
    sessionId: new Uint8Array(32),
    walletId: "w_gate",
    requestId: "req-gate",
    threshold: 2,
    parties: 3,
    partyIndex: 1,
    peerDocuments: [],
    peerParties: [],
    policy: walletPolicy,
    importEnvelope: envelope,
    importDealer: 1,
    ...extra,
  });
  const importRequest = {
    operation: "import" as const,
    walletId: "w_gate",
    requestId: "req-gate",
    digest: sha256(envelope),
    policyHash: fromHex(V.walletPolicy.hash),
    threshold: 2,
    parties: 3,
  };

  it("accepts the administrators' import approval of this envelope", async () => {
    const r = checkDkgStart(
      { adminPolicy, requireApprovals: true },
      start(await approved(importRequest)),
      2,
      3,
    );
    expect(r?.approved.operation).toBe("import");
  });

  it("refuses a dkg approval, an approval of another envelope, and none even when approvals are off", async () => {
    const dkg = await approved({
      operation: "dkg",
      walletId: "w_gate",
      requestId: "req-gate",
      policyHash: fromHex(V.walletPolicy.hash),
      threshold: 2,
      parties: 3,
    });
    const reasonOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ApprovalError).reason;
      }
      return "accepted";
    };
    const settings = { adminPolicy, requireApprovals: true };
    expect(reasonOf(() => checkDkgStart(settings, start(dkg), 2, 3))).toBe("wrong_operation");
    const other = await approved({ ...importRequest, digest: sha256(new Uint8Array(82)) });
    expect(reasonOf(() => checkDkgStart(settings, start(other), 2, 3))).toBe("wrong_digest");
    expect(
      reasonOf(() => checkDkgStart({ adminPolicy, requireApprovals: false }, start({}), 2, 3)),
    ).not.toBe("accepted");
  });
});
