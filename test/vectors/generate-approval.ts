/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/approval.json (approval
 * policies, approvable requests and approvals, src/shared/wire/approval.ts)
 * if it does not exist yet; an existing file is never overwritten, for the
 * reason test/vectors/generate.ts gives. test/shared/approval-encoding.test.ts
 * and test/enclave/approvals.test.ts never run this.
 *
 *   node_modules/.bin/bun test/vectors/generate-approval.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-approval.ts --print   # print it, write nothing
 *
 * Every input is fixed and both signature schemes are deterministic (Ed25519;
 * P-256 with RFC 6979 nonces), so the file is reproducible.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KeySigner } from "../../src/client/signers.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeApproval,
  encodePolicy,
  encodeRequest,
  policyHash,
  type ApprovableRequest,
  type ApprovalPolicy,
} from "../../src/shared/wire/approval.ts";
import { fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-approval.ts and never regenerated. Add cases; never edit one.";

/** Test approver keys: their secrets are published here on purpose. */
const signers = [
  KeySigner.fromSecretKey("ed25519", fixedBytes(32, 0x31)),
  KeySigner.fromSecretKey("ed25519", fixedBytes(32, 0x32)),
  KeySigner.fromSecretKey("p256", fixedBytes(32, 0x41)),
];
const keyOf = (i: number) => ({
  algorithm: signers[i]!.algorithm,
  publicKey: signers[i]!.publicKey,
});

const policyCase = (description: string, policy: ApprovalPolicy): Json => {
  const encoding = encodePolicy(policy);
  return {
    description,
    fields: toJson(policy),
    hex: toHex(encoding),
    hash: toHex(policyHash(policy)),
  };
};

const oneOfOne: ApprovalPolicy = { quorum: 1, approvers: [keyOf(0)] };
const twoOfThree: ApprovalPolicy = { quorum: 2, approvers: [keyOf(2), keyOf(0), keyOf(1)] };
const times = { issuedAt: 1_800_000_000, expiresAt: 1_800_000_300 };
const requests: [string, ApprovableRequest][] = [
  [
    "sign with a derivation path",
    {
      operation: "sign",
      walletId: "w_vector",
      requestId: "req-1",
      ...times,
      digest: fixedBytes(32, 0xd1),
      path: "m/44/60/0/0/0",
    },
  ],
  [
    'sign with the wallet key itself (path "m")',
    {
      operation: "sign",
      walletId: "w_vector",
      requestId: "req-2",
      ...times,
      digest: fixedBytes(32, 0xd2),
      path: "m",
    },
  ],
  ["refresh", { operation: "refresh", walletId: "w_vector", requestId: "req-3", ...times }],
  [
    "policy_change from the 1-of-1 to the 2-of-3 policy, maximal validity (3600 s)",
    {
      operation: "policy_change",
      walletId: "w_vector",
      requestId: "req-4",
      issuedAt: times.issuedAt,
      expiresAt: times.issuedAt + 3600,
      policyHash: policyHash(twoOfThree),
      currentPolicyHash: policyHash(oneOfOne),
    },
  ],
  [
    "dkg of a 3-of-5 wallet with the 2-of-3 policy",
    {
      operation: "dkg",
      walletId: "w_new",
      requestId: "req-5",
      ...times,
      policyHash: policyHash(twoOfThree),
      threshold: 3,
      parties: 5,
    },
  ],
];

const signRequest = encodeRequest(requests[0]![1]);
const approvals: Json[] = [];
for (const [i, s] of signers.entries()) {
  const approval = {
    algorithm: s.algorithm,
    keyId: Buffer.from(s.keyId, "hex"),
    signature: await s.sign(signRequest),
  };
  approvals.push({
    description: `key ${i} (${s.algorithm}) approves requests[0]`,
    key: i,
    request: 0,
    fields: toJson(approval),
    hex: toHex(encodeApproval(approval)),
  });
}

const file: Json = {
  format: "approval policy, approvable request and approval, version 1",
  source: "src/shared/wire/approval.ts, src/enclave/approvals.ts",
  note: NOTE,
  keys: signers.map((s, i) =>
    toJson({
      algorithm: s.algorithm,
      secretKey: fixedBytes(32, [0x31, 0x32, 0x41][i]!),
      publicKey: s.publicKey,
      keyId: Buffer.from(s.keyId, "hex"),
    }),
  ),
  policies: [
    policyCase("1 of 1, one Ed25519 key", oneOfOne),
    policyCase("2 of 3, mixed Ed25519 and P-256, given out of canonical order", twoOfThree),
  ],
  requests: requests.map(([description, r]) => ({
    description,
    fields: toJson(r),
    hex: toHex(encodeRequest(r)),
  })),
  approvals,
};

const path = join(import.meta.dirname, "approval.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept approval.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote approval.json");
}
