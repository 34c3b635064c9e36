/**
 * The approval encodings (src/shared/wire/approval.ts): the frozen vectors
 * (test/vectors/approval.json, written once by generate-approval.ts) encode
 * and parse byte for byte, and every encoding is canonical: one value, one
 * encoding, anything else refused as malformed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import {
  APPROVAL_BYTES,
  APPROVAL_POLICY_LABEL,
  APPROVAL_REQUEST_LABEL,
  ApprovalError,
  APPROVER_KEY_ID_LABEL,
  approverKeyId,
  encodeApproval,
  encodePolicy,
  encodeRequest,
  MAX_APPROVERS,
  MAX_POLICY_BYTES,
  MAX_REQUEST_BYTES,
  MAX_VALIDITY_SECONDS,
  parseApprovalUnverified,
  parsePolicy,
  parseRequest,
  policyHash,
  type ApprovableRequest,
  type ApprovalPolicy,
  type ApproverKey,
} from "../../src/shared/wire/approval.ts";
import { fromJson, toJson, type Json } from "../vectors/vector-json.ts";

interface Vectors {
  keys: Json[];
  policies: { description: string; fields: Json; hex: string; hash: string }[];
  requests: { description: string; fields: Json; hex: string }[];
  approvals: { description: string; key: number; request: number; fields: Json; hex: string }[];
}
const V = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/approval.json"), "utf8"),
) as Vectors;
const keys = V.keys.map((k) => fromJson(k) as ApproverKey & { keyId: Uint8Array });

const malformed = (f: () => unknown): ApprovalError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ApprovalError);
    expect((e as ApprovalError).reason).toBe("malformed");
    expect((e as ApprovalError).code).toBe("bad_request");
    return e as ApprovalError;
  }
  throw new Error("not refused");
};

const sign: ApprovableRequest = fromJson(V.requests[0]!.fields) as ApprovableRequest;

describe("approval vectors", () => {
  it("has the cases it promises", () => {
    expect(V.keys).toHaveLength(3);
    expect(V.policies).toHaveLength(2);
    expect(V.requests.map((r) => (r.fields as { operation: string }).operation)).toEqual([
      "sign",
      "sign",
      "refresh",
      "policy_change",
      "dkg",
    ]);
    expect(V.approvals).toHaveLength(3);
  });

  it("key ids", () => {
    for (const k of keys) expect(toHex(approverKeyId(k))).toBe(toHex(k.keyId));
  });

  it("policies encode, parse (in canonical order) and hash byte for byte", () => {
    for (const c of V.policies) {
      const policy = fromJson(c.fields) as ApprovalPolicy;
      expect(toHex(encodePolicy(policy))).toBe(c.hex);
      expect(toHex(policyHash(policy))).toBe(c.hash);
      expect(toHex(policyHash(fromHex(c.hex)))).toBe(c.hash);
      const parsed = parsePolicy(fromHex(c.hex));
      expect(toHex(encodePolicy(parsed))).toBe(c.hex);
      expect(parsed.quorum).toBe(policy.quorum);
      expect(new Set(parsed.approvers.map((a) => toHex(a.publicKey)))).toEqual(
        new Set(policy.approvers.map((a) => toHex(a.publicKey))),
      );
    }
  });

  it("requests encode and parse byte for byte", () => {
    for (const c of V.requests) {
      expect(toHex(encodeRequest(fromJson(c.fields) as ApprovableRequest))).toBe(c.hex);
      expect(toJson(parseRequest(fromHex(c.hex)))).toEqual(c.fields);
    }
  });

  it("approvals encode and parse byte for byte", () => {
    for (const c of V.approvals) {
      expect(toHex(encodeApproval(fromJson(c.fields) as never))).toBe(c.hex);
      expect(toJson(parseApprovalUnverified(fromHex(c.hex)))).toEqual(c.fields);
    }
  });
});

describe("policy encoding", () => {
  const [a, b, p] = keys.map((k) => ({ algorithm: k.algorithm, publicKey: k.publicKey }));

  it("does not depend on the order approvers are given in", () => {
    const one = encodePolicy({ quorum: 2, approvers: [a!, b!, p!] });
    for (const order of [
      [p, a, b],
      [b, p, a],
      [a, p, b],
    ])
      expect(toHex(encodePolicy({ quorum: 2, approvers: order as ApproverKey[] }))).toBe(
        toHex(one),
      );
    expect(toHex(encodePolicy({ quorum: 1, approvers: [a!, b!, p!] }))).not.toBe(toHex(one));
  });

  it("refuses bad quorums, counts, keys and duplicates", () => {
    malformed(() => encodePolicy({ quorum: 0, approvers: [a!] }));
    malformed(() => encodePolicy({ quorum: 2, approvers: [a!] }));
    malformed(() => encodePolicy({ quorum: 1, approvers: [] }));
    malformed(() => encodePolicy({ quorum: 1.5, approvers: [a!, b!] }));
    malformed(() => encodePolicy({ quorum: 1, approvers: [a!, { ...a! }] }));
    const many = Array.from({ length: MAX_APPROVERS + 1 }, (_, i) => ({
      algorithm: "ed25519" as const,
      publicKey: new Uint8Array(32).fill(i + 1),
    }));
    expect(() =>
      encodePolicy({ quorum: 1, approvers: many.slice(0, MAX_APPROVERS) }),
    ).not.toThrow();
    malformed(() => encodePolicy({ quorum: 1, approvers: many }));
    malformed(() =>
      encodePolicy({ quorum: 1, approvers: [{ ...p!, publicKey: p!.publicKey.subarray(1) }] }),
    );
    const uncompressed = new Uint8Array(33);
    uncompressed[0] = 0x04;
    malformed(() =>
      encodePolicy({ quorum: 1, approvers: [{ algorithm: "p256", publicKey: uncompressed }] }),
    );
    malformed(() =>
      encodePolicy({
        quorum: 1,
        approvers: [{ algorithm: "rsa" as never, publicKey: a!.publicKey }],
      }),
    );
    // An Ed25519 key of 33 bytes is not a P-256 key: lengths belong to the algorithm.
    malformed(() =>
      encodePolicy({ quorum: 1, approvers: [{ algorithm: "ed25519", publicKey: p!.publicKey }] }),
    );
  });

  it("parses only the canonical encoding", () => {
    const good = fromHex(V.policies[1]!.hex);
    // Entries swapped: same keys, wrong order.
    const head = 4 + APPROVAL_POLICY_LABEL.length + 2;
    const entries = [good.subarray(head, head + 37), good.subarray(head + 37, head + 74)];
    const swapped = new Uint8Array(good);
    swapped.set(entries[1]!, head);
    swapped.set(entries[0]!, head + 37);
    expect(toHex(swapped)).not.toBe(toHex(good));
    malformed(() => parsePolicy(swapped));
    malformed(() => parsePolicy(Uint8Array.of(...good, 0)));
    malformed(() => parsePolicy(new Uint8Array(MAX_POLICY_BYTES + 1)));
    for (let n = 0; n < good.length; n++) malformed(() => parsePolicy(good.subarray(0, n)));
    malformed(() => policyHash(swapped));
  });
});

describe("request encoding", () => {
  it("has one layout for every operation, with unused fields empty", () => {
    const refresh = fromHex(V.requests[2]!.hex);
    // label, op, two ids, two times, four empty lp fields, t = n = 0
    expect(refresh.length).toBe(
      4 + APPROVAL_REQUEST_LABEL.length + 1 + (4 + 8) + (4 + 5) + 16 + 4 * 4 + 2,
    );
  });

  it('defaults a sign request\'s path to "m" and keeps it in the encoding', () => {
    const { path: _, ...noPath } = sign;
    expect(toHex(encodeRequest(noPath))).toBe(toHex(encodeRequest({ ...sign, path: "m" })));
    expect(parseRequest(encodeRequest(noPath)).path).toBe("m");
  });

  it("refuses fields an operation does not use, and missing ones it needs", () => {
    const refresh = fromJson(V.requests[2]!.fields) as ApprovableRequest;
    malformed(() => encodeRequest({ ...refresh, digest: sign.digest }));
    malformed(() => encodeRequest({ ...refresh, path: "m" }));
    malformed(() => encodeRequest({ ...refresh, policyHash: new Uint8Array(32) }));
    malformed(() => encodeRequest({ ...refresh, currentPolicyHash: new Uint8Array(32) }));
    malformed(() => encodeRequest({ ...refresh, threshold: 2 }));
    malformed(() => encodeRequest({ ...sign, digest: undefined }));
    malformed(() => encodeRequest({ ...sign, digest: new Uint8Array(31) }));
    malformed(() => encodeRequest({ ...sign, path: "m/2147483648" }));
    malformed(() => encodeRequest({ ...sign, path: "m/0'" }));
    malformed(() => encodeRequest({ ...sign, path: "m/007" }));
    malformed(() => encodeRequest({ ...sign, path: "m/00" }));
    expect(parseRequest(encodeRequest({ ...sign, path: "m/0/10/0" })).path).toBe("m/0/10/0");
    const change = fromJson(V.requests[3]!.fields) as ApprovableRequest;
    malformed(() => encodeRequest({ ...change, currentPolicyHash: undefined }));
    malformed(() => encodeRequest({ ...change, policyHash: undefined }));
    const dkg = fromJson(V.requests[4]!.fields) as ApprovableRequest;
    malformed(() => encodeRequest({ ...dkg, threshold: 6 }));
    malformed(() => encodeRequest({ ...dkg, threshold: 1 }));
    malformed(() => encodeRequest({ ...dkg, parties: 17, threshold: 3 }));
    malformed(() => encodeRequest({ ...sign, operation: "burn" as never }));
    malformed(() => encodeRequest({ ...sign, walletId: "has space" }));
    malformed(() => encodeRequest({ ...sign, requestId: "x".repeat(129) }));
    malformed(() => encodeRequest({ ...sign, walletId: "wé" }));
  });

  it("bounds the validity window", () => {
    const at = sign.issuedAt;
    expect(() => encodeRequest({ ...sign, expiresAt: at + MAX_VALIDITY_SECONDS })).not.toThrow();
    malformed(() => encodeRequest({ ...sign, expiresAt: at + MAX_VALIDITY_SECONDS + 1 }));
    malformed(() => encodeRequest({ ...sign, expiresAt: at }));
    malformed(() => encodeRequest({ ...sign, expiresAt: at - 1 }));
    malformed(() => encodeRequest({ ...sign, issuedAt: -1, expiresAt: 10 }));
    malformed(() => encodeRequest({ ...sign, issuedAt: 0.5, expiresAt: 10 }));
  });

  it("parses only canonical encodings: every truncation, extension and byte flip is refused or is another request", () => {
    for (const c of V.requests) {
      const good = fromHex(c.hex);
      for (let n = 0; n < good.length; n++) malformed(() => parseRequest(good.subarray(0, n)));
      malformed(() => parseRequest(Uint8Array.of(...good, 0)));
      for (let i = 0; i < good.length; i++) {
        const bad = new Uint8Array(good);
        bad[i]! ^= 0x01;
        let parsed: ApprovableRequest | undefined;
        try {
          parsed = parseRequest(bad);
        } catch (e) {
          expect((e as ApprovalError).reason).toBe("malformed");
        }
        // What does parse is a different request whose canonical encoding is exactly these bytes.
        if (parsed !== undefined) {
          expect(toHex(encodeRequest(parsed))).toBe(toHex(bad));
          expect(toJson(parsed)).not.toEqual(c.fields);
        }
      }
    }
    malformed(() => parseRequest(new Uint8Array(MAX_REQUEST_BYTES + 1)));
  });
});

describe("approval encoding", () => {
  it("is fixed-size and refuses other sizes and algorithms", () => {
    const good = fromHex(V.approvals[0]!.hex);
    expect(good.length).toBe(APPROVAL_BYTES);
    malformed(() => parseApprovalUnverified(good.subarray(1)));
    malformed(() => parseApprovalUnverified(Uint8Array.of(...good, 0)));
    for (const alg of [0, 3, 255]) {
      const bad = new Uint8Array(good);
      bad[0] = alg;
      malformed(() => parseApprovalUnverified(bad));
    }
    const a = parseApprovalUnverified(good);
    malformed(() => encodeApproval({ ...a, signature: new Uint8Array(71) }));
    malformed(() => encodeApproval({ ...a, keyId: new Uint8Array(31) }));
  });

  it("domain labels are distinct", () => {
    const labels = [APPROVAL_REQUEST_LABEL, APPROVAL_POLICY_LABEL, APPROVER_KEY_ID_LABEL].map((l) =>
      new TextDecoder().decode(l),
    );
    expect(new Set(labels).size).toBe(3);
    expect(labels[0]).toBe("tss-approval-v1");
  });
});
