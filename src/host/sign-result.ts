/**
 * The answer a client gets for a signature (docs/mqtt-api.md `sign` result), built in one place
 * for the coordinator that ran the ceremony and for a signer keeping it in case that coordinator
 * dies before answering (sign-outcomes-repo.ts): a resubmission then gets the same bytes either way.
 */
import { deriveChildPublicKey, ethAddress } from "../shared/public-key.ts";
import { toHex } from "../shared/hex.ts";
import { signatureForms, type Signature } from "../shared/signature.ts";
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

/** The child public key a signature under `path` verifies against (the root key without a path). */
export function signingKey(a: Pick<SignAnswer, "publicKey" | "chainCode" | "path">): Uint8Array {
  return a.path ? deriveChildPublicKey(a.publicKey, a.chainCode, a.path).publicKey : a.publicKey;
}

export function signResult(a: SignAnswer) {
  const pk = signingKey(a);
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
