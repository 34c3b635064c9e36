/**
 * tss policy: prints the KMS key policy of the share-wrapping key for an
 * enclave image (its PCR0 from the EIF build) and the nodes' identities
 * (each parent instance's PCR4), built by src/shared/key-policy.ts, the same
 * function the development harness installs in the KMS stand-in. Local: no
 * broker, no AWS call; the operator reviews the JSON and installs it
 * (aws kms put-key-policy, docs/OPERATIONS.md).
 */
import {
  KeyPolicyError,
  keyPolicyJson,
  parsePcrHex,
  parsePrincipalArn,
  type KeyPolicyNode,
} from "../shared/key-policy.ts";
import { UsageError, type Invocation } from "./args.ts";

export interface PolicyOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** --node-pcr NAME=HEX, or HEX alone (named node-1, node-2, ... in the order given). */
function nodeArg(value: string, index: number): KeyPolicyNode {
  const eq = value.indexOf("=");
  const name = eq < 0 ? `node-${index + 1}` : value.slice(0, eq);
  const hex = eq < 0 ? value : value.slice(eq + 1);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name))
    throw new UsageError(
      `--node-pcr ${JSON.stringify(value.slice(0, 80))}: the node name must be 1-64 characters of [A-Za-z0-9._-], as in --node-pcr node-1=<PCR4>.`,
    );
  return { name, pcr4Hex: parsePcrHex(hex, `--node-pcr ${name}'s PCR4`) };
}

/** Checks the arguments and returns the policy text; UsageError for any mistake. */
export function policyFromArgs(inv: Invocation): { policy: string; warnings: string[] } {
  try {
    const pcr0s = inv.lists.get("pcr0") ?? [];
    if (pcr0s.length === 0)
      throw new UsageError(
        "tss policy needs --pcr0 HEX: the enclave image's PCR0, as the EIF build prints it.",
      );
    if (pcr0s.length > 2)
      throw new UsageError(
        "tss policy takes at most two --pcr0: the running image and the one replacing it.",
      );
    const images = pcr0s.map((p) => parsePcrHex(p, "--pcr0"));
    if (new Set(images).size !== images.length)
      throw new UsageError("--pcr0 is given twice with the same image.");
    const nodes = (inv.lists.get("node-pcr") ?? []).map(nodeArg);
    const admin = inv.values.get("admin-role");
    if (admin === undefined)
      throw new UsageError(
        "tss policy needs --admin-role ARN: who administers the key (a key policy without an administrator can lock the key for good).",
      );
    const enclave = inv.values.get("enclave-role");
    if (enclave === undefined)
      throw new UsageError(
        "tss policy needs --enclave-role ARN: the parent instances' IAM role, whose credentials the hosts hand their enclaves.",
      );
    const adminPrincipal = parsePrincipalArn(admin, "--admin-role");
    const enclavePrincipal = parsePrincipalArn(enclave, "--enclave-role");
    const anyNode = inv.anyNode === true;
    if (nodes.length === 0 && !anyNode)
      throw new UsageError(
        "tss policy needs --node-pcr NAME=HEX for each node (its PCR4), or --any-node to let any enclave of the image open every node's shares.",
      );
    if (nodes.length > 0 && anyNode)
      throw new UsageError("--any-node and --node-pcr exclude each other; give one or the other.");
    const policy = keyPolicyJson({
      images,
      nodes,
      ...(anyNode ? { anyNode } : {}),
      adminPrincipal,
      enclavePrincipal,
    });
    const warnings = anyNode
      ? [
          "--any-node: any enclave of this image, on any instance, may open every node's shares; give each node's PCR4 for a cluster.",
        ]
      : [];
    return { policy, warnings };
  } catch (e) {
    if (e instanceof KeyPolicyError) throw new UsageError(e.message);
    throw e;
  }
}

export function runPolicy(inv: Invocation, io: PolicyOutput): number {
  const { policy, warnings } = policyFromArgs(inv);
  for (const w of warnings) io.err(`tss: warning: ${w}\n`);
  io.out(policy);
  return 0;
}
