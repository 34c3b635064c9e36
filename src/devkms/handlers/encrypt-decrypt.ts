/** Encrypt and Decrypt with a symmetric key; Decrypt can answer to an attested Recipient instead of in clear. */
import { blobKeyId, openBlob, sealBlob } from "../ciphertext-blob.ts";
import { buildCiphertextForRecipient } from "../cms-builder.ts";
import { invalidCiphertext, KmsError, notFound, validation } from "../errors.ts";
import { isKeyId } from "../keystore.ts";
import { resolveRecipient } from "../recipient.ts";
import {
  encodeBase64,
  encryptionContext,
  LIMITS,
  optionalString,
  refuseDryRun,
  requireBlob,
  type JsonObject,
} from "../../shared/wire/kms-json.ts";
import { authorize, findKey, keyArn, requireKey, type Handler } from "./context.ts";

const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";

function checkAlgorithm(input: JsonObject): void {
  const alg = optionalString(input, "EncryptionAlgorithm", 64);
  if (alg !== undefined && alg !== SYMMETRIC_DEFAULT)
    throw validation(`EncryptionAlgorithm ${alg} is not valid for a symmetric key`);
}

export const encrypt: Handler = (ctx, input) => {
  refuseDryRun(input);
  checkAlgorithm(input);
  const key = requireKey(ctx, input);
  const plaintext = requireBlob(input, "Plaintext", LIMITS.plaintext);
  const context = encryptionContext(input);
  authorize(ctx, key, "kms:Encrypt", undefined, context);
  const blob = sealBlob(key.keyId, key.material, plaintext, context);
  plaintext.fill(0);
  return {
    CiphertextBlob: encodeBase64(blob),
    KeyId: keyArn(ctx, key.keyId),
    EncryptionAlgorithm: SYMMETRIC_DEFAULT,
  };
};

export const decrypt: Handler = (ctx, input) => {
  refuseDryRun(input);
  checkAlgorithm(input);
  const blob = requireBlob(input, "CiphertextBlob", LIMITS.ciphertextBlob);
  const context = encryptionContext(input);
  const blobKey = blobKeyId(blob);
  if (!isKeyId(blobKey)) throw invalidCiphertext();
  const key = ctx.store.get(blobKey);
  if (!key) throw notFound(`Key '${keyArn(ctx, blobKey)}' does not exist`);
  const requested = optionalString(input, "KeyId", LIMITS.keyId);
  if (requested !== undefined && findKey(ctx, requested).keyId !== key.keyId) {
    throw new KmsError(
      "IncorrectKeyException",
      "The key ID in the request does not identify a CMK that can perform this operation.",
    );
  }
  const recipient = resolveRecipient(input, ctx.verifyAttestation);
  authorize(ctx, key, "kms:Decrypt", recipient, context);

  const plaintext = openBlob(blob, key.material, context);
  try {
    const base = { KeyId: keyArn(ctx, key.keyId), EncryptionAlgorithm: SYMMETRIC_DEFAULT };
    if (recipient)
      return {
        ...base,
        CiphertextForRecipient: encodeBase64(
          buildCiphertextForRecipient(recipient.spki, plaintext),
        ),
      };
    return { ...base, Plaintext: encodeBase64(plaintext) };
  } finally {
    plaintext.fill(0);
  }
};
