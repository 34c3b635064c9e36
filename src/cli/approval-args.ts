/**
 * The approval options of tss: `--key FILE` (repeatable) on sign and wallet
 * refresh, `wallet create --approver PUB... --quorum M --admin-key FILE...`.
 * Key files are read here, before anything connects, so a missing or bad
 * file is a usage error (status 2).
 *
 * An approver is given as ALGORITHM:HEX (ed25519:<64 hex>, p256:<66 hex>,
 * as `tss key show` prints the public key) or as HEX alone, whose length
 * says the algorithm (32 bytes Ed25519, 33 bytes compressed P-256).
 */
import {
  ALGORITHMS,
  approverKeyOf,
  isApprovalAlgorithm,
  readKeyFile,
  TssError,
  type ApprovalPolicy,
  type ApproverKey,
  type KeySigner,
} from "../client/index.ts";
import { fromHex } from "../shared/hex.ts";
import { UsageError, wholeNumber, type Invocation } from "./args.ts";

/** The key files of a repeatable option, read; undefined when none was given. */
export function keyFilesArg(inv: Invocation, name: string): KeySigner[] | undefined {
  const files = inv.lists.get(name);
  if (files === undefined) return undefined;
  return files.map((file) => {
    try {
      return readKeyFile(file);
    } catch (e) {
      if (e instanceof TssError) throw new UsageError(e.message);
      throw e;
    }
  });
}

export function approverArg(v: string): ApproverKey {
  const m = /^(?:([a-z0-9]+):)?([0-9a-fA-F]+)$/.exec(v);
  const bytes = m && m[2]!.length % 2 === 0 ? fromHex(m[2]!.toLowerCase()) : null;
  const algorithm = m?.[1] ?? (bytes?.length === 32 ? "ed25519" : "p256");
  if (!bytes || !isApprovalAlgorithm(algorithm))
    throw new UsageError(
      `--approver must be a public key in hex, optionally after ${ALGORITHMS.join(": or ")}:, as tss key show prints it.`,
    );
  try {
    return approverKeyOf({ algorithm, publicKey: bytes });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The wallet's policy from --approver and --quorum; undefined without approvers. */
export function walletPolicyArg(inv: Invocation): ApprovalPolicy | undefined {
  const approvers = inv.lists.get("approver");
  const quorum = wholeNumber(inv.values.get("quorum"), "quorum");
  if (approvers === undefined) {
    if (quorum !== undefined) throw new UsageError("--quorum needs at least one --approver.");
    return undefined;
  }
  const keys = approvers.map(approverArg);
  if (quorum === undefined && keys.length > 1)
    throw new UsageError("With several --approver keys, --quorum M says how many must approve.");
  const m = quorum ?? 1;
  if (m < 1 || m > keys.length)
    throw new UsageError(`--quorum must be between 1 and the ${keys.length} approver keys.`);
  return { quorum: m, approvers: keys };
}
