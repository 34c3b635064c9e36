/**
 * tss key new | show: approver key files on this machine, without the
 * broker (src/client/signers.ts writes and reads them). Neither ever prints
 * the secret key. A key file that cannot be written or read is a usage or
 * configuration error (status 2).
 */
import {
  ALGORITHMS,
  isApprovalAlgorithm,
  readKeyFile,
  TssError,
  writeKeyFile,
  KeySigner,
} from "../client/index.ts";
import { toHex } from "../shared/hex.ts";
import { UsageError, type Invocation } from "./args.ts";

export interface KeyOutput {
  out: (text: string) => void;
}

function describe(signer: KeySigner, file: string, json: boolean): string {
  const shown = {
    keyId: signer.keyId,
    algorithm: signer.algorithm,
    publicKey: toHex(signer.publicKey),
    file,
  };
  if (json) return `${JSON.stringify(shown, null, 2)}\n`;
  return [
    `Key id      ${shown.keyId}`,
    `Algorithm   ${shown.algorithm}`,
    `Public key  ${shown.publicKey}`,
    `File        ${file}`,
    "",
  ].join("\n");
}

/** Runs `tss key new` or `tss key show`; returns the exit status. */
export function runKey(
  inv: Invocation & { command: "key new" | "key show" },
  io: KeyOutput,
): number {
  try {
    if (inv.command === "key new") {
      const out = inv.values.get("out");
      if (out === undefined)
        throw new UsageError("tss key new needs --out FILE, where the new key file is written.");
      const algorithm = inv.values.get("algorithm") ?? "ed25519";
      if (!isApprovalAlgorithm(algorithm))
        throw new UsageError(`--algorithm must be one of ${ALGORITHMS.join(", ")}.`);
      const signer = KeySigner.generate(algorithm);
      writeKeyFile(out, signer);
      io.out(describe(signer, out, inv.json));
      return 0;
    }
    const file = inv.args[0]!;
    io.out(describe(readKeyFile(file), file, inv.json));
    return 0;
  } catch (e) {
    // The signer module's refusals name the file and the problem; they are the user's to fix.
    if (e instanceof TssError) throw new UsageError(e.message);
    throw e;
  }
}
