/**
 * The share-wrapping key's KMS key policy, built from the enclave image's
 * measurements: the one source of truth for `tss policy` (what an operator
 * installs on the real AWS KMS key) and the development harness
 * (src/harness/dev-kms.ts, what the KMS stand-in enforces in every test).
 *
 * What it admits: kms:Decrypt and kms:GenerateDataKey, only with a Recipient
 * whose Nitro attestation shows an allowed image (kms:RecipientAttestation:
 * ImageSha384, i.e. PCR0) and, per node, that node's identity (PCR4, the hash
 * of its parent instance id), and only for an encryption context whose
 * `purpose` is tss-share and whose `node` is that same PCR4 (the context the
 * enclave builds, src/enclave/share-sealing.ts). A call without a Recipient
 * lacks the attestation keys, so no Allow matches and KMS denies it: the
 * parent instance's role alone never sees a data key.
 *
 * Plus one statement for the key administrators (a key policy without one
 * can lock the key for good), granting key management but neither Decrypt
 * nor GenerateDataKey nor grants. Condition keys and operators are the ones
 * AWS documents for Nitro Enclaves
 * (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclaves.html)
 * and the stand-in supports (src/devkms/policy.ts).
 *
 * Pure data, no I/O: importable from the CLI, the harness and tests alike.
 */

/** A SHA-384 measurement as hex: 48 bytes. */
export const PCR_HEX_CHARS = 96;

/** A mistake in what the policy is built from; its message is one sentence for the operator. */
export class KeyPolicyError extends Error {}

/** A node whose enclave may use its own data keys: a name (for the Sid) and the PCR4 its enclave attests. */
export interface KeyPolicyNode {
  name: string;
  pcr4Hex: string;
}

export interface KeyPolicyOptions {
  /**
   * Allowed images (PCR0 / ImageSha384). One normally; two while an image
   * upgrade rolls out, so old and new enclaves both open the shares.
   */
  images: readonly string[];
  /**
   * One statement per node, bound to its PCR4 and its encryption context.
   * Empty only with `anyNode`.
   */
  nodes: readonly KeyPolicyNode[];
  /**
   * No node binding, asked for explicitly: any enclave of an allowed image, on
   * any instance, may use any node's data keys, so one compromised instance
   * opens every node's shares (a single-instance deployment only). Refused
   * together with `nodes`.
   */
  anyNode?: boolean;
  /** The key administrators: an IAM ARN, or "*" (the development stand-in does not evaluate principals). */
  adminPrincipal: string;
  /** Who calls KMS for the enclaves: the parent instances' IAM role ARN, or "*" (development). */
  enclavePrincipal: string;
}

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Principal: { AWS: string };
  Action: string[];
  Resource: "*";
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface KeyPolicyDocument {
  Version: "2012-10-17";
  Id: string;
  Statement: PolicyStatement[];
}

/** The share-wrapping key's encryption context `purpose` (src/enclave/share-sealing.ts). */
export const SHARE_CONTEXT_PURPOSE = "tss-share";

/**
 * Key management without any use of the key: AWS's key-administrator list,
 * spelled out instead of Create*, so that kms:CreateGrant (which could hand
 * Decrypt to anyone) is not in it. PutKeyPolicy still lets an administrator
 * rewrite this policy: that power is inherent to a key administrator (and
 * logged in CloudTrail), see docs/OPERATIONS.md.
 */
export const ADMIN_ACTIONS = [
  "kms:DescribeKey",
  "kms:GetKeyPolicy",
  "kms:PutKeyPolicy",
  "kms:GetKeyRotationStatus",
  "kms:EnableKeyRotation",
  "kms:DisableKeyRotation",
  "kms:RotateKeyOnDemand",
  "kms:ListKeyRotations",
  "kms:ListResourceTags",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateKeyDescription",
  "kms:CreateAlias",
  "kms:UpdateAlias",
  "kms:DeleteAlias",
  "kms:ListGrants",
  "kms:RevokeGrant",
  "kms:EnableKey",
  "kms:DisableKey",
  "kms:ScheduleKeyDeletion",
  "kms:CancelKeyDeletion",
];

/** What the enclave itself calls (src/enclave/kms/kms-client.ts); nothing else, not GenerateDataKey*. */
export const ENCLAVE_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"];

const HEX = /^[0-9a-f]+$/i;

/**
 * A PCR value as an operator types it (an optional 0x is dropped), checked by
 * checkPcrHex; returned lower-cased.
 */
export function parsePcrHex(value: string, what: string): string {
  return checkPcrHex(value.trim().replace(/^0x/i, ""), what).toLowerCase();
}

/**
 * A PCR value, checked: 96 hex characters, not all zeros (what every PCR of a
 * debug-mode enclave reads, so a policy admitting it would admit any debug
 * enclave). keyPolicy() checks every value with it, whoever the caller.
 */
