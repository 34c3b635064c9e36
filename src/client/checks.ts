/**
 * Checks a well-formed result against the request and against itself, so a
 * faulty or hostile coordinator cannot hand the caller an address that is
 * not its key's, a result for another wallet or digest, or a signature that
 * does not verify.
 */
import { fromHex } from "../shared/hex.ts";
import { signatureForms, verifySignature } from "../shared/signature.ts";
import { ethAddress } from "../shared/public-key.ts";
import { TssError } from "./errors.ts";
import type { KeyType, SignResult } from "./types.ts";

function inconsistent(message: string, node: string | null = null): TssError {
  return new TssError("inconsistent_result", message, node);
}

/** The address must be the EIP-55 address of the public key. */
export function checkAddress(
  r: { publicKey: string; address: string },
  node: string | null = null,
): void {
  let expected: string;
  try {
    expected = ethAddress(fromHex(r.publicKey));
  } catch {
    throw inconsistent(
      `The returned public key ${r.publicKey.slice(0, 16)}… is not a secp256k1 point.`,
      node,
    );
  }
  if (r.address !== expected)
    throw inconsistent(
      `The returned address ${r.address} is not the address of the returned public key (${expected}).`,
      node,
    );
}

/** The answer must be for the key type the request named (or the default one). */
export function checkSameKeyType(r: { keyType: KeyType }, asked: KeyType): void {
  if (r.keyType !== asked)
    throw inconsistent(`The node answered with a ${r.keyType} key, not the requested ${asked}.`);
}

export function checkSameWallet(r: { walletId: string }, walletId: string): void {
  if (r.walletId !== walletId)
    throw inconsistent(
      `The node answered for wallet ${r.walletId}, not the requested ${walletId}.`,
    );
}

/**
 * A signature result must be for the requested wallet, digest and path, and
 * its signature must verify (valid, low-S, recovering to publicKey) with its
 * Ethereum and DER forms encoding the same r and s. For a path request the
 * SDK cannot derive the child key (it has no chain code), so it verifies
 * against the returned publicKey, which is that child key.
 */
export function checkSignResult(
  r: SignResult,
  req: { walletId: string; digest: string; path: string | null },
): SignResult {
  const blame = r.coordinator;
  checkSameWallet(r, req.walletId);
  if (r.digest !== req.digest)
    throw inconsistent(
      `The node signed digest ${r.digest}, not the requested ${req.digest}.`,
      blame,
    );
  if (r.path !== req.path)
    throw inconsistent(
      `The node signed with path ${r.path ?? "(none)"}, not the requested ${req.path ?? "(none)"}.`,
      blame,
    );
  checkAddress(r, blame);
  const sig = {
    r: fromHex(r.signature.r, 32),
    s: fromHex(r.signature.s, 32),
    recoveryId: r.signature.recoveryId,
  };
  let valid: boolean;
  try {
    valid = verifySignature(fromHex(r.publicKey), fromHex(r.digest, 32), sig);
  } catch {
    // r or s out of range, or nothing to recover: not a signature at all.
    valid = false;
  }
  if (!valid)
    throw new TssError(
      "invalid_signature",
      `The signature returned for wallet ${r.walletId} does not verify against its public key and the digest, so it was rejected.`,
      blame,
    );
  const forms = signatureForms(sig);
  if (forms.ethereum !== r.signature.ethereum || forms.der !== r.signature.der) {
    throw new TssError(
      "invalid_signature",
      "The signature's Ethereum or DER form does not encode its r and s, so it was rejected.",
      blame,
    );
  }
  return r;
}
