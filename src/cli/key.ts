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
import { readFileSync } from "node:fs";
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

/**
 * The key `tss wallet import` brings in: a file holding the 32-byte secret key
 * in hex, optionally followed by whitespace and a 32-byte BIP-32 chain code in
 * hex (0x prefixes allowed). Read from a file, since a command line is visible
 * to every user of the machine. The file's text is not kept.
 */
export function readImportedKeyFile(file: string): {
  secretKey: Uint8Array;
  chainCode?: Uint8Array;
} {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`Cannot read the secret key file ${file}: ${(e as Error).message}.`);
  }
  const words = text
    .trim()
    .split(/\s+/)
    .map((w) => w.replace(/^0x/i, ""));
  text = "";
  if (words.length > 2 || !words.every((w) => /^[0-9a-fA-F]{64}$/.test(w)))
    throw new UsageError(
      `${file} must hold the secret key as 64 hex characters, optionally followed by the chain code (64 more).`,
    );
  const secretKey = Uint8Array.from(Buffer.from(words[0]!, "hex"));
  return words[1] === undefined
    ? { secretKey }
    : { secretKey, chainCode: Uint8Array.from(Buffer.from(words[1], "hex")) };
}
