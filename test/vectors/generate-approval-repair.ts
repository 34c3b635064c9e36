/**
 * ONLY FOR ADDING VECTORS. Writes test/vectors/approval-repair.json (share
 * repair's formats, src/shared/wire/repair.ts: the `repair` approval's
 * target digest, the `repair` approvable request of approval.ts, and a term
 * message body) if it does not exist yet; an existing file is never
 * overwritten, for the reason test/vectors/generate.ts gives.
 * test/shared/approval-repair-vectors.test.ts never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate-approval-repair.ts           # write it if missing
 *   node_modules/.bin/bun test/vectors/generate-approval-repair.ts --print   # print it, write nothing
 *
 * The keys are approval.json's test approver keys 0 (Ed25519) and 2 (P-256);
 * both schemes are deterministic, so the file is reproducible. The term
 * body's fields are fixed filler, not a real term (format only).
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KeySigner } from "../../src/client/signers.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeApproval,
  encodeRequest,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import { encodeRepairTermBody, repairTargetDigest } from "../../src/shared/wire/repair.ts";
import { fixedBytes } from "./fixed-inputs.ts";
import { toJson, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate-approval-repair.ts and never regenerated. Add cases; never edit one.";

const signers = [
  KeySigner.fromSecretKey("ed25519", fixedBytes(32, 0x31)),
  KeySigner.fromSecretKey("p256", fixedBytes(32, 0x41)),
];
const target = { party: 2, pcr4: fixedBytes(48, 0xa4) };
const digest = repairTargetDigest(target.party, target.pcr4);
const times = { issuedAt: 1_800_000_000, expiresAt: 1_800_000_300 };
const request: ApprovableRequest = {
  operation: "repair",
  walletId: "w_vector",
  requestId: "req-8",
  ...times,
  digest,
};
const encoded = encodeRequest(request);
const approvals: Json[] = [];
for (const [i, s] of signers.entries()) {
  const approval = {
    algorithm: s.algorithm,
    keyId: Buffer.from(s.keyId, "hex"),
    signature: await s.sign(encoded),
  };
  approvals.push({
    description: `key ${i} (${s.algorithm}) approves the request`,
    key: i,
    fields: toJson(approval),
    hex: toHex(encodeApproval(approval)),
  });
}
const termBody = {
  publicPackage: fixedBytes(40, 0x50),
  policyHash: fixedBytes(32, 0x70),
  term: fixedBytes(24, 0x90),
};

const file: Json = {
  format:
    "share repair: target digest, repair approvable request (operation 7), term body; version 1",
  source: "src/shared/wire/repair.ts, src/shared/wire/approval.ts, src/enclave/lifecycle-repair.ts",
  note: NOTE,
  keys: signers.map((s, i) =>
    toJson({
      algorithm: s.algorithm,
      secretKey: fixedBytes(32, [0x31, 0x41][i]!),
      publicKey: s.publicKey,
      keyId: Buffer.from(s.keyId, "hex"),
    }),
  ),
  targetDigest: {
    description: "party 2 moved to the node whose PCR4 is the 48 fixed bytes",
    fields: toJson(target),
    hex: toHex(digest),
  },
  request: {
    description: "repair party 2 of w_vector to that node",
    fields: toJson(request),
    hex: toHex(encoded),
  },
  approvals,
  termBody: { fields: toJson(termBody), hex: toHex(encodeRepairTermBody(termBody)) },
};

const path = join(import.meta.dirname, "approval-repair.json");
if (process.argv.includes("--print")) console.log(JSON.stringify(file, null, 2));
else if (existsSync(path)) console.log("kept approval-repair.json (frozen)");
else {
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  console.log("wrote approval-repair.json");
}
