/**
 * GenerateRandom. Not tied to a KMS key, so no key policy applies (KMS authorises it through IAM
 * alone); with a Recipient the attestation document must still verify before bytes are released.
 */
import { randomBytes } from "node:crypto";
import { buildCiphertextForRecipient } from "../cms-builder.ts";
import { KmsError, validation } from "../errors.ts";
import { resolveRecipient } from "../recipient.ts";
import { encodeBase64, optionalInteger } from "../../shared/wire/kms-json.ts";
import type { Handler } from "./context.ts";

export const generateRandom: Handler = (ctx, input) => {
  if (input.CustomKeyStoreId !== undefined)
    throw new KmsError("UnsupportedOperationException", "custom key stores are not supported");
  const length = optionalInteger(input, "NumberOfBytes", 1, 1024);
  if (length === undefined) throw validation("NumberOfBytes is required");
  const recipient = resolveRecipient(input, ctx.verifyAttestation);
  const random = new Uint8Array(randomBytes(length));
  try {
    if (recipient)
      return {
        CiphertextForRecipient: encodeBase64(buildCiphertextForRecipient(recipient.spki, random)),
      };
    return { Plaintext: encodeBase64(random) };
  } finally {
    random.fill(0);
  }
};
