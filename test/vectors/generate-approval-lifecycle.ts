/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/approval-lifecycle.json (the
 * key lifecycle's approvable requests, src/shared/wire/approval.ts: retire
 * and import) if it does not exist yet; an existing file is never
 * overwritten, for the reason test/vectors/generate.ts gives.
 * test/shared/approval-lifecycle-vectors.test.ts never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-approval-lifecycle.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-approval-lifecycle.ts --print   # print it, write nothing
 *
 * The keys and policies are approval.json's (same fixed secrets); both
 * signature schemes are deterministic, so the file is reproducible.
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
  "Frozen: written once by test/vectors/generate-approval-lifecycle.ts and never regenerated. Add cases; never edit one.";

/** approval.json's test approver keys 0 (Ed25519) and 2 (P-256). */
const signers = [
  KeySigner.fromSecretKey("ed25519", fixedBytes(32, 0x31)),
  KeySigner.fromSecretKey("p256", fixedBytes(32, 0x41)),
];
const walletPolicy: ApprovalPolicy = {
  quorum: 1,
  approvers: [{ algorithm: signers[0]!.algorithm, publicKey: signers[0]!.publicKey }],
};
const times = { issuedAt: 1_800_000_000, expiresAt: 1_800_000_300 };
const requests: [string, ApprovableRequest][] = [
  ["retire", { operation: "retire", walletId: "w_vector", requestId: "req-6", ...times }],
  [
    "import of a key as a 3-of-5 wallet with the 1-of-1 policy; digest: SHA-256 of the envelope",
    {
      operation: "import",
      walletId: "w_imported",
      requestId: "req-7",
      ...times,
      digest: fixedBytes(32, 0xe1),
      policyHash: policyHash(walletPolicy),
      threshold: 3,
      parties: 5,
    },
  ],
];

const importRequest = encodeRequest(requests[1]![1]);
const approvals: Json[] = [];
for (const [i, s] of signers.entries()) {
  const approval = {
    algorithm: s.algorithm,
    keyId: Buffer.from(s.keyId, "hex"),
    signature: await s.sign(importRequest),
  };
  approvals.push({
    description: `key ${i} (${s.algorithm}) approves requests[1]`,
    key: i,
    request: 1,
    fields: toJson(approval),
    hex: toHex(encodeApproval(approval)),
  });
}

const file: Json = {
  format: "approvable requests of the key lifecycle (retire, import), version 1",
  source: "src/shared/wire/approval.ts, src/enclave/approval-gate.ts",
  note: NOTE,
  keys: signers.map((s, i) =>
    toJson({
      algorithm: s.algorithm,
      secretKey: fixedBytes(32, [0x31, 0x41][i]!),
      publicKey: s.publicKey,
      keyId: Buffer.from(s.keyId, "hex"),
    }),
  ),
  walletPolicy: { hex: toHex(encodePolicy(walletPolicy)), hash: toHex(policyHash(walletPolicy)) },
  requests: requests.map(([description, r]) => ({
    description,
    fields: toJson(r),
    hex: toHex(encodeRequest(r)),
  })),
  approvals,
};

const path = join(import.meta.dirname, "approval-lifecycle.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept approval-lifecycle.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote approval-lifecycle.json");
}
