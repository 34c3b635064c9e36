/**
 * The answer a client gets for a signature (docs/mqtt-api.md `sign` result), built in one place
 * for the coordinator that ran the ceremony and for a signer keeping it in case that coordinator
 * dies before answering (sign-outcomes-repo.ts): a resubmission then gets the same bytes either way.
 */
import { deriveChildPublicKey, ethAddress } from "../shared/public-key.ts";
import { toHex } from "../shared/hex.ts";
import { signatureForms, verifySignature, type Signature } from "../shared/signature.ts";
import { DEFAULT_KEY_TYPE } from "../shared/wire/key-type.ts";

export interface SignAnswer {
  walletId: string;
  /** The wallet's root public key and chain code (the child key is derived from them). */
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  digest: Uint8Array;
  path: string | undefined;
  sig: Signature;
  /** Node ids of the t signers and of the coordinator that ran the ceremony. */
  signers: string[];
  coordinator: string;
}

/**
 * Child keys already derived, by root key, chain code and path: a signature under a path needs
 * the child key at the coordinator (its check and its answer) and at each signer (its kept
 * outcome), ~1 ms of curve work per level each time. Bounded, oldest out; failures not kept.
 */
const childKeys = new Map<string, Uint8Array>();
const MAX_CHILD_KEYS = 1024;

/** The child public key a signature under `path` verifies against (the root key without a path). */
export function signingKey(a: Pick<SignAnswer, "publicKey" | "chainCode" | "path">): Uint8Array {
  if (!a.path) return a.publicKey;
  const key = `${toHex(a.publicKey)}:${toHex(a.chainCode)}:${a.path}`;
  let child = childKeys.get(key);
  if (child === undefined) {
    child = deriveChildPublicKey(a.publicKey, a.chainCode, a.path).publicKey;
    childKeys.set(key, child);
    if (childKeys.size > MAX_CHILD_KEYS) childKeys.delete(childKeys.keys().next().value!);
  }
  // A copy: the remembered bytes stay what was derived whatever a caller does with its own.
  return child.slice();
}

/**
 * Signatures this host verified, by every input's bytes. The coordinator is a signer: its own
 * phase-4 reply is checked when it keeps the outcome (signer-outcomes.ts) and the same
 * signature again before it answers (coordinator.ts signDigest); the second finds it here.
 * Only successes are kept (a pure function of the key), bounded, oldest out.
 */
const verified = new Set<string>();
const MAX_VERIFIED = 1024;

/** verifySignature, remembered for what verified on this host. */
export function signatureVerifies(
  publicKey: Uint8Array,
  digest: Uint8Array,
  sig: Signature,
): boolean {
  const key = `${toHex(publicKey)}:${toHex(digest)}:${toHex(sig.r)}:${toHex(sig.s)}:${sig.recoveryId}`;
  if (verified.has(key)) return true;
  if (!verifySignature(publicKey, digest, sig)) return false;
  verified.add(key);
  if (verified.size > MAX_VERIFIED) verified.delete(verified.keys().next().value!);
  return true;
}

/** `signingKey`: the caller's own signingKey(a), when it has it (a derivation is curve work). */
export function signResult(a: SignAnswer, signingKeyOfA?: Uint8Array) {
  const pk = signingKeyOfA ?? signingKey(a);
  return {
    walletId: a.walletId,
    // The scheme the signature is in (key-type.ts): a client verifies it as that.
    keyType: DEFAULT_KEY_TYPE,
    digest: toHex(a.digest),
    path: a.path ?? null,
    publicKey: toHex(pk),
    address: ethAddress(pk),
    signature: signatureForms(a.sig),
    signers: a.signers,
    coordinator: a.coordinator,
  };
}
