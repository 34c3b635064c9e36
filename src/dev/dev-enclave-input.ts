/**
 * What the development enclave reads on stdin in place of hardware and AWS:
 * one line of JSON
 *
 *   {"pki": <serializeDevelopmentPki's JSON, as an object or as its string>,
 *    "pcr4": "<96 hex digits>", "kmsCaPem"?: "<PEM>", "adminPolicy"?: "<hex>",
 *    "unapprovedWallets"?: true}
 *
 * `pki` signs the simulated NSM's documents; `pcr4` is this node's identity
 * (on Nitro: the parent instance id's hash, which the host cannot choose;
 * src/harness/dev-kms.ts devNodePcr4 makes one per node name);
 * `kmsCaPem` is the development CA the KMS stand-in's certificate chains to
 * (in production: the Amazon Trust Services roots built into the image).
 * `adminPolicy` is a development administrators' policy (approval.ts
 * encoding, hex) in place of the one built into the production bundle.
 * Without one the development enclave creates no wallets, as a production
 * image built without administrators, unless `unapprovedWallets: true` says
 * explicitly that it is to require no approvals (for wallets created without
 * a policy: the test harness's clusters without administrators); the two
 * exclude each other.
 * Bounded: the line is at most MAX_DEV_ENCLAVE_INPUT_CHARS.
 */
import { MAX_POLICY_BYTES } from "../shared/wire/approval.ts";
import { fromHex } from "../shared/hex.ts";
import { MAX_SERIALIZED_PKI_CHARS, restoreDevelopmentPki, type DevelopmentPki } from "./dev-pki.ts";

/** The PKI, a PCR and a CA certificate bundle, with room to spare. */
export const MAX_DEV_ENCLAVE_INPUT_CHARS = MAX_SERIALIZED_PKI_CHARS + 64 * 1024;
const MAX_CA_PEM_CHARS = 32 * 1024;

export interface DevEnclaveInput {
  pki: DevelopmentPki;
  pcr4: Uint8Array;
  /** The development CA for the KMS endpoint, if the enclave is to reach KMS. */
  kmsCaPem?: string;
  /** The development administrators' policy encoding as hex (checked by the enclave when it opens it). */
  adminPolicy?: string;
  /** Require no approvals (wallets created, signed and refreshed without a policy); never with adminPolicy. */
  unapprovedWallets?: true;
}

/** Parses and checks the stdin line; throws a sentence naming what is wrong. */
export function parseDevEnclaveInput(line: string): DevEnclaveInput {
  if (line.length > MAX_DEV_ENCLAVE_INPUT_CHARS)
    throw new Error(`development enclave input exceeds ${MAX_DEV_ENCLAVE_INPUT_CHARS} characters`);
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch {
    throw new Error("development enclave input is not JSON");
  }
  const o = j as Record<string, unknown>;
  if (o === null || typeof o !== "object" || Array.isArray(o))
    throw new Error("development enclave input must be a JSON object");
  for (const k of Object.keys(o))
    if (
      k !== "pki" &&
      k !== "pcr4" &&
      k !== "kmsCaPem" &&
      k !== "adminPolicy" &&
      k !== "unapprovedWallets"
    )
      throw new Error(`development enclave input has no field ${k}`);
  const pkiText = typeof o.pki === "string" ? o.pki : JSON.stringify(o.pki ?? null);
  const pki = restoreDevelopmentPki(pkiText);
  if (typeof o.pcr4 !== "string" || !/^[0-9a-f]{96}$/.test(o.pcr4))
    throw new Error("development enclave input: pcr4 must be 96 lowercase hex digits");
  const input: DevEnclaveInput = { pki, pcr4: fromHex(o.pcr4, 48) };
  if (o.kmsCaPem !== undefined) {
    if (
      typeof o.kmsCaPem !== "string" ||
      o.kmsCaPem.length > MAX_CA_PEM_CHARS ||
      !o.kmsCaPem.includes("-----BEGIN CERTIFICATE-----")
    )
      throw new Error("development enclave input: kmsCaPem must be a PEM certificate");
    input.kmsCaPem = o.kmsCaPem;
  }
  if (o.adminPolicy !== undefined) {
    if (
      typeof o.adminPolicy !== "string" ||
      o.adminPolicy.length > 2 * MAX_POLICY_BYTES ||
      !/^([0-9a-f]{2})+$/.test(o.adminPolicy)
    )
      throw new Error("development enclave input: adminPolicy must be a policy encoding as hex");
    input.adminPolicy = o.adminPolicy;
  }
  if (o.unapprovedWallets !== undefined) {
    if (o.unapprovedWallets !== true)
      throw new Error("development enclave input: unapprovedWallets must be true when given");
    if (input.adminPolicy !== undefined)
      throw new Error(
        "development enclave input: unapprovedWallets and adminPolicy exclude each other",
      );
    input.unapprovedWallets = true;
  }
  return input;
}