function checkPcrHex(v: string, what: string): string {
  if (v.length === 0) throw new KeyPolicyError(`${what} is empty; give the 96 hex characters.`);
  if (!HEX.test(v)) {
    const bad = [...v].find((c) => !/[0-9a-f]/i.test(c));
    throw new KeyPolicyError(`${what} must be hex (0-9, a-f); it contains ${JSON.stringify(bad)}.`);
  }
  if (v.length !== PCR_HEX_CHARS)
    throw new KeyPolicyError(
      `${what} must be ${PCR_HEX_CHARS} hex characters (a SHA-384, as the EIF build prints it), not ${v.length}.`,
    );
  if (/^0+$/.test(v))
    throw new KeyPolicyError(
      `${what} is all zeros: that is what a debug-mode enclave reports, so it would admit any debug enclave.`,
    );
  return v;
}

/** An IAM principal ARN: a role, a user or an account root; or "*" only where the caller allows it. */
const PRINCIPAL_ARN =
  /^arn:aws(-[a-z]+)*:iam::\d{12}:(root|role\/[A-Za-z0-9+=,.@_/-]{1,512}|user\/[A-Za-z0-9+=,.@_/-]{1,512})$/;

export function parsePrincipalArn(value: string, what: string): string {
  if (!PRINCIPAL_ARN.test(value))
    throw new KeyPolicyError(
      `${what} must be an IAM ARN such as arn:aws:iam::111122223333:role/tss-key-admin, not ${JSON.stringify(value.slice(0, 80))}.`,
    );
  return value;
}

/** A Sid is letters and digits; the node name without its separators. */
function sidPart(name: string): string {
  const s = name.replace(/[^A-Za-z0-9]/g, "");
  if (s.length === 0 || s.length > 64)
    throw new KeyPolicyError(
      `The node name ${JSON.stringify(name.slice(0, 80))} needs 1-64 letters or digits.`,
    );
  return s;
}

export function keyPolicy(o: KeyPolicyOptions): KeyPolicyDocument {
  if (o.images.length === 0)
    throw new KeyPolicyError("The policy needs at least one image (PCR0).");
  if (o.nodes.length === 0 && o.anyNode !== true)
    throw new KeyPolicyError(
      "The policy names no node (PCR4): give each node's PCR4, or ask for any node explicitly (any enclave of the image could then open every node's shares).",
    );
  if (o.nodes.length > 0 && o.anyNode === true)
    throw new KeyPolicyError("The policy names nodes and any node at once; give one or the other.");
  const images = o.images.map((p) => checkPcrHex(p, "An image's PCR0"));
  const sids = new Set<string>();
  const pcr4s = new Set<string>();
  for (const n of o.nodes) {
    const sid = sidPart(n.name);
    if (sids.has(sid))
      throw new KeyPolicyError(`Two nodes are named alike (${JSON.stringify(n.name)}).`);
    sids.add(sid);
    const pcr4 = checkPcrHex(n.pcr4Hex, `Node ${n.name}'s PCR4`).toLowerCase();
    // Two nodes with one identity could open each other's shares.
    if (pcr4s.has(pcr4)) throw new KeyPolicyError(`Two nodes share the PCR4 of ${n.name}.`);
    pcr4s.add(pcr4);
  }
  // One value is written as a string, several as a list (any of them), as AWS shows it.
  const imageValue = images.length === 1 ? images[0]! : [...images];
  const enclave = (sid: string, extra: Record<string, string>, context: Record<string, string>) =>
    ({
      Sid: sid,
      Effect: "Allow",
      Principal: { AWS: o.enclavePrincipal },
      Action: [...ENCLAVE_ACTIONS],
      Resource: "*",
      Condition: {
        // Hex digests: case does not matter, and AWS's examples use this operator.
        StringEqualsIgnoreCase: {
          "kms:RecipientAttestation:ImageSha384": imageValue,
          ...extra,
        },
        // Context values are compared exactly (the enclave writes them lower-case).
        StringEquals: {
          "kms:EncryptionContext:purpose": SHARE_CONTEXT_PURPOSE,
          ...context,
        },
      },
    }) satisfies PolicyStatement;
  return {
    Version: "2012-10-17",
    Id: "tss-share-wrapping-key",
    Statement: [
      {
        Sid: "KeyAdministration",
        Effect: "Allow",
        Principal: { AWS: o.adminPrincipal },
        Action: [...ADMIN_ACTIONS],
        Resource: "*",
      },
      ...(o.nodes.length === 0
        ? [enclave("ShareDataKeysForAttestedImage", {}, {})]
        : o.nodes.map((n) =>
            enclave(
              `ShareDataKeysOnlyFor${sidPart(n.name)}Enclave`,
              { "kms:RecipientAttestation:PCR4": n.pcr4Hex },
              { "kms:EncryptionContext:node": n.pcr4Hex.toLowerCase() },
            ),
          )),
    ],
  };
}

/** The policy as KMS takes it (PutKeyPolicy / CreateKey Policy), indented for review. */
export function keyPolicyJson(o: KeyPolicyOptions): string {
  return `${JSON.stringify(keyPolicy(o), null, 2)}\n`;
}
