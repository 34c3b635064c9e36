/**
 * Where a share's data key comes from, and the one way a sealed share is
 * opened. Sealing takes its data key only from a GenerateDataKey-with-
 * Recipient call this enclave made itself; opening only from its own
 * Decrypt-with-Recipient of the stored CiphertextBlob. Both calls carry an
 * encryption context this enclave builds, with its own node identity (PCR4,
 * from its own attestation document) in it and in the sealed share's
 * associated data, so a share is bound to the node whose enclave sealed it:
 * KMS's key policy releases a node's data keys only to that node's enclave,
 * and the blob's context binding refuses any other context.
 *
 * Opening fails in one way only (`unseal_failed`, one sentence) whatever
 * failed (KMS, the CMS, the RSA unwrap, AES-CBC, the data key's length,
 * AES-GCM, the share's decoding or its checks), and nothing is logged about
 * the cause (the enclave console is the host's). An earlier failure does not
 * return early: the steps after it still run, on a random key, up to and
 * including AES-GCM, the last step whose input a host can choose without
 * the data key.
 */
import { randomBytes } from "node:crypto";
import { bytesEqual } from "../attestation/verifier.ts";
import { KeyShare } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { AwsCredentials, EnclaveKms } from "./kms/kms-client.ts";
import type { RecipientKey } from "./recipient-key.ts";
import { DATA_KEY_BYTES, sealShare, unsealShare, type SealBinding } from "./seal.ts";

export const UNSEAL_FAILED_MESSAGE = "the sealed share could not be opened";
const unsealFailed = () => new EnclaveError("unseal_failed", UNSEAL_FAILED_MESSAGE);

/** What this enclave brings to every KMS call. */
export interface ShareKeyOwner {
  kms: EnclaveKms;
  recipient: RecipientKey;
  /** A fresh attestation document of this enclave whose public_key is `recipient`'s. */
  attest(): Uint8Array;
}

/**
 * The KMS encryption context of a share's data key, built only here:
 * {purpose, wallet, party, generation, node}. `binding.nodeId` is this
 * enclave's node identity (PCR4 hex), never a value from the host.
 */
export function shareEncryptionContext(binding: SealBinding): Record<string, string> {
  return {
    purpose: "tss-share",
    wallet: binding.walletId,
    party: String(binding.partyIndex),
    generation: String(binding.generation),
    node: binding.nodeId,
  };
}

export interface SealedWithKms {
  sealed: Uint8Array;
  ciphertextBlob: Uint8Array;
  kmsKeyId: string;
}

/**
 * Seals `shareBytes()` under a data key from this enclave's own
 * GenerateDataKey. `stillWanted` is asked after KMS answered (the share may
 * have been dropped meanwhile); `shareBytes` is called only then, and its
 * result is wiped here.
 */
export async function sealWithFreshKey(
  owner: ShareKeyOwner,
  binding: SealBinding,
  credentials: AwsCredentials,
  stillWanted: () => void,
  shareBytes: () => Uint8Array,
): Promise<SealedWithKms> {
  let generated;
  try {
    generated = await owner.kms.generateDataKey({
      context: shareEncryptionContext(binding),
      attestationDocument: owner.attest(),
      credentials,
    });
  } catch (e) {
    // KmsCallError's sentence names the operation and the SDK's error name only: public.
    throw new EnclaveError("kms_failed", (e as Error).message.slice(0, 200));
  }
  let dataKey: Uint8Array;
  try {
    dataKey = owner.recipient.dataKey(generated.ciphertextForRecipient);
  } catch {
    throw new EnclaveError("kms_failed", "KMS's data key does not unwrap for this enclave");
  }
  try {
    stillWanted();
    const bytes = shareBytes();
    try {
      const sealed = sealShare({ dataKey, shareBytes: bytes, binding });
      return { sealed, ciphertextBlob: generated.ciphertextBlob, kmsKeyId: generated.keyId };
    } finally {
      bytes.fill(0);
    }
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Opens a stored sealed share with the data key this enclave's own KMS
 * Decrypt yields, and checks that it is the share `binding` names. Any
 * failure: EnclaveError unseal_failed, always the same sentence.
 */
export async function openSealedShare(
  owner: ShareKeyOwner,
  args: {
    binding: SealBinding;
    sealed: Uint8Array;
    ciphertextBlob: Uint8Array;
    credentials: AwsCredentials;
  },
): Promise<KeyShare> {
  let ok = true;
  let forRecipient: Uint8Array = new Uint8Array(0);
  try {
    forRecipient = await owner.kms.decrypt({
      ciphertextBlob: args.ciphertextBlob,
      context: shareEncryptionContext(args.binding),
      attestationDocument: owner.attest(),
      credentials: args.credentials,
    });
  } catch {
    ok = false;
  }
  // CMS parse, RSA-OAEP unwrap, AES-CBC and the 32-byte length check, or a random key in their place.
  let dataKey: Uint8Array;
  try {
    dataKey = owner.recipient.dataKey(forRecipient);
  } catch {
    ok = false;
    dataKey = randomBytes(DATA_KEY_BYTES);
  }
  let plain: Uint8Array | null = null;
  try {
    plain = unsealShare({ dataKey, sealed: args.sealed, binding: args.binding });
  } catch {
    ok = false;
  } finally {
    dataKey.fill(0);
  }
  // Past AES-GCM the bytes are authenticated under a key only KMS and this
  // enclave hold: no host can steer a failure of the steps below.
  let share: KeyShare | null = null;
  if (plain) {
    try {
      share = KeyShare.fromBytes(plain);
    } catch {
      ok = false;
    } finally {
      plain.fill(0);
    }
  }
  if (
    share &&
    (share.generation !== args.binding.generation ||
      share.index !== args.binding.partyIndex ||
      !bytesEqual(share.publicKey, args.binding.publicKey))
  )
    ok = false;
  if (!ok || !share) {
    share?.free();
    throw unsealFailed();
  }
  return share;
}
