/**
 * Share repair (issue 11 item 1), version 1: the approval digest that names
 * a repair's target, and the body of one helper's term message.
 *
 * Repair target digest (REPAIR_TARGET_DIGEST_BYTES; the `digest` field of a
 * `repair` approvable request, approval.ts operation 7): SHA-256 of
 *
 *   lp("tss-repair-v1")   domain label
 *   u8  party K           the party index being moved, 1..MAX_PARTIES
 *   lp(target PCR4)       PCR_BYTES (48): the new node's identity as its
 *                         attestation documents carry it (on Nitro the parent
 *                         instance id's hash), never a host-chosen name
 *
 * so the approvers approve "party K of this wallet to that machine", and an
 * enclave can recompute it from the target's verified attestation document.
 *
 * Term message body (after the 37-byte protocol header of ceremony 5,
 * "repair", phase 1, from a helper, to the target; protocol-message.ts):
 *
 *   u32 package length    1..MAX_REPAIR_PACKAGE_BYTES
 *   package               the wallet's public package as the helper holds it
 *   32  policy hash       the wallet's sealed approval policy hash (approval.ts)
 *   u32 term length       1..MAX_REPAIR_TERM_BYTES
 *   term                  repairTerm's output ("DKR\x01" | repair id | postcard)
 *
 * Integers big-endian. The term is secret: the message travels only inside a
 * peer envelope sealed to the target's attested channel key.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { MAX_PARTIES } from "./protocol-message.ts";

const utf8 = new TextEncoder();

export const REPAIR_TARGET_LABEL = utf8.encode("tss-repair-v1");
/** A PCR value (SHA-384) as Nitro attestation documents carry it. */
export const REPAIR_PCR_BYTES = 48;
export const REPAIR_TARGET_DIGEST_BYTES = 32;
export const REPAIR_POLICY_HASH_BYTES = 32;
/** The core's bound on one term (crates/dkls23-wasm/src/repair.rs). */
export const MAX_REPAIR_TERM_BYTES = 512;
/** As node-rpc.ts MAX_PUBLIC_PACKAGE_BYTES. */
export const MAX_REPAIR_PACKAGE_BYTES = 64 * 1024;
export const MAX_REPAIR_BODY_BYTES =
  4 + MAX_REPAIR_PACKAGE_BYTES + REPAIR_POLICY_HASH_BYTES + 4 + MAX_REPAIR_TERM_BYTES;

export class RepairFormatError extends Error {
  override name = "RepairFormatError";
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** The `repair` approval's digest for moving `party` to the node whose PCR4 is `targetPcr4`. */
export function repairTargetDigest(party: number, targetPcr4: Uint8Array): Uint8Array {
  if (!Number.isInteger(party) || party < 1 || party > MAX_PARTIES)
    throw new RepairFormatError(`party must be 1..${MAX_PARTIES}`);
  if (!(targetPcr4 instanceof Uint8Array) || targetPcr4.length !== REPAIR_PCR_BYTES)
    throw new RepairFormatError(`target PCR4 must be ${REPAIR_PCR_BYTES} bytes`);
  return sha256(
    concatBytes(
      u32(REPAIR_TARGET_LABEL.length),
      REPAIR_TARGET_LABEL,
      Uint8Array.of(party),
      u32(targetPcr4.length),
      targetPcr4,
    ),
  );
}

export interface RepairTermBody {
  publicPackage: Uint8Array;
  policyHash: Uint8Array;
  /** Secret. */
  term: Uint8Array;
}

export function encodeRepairTermBody(b: RepairTermBody): Uint8Array {
  const { publicPackage: p, policyHash: h, term: t } = b;
  if (p.length < 1 || p.length > MAX_REPAIR_PACKAGE_BYTES)
    throw new RepairFormatError("public package length out of range");
  if (h.length !== REPAIR_POLICY_HASH_BYTES)
    throw new RepairFormatError(`policy hash must be ${REPAIR_POLICY_HASH_BYTES} bytes`);
  if (t.length < 1 || t.length > MAX_REPAIR_TERM_BYTES)
    throw new RepairFormatError("repair term length out of range");
  return concatBytes(u32(p.length), p, h, u32(t.length), t);
}

/** Splits a term body; the fields are views into `body` (the caller wipes it). */
export function parseRepairTermBody(body: Uint8Array): RepairTermBody {
  if (!(body instanceof Uint8Array) || body.length > MAX_REPAIR_BODY_BYTES)
    throw new RepairFormatError("repair term body too long");
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  const take = (len: number): Uint8Array => {
    if (body.length - at < len) throw new RepairFormatError("repair term body truncated");
    const out = body.subarray(at, at + len);
    at += len;
    return out;
  };
  const length = (max: number): number => {
    take(4);
    const n = view.getUint32(at - 4);
    if (n < 1 || n > max) throw new RepairFormatError("repair term body: length out of range");
    return n;
  };
  const publicPackage = take(length(MAX_REPAIR_PACKAGE_BYTES));
  const policyHash = take(REPAIR_POLICY_HASH_BYTES);
  const term = take(length(MAX_REPAIR_TERM_BYTES));
  if (at !== body.length) throw new RepairFormatError("repair term body: trailing bytes");
  return { publicPackage, policyHash, term };
}
