/**
 * Share repair's frozen formats (test/vectors/approval-repair.json, written
 * once by generate-approval-repair.ts): the target digest is SHA-256 of the
 * layout repair.ts documents; the `repair` request (operation 7) encodes and
 * parses byte for byte and carries the digest and nothing else; the frozen
 * approvals verify through the enclave's repair check, which refuses them
 * for another party, another target machine, another wallet or request id,
 * and after expiry; the term body round-trips and refuses bad bounds.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import { openTrustedPolicy } from "../../src/enclave/approvals.ts";
import { checkRepairApproval } from "../../src/enclave/lifecycle-repair.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  ApprovalError,
  encodePolicy,
  encodeRequest,
  parseRequest,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import {
  encodeRepairTermBody,
  parseRepairTermBody,
  RepairFormatError,
  repairTargetDigest,
  type RepairTermBody,
} from "../../src/shared/wire/repair.ts";
import { fromJson } from "../vectors/vector-json.ts";

interface Vectors {
  keys: unknown[];
  targetDigest: { fields: unknown; hex: string };
  request: { fields: unknown; hex: string };
  approvals: { key: number; hex: string }[];
  termBody: { fields: unknown; hex: string };
}
const V = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/approval-repair.json"), "utf8"),
) as Vectors;
const target = fromJson(V.targetDigest.fields as never) as { party: number; pcr4: Uint8Array };
const request = fromJson(V.request.fields as never) as ApprovableRequest;

const reason = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof ApprovalError) return e.reason;
    return `not an ApprovalError: ${String(e)}`;
  }
  return "not refused";
};

describe("share repair vectors", () => {
  it("the target digest is SHA-256 of label, party and PCR4 as documented", () => {
    const label = new TextEncoder().encode("tss-repair-v1");
    const layout = Uint8Array.from([
      0,
      0,
      0,
      label.length,
      ...label,
      target.party,
      0,
      0,
      0,
      48,
      ...target.pcr4,
    ]);
    expect(toHex(sha256(layout))).toBe(V.targetDigest.hex);
    expect(toHex(repairTargetDigest(target.party, target.pcr4))).toBe(V.targetDigest.hex);
  });

  it("the repair request is operation 7, round-trips, and takes the digest and nothing else", () => {
    expect(toHex(encodeRequest(request))).toBe(V.request.hex);
    const back = parseRequest(fromHex(V.request.hex));
    expect(back.operation).toBe("repair");
    expect(toHex(encodeRequest(back))).toBe(V.request.hex);
    // After the u32-prefixed label "tss-approval-v1" (4 + 15 bytes), the operation byte.
    expect(fromHex(V.request.hex)[19]).toBe(7);
    const { digest: _d, ...noDigest } = request;
    expect(reason(() => encodeRequest(noDigest))).toBe("malformed");
    expect(reason(() => encodeRequest({ ...request, path: "m" }))).toBe("malformed");
    expect(reason(() => encodeRequest({ ...request, threshold: 3, parties: 5 }))).toBe("malformed");
    expect(reason(() => encodeRequest({ ...request, policyHash: new Uint8Array(32) }))).toBe(
      "malformed",
    );
  });

  it("the frozen approvals pass the enclave's repair check, and only for that party, machine, wallet and request", () => {
    const keys = V.keys.map(
      (k) => fromJson(k as never) as { algorithm: never; publicKey: Uint8Array },
    );
    const encoding = encodePolicy({ quorum: 2, approvers: keys });
    const policy = openTrustedPolicy(encoding, sha256(encoding));
    const check = {
      policy,
      walletId: request.walletId,
      requestId: request.requestId,
      party: target.party,
      targetPcr4: target.pcr4,
      approvalRequest: fromHex(V.request.hex),
      approvals: V.approvals.map((a) => fromHex(a.hex)),
      nowSeconds: request.issuedAt,
    };
    expect(checkRepairApproval(check).signers).toHaveLength(2);
    expect(reason(() => checkRepairApproval({ ...check, party: 3 }))).toBe("wrong_digest");
    const otherMachine = target.pcr4.slice();
    otherMachine[0]! ^= 1;
    expect(reason(() => checkRepairApproval({ ...check, targetPcr4: otherMachine }))).toBe(
      "wrong_digest",
    );
    expect(reason(() => checkRepairApproval({ ...check, walletId: "w_other" }))).toBe(
      "wrong_wallet",
    );
    expect(reason(() => checkRepairApproval({ ...check, requestId: "req-9" }))).toBe(
      "wrong_request_id",
    );
    expect(reason(() => checkRepairApproval({ ...check, nowSeconds: request.expiresAt }))).toBe(
      "expired",
    );
    expect(
      reason(() => checkRepairApproval({ ...check, approvals: check.approvals.slice(0, 1) })),
    ).toBe("below_quorum");
    expect(reason(() => checkRepairApproval({ ...check, approvals: [] }))).toBe("missing");
  });

  it("the term body round-trips and is bounded", () => {
    const fields = fromJson(V.termBody.fields as never) as RepairTermBody;
    expect(toHex(encodeRepairTermBody(fields))).toBe(V.termBody.hex);
    const parsed = parseRepairTermBody(fromHex(V.termBody.hex));
    expect([parsed.publicPackage, parsed.policyHash, parsed.term].map(toHex)).toEqual(
      [fields.publicPackage, fields.policyHash, fields.term].map(toHex),
    );
    const bytes = fromHex(V.termBody.hex);
    expect(() => parseRepairTermBody(bytes.subarray(0, bytes.length - 1))).toThrow(
      RepairFormatError,
    );
    expect(() => parseRepairTermBody(Uint8Array.from([...bytes, 0]))).toThrow(RepairFormatError);
    const zeroPackage = bytes.slice();
    zeroPackage.set([0, 0, 0, 0], 0);
    expect(() => parseRepairTermBody(zeroPackage)).toThrow(RepairFormatError);
    expect(() => encodeRepairTermBody({ ...fields, term: new Uint8Array(513) })).toThrow(
      RepairFormatError,
    );
    expect(() => encodeRepairTermBody({ ...fields, policyHash: new Uint8Array(31) })).toThrow(
      RepairFormatError,
    );
  });
});
