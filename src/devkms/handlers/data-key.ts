/** GenerateDataKey: a fresh random key, returned sealed under the KMS key and either in clear or to an attested Recipient. */
import { randomBytes } from "node:crypto";
import { sealBlob } from "../ciphertext-blob.ts";
import { buildCiphertextForRecipient } from "../cms-builder.ts";
import { validation } from "../errors.ts";
import { resolveRecipient } from "../recipient.ts";
import {
  encodeBase64,
  encryptionContext,
  optionalInteger,
  optionalString,
  refuseDryRun,
  type JsonObject,
} from "../../shared/wire/kms-json.ts";
import { authorize, keyArn, requireKey, type Handler } from "./context.ts";

const KEY_SPEC_BYTES: Record<string, number> = { AES_256: 32, AES_128: 16 };

function dataKeyLength(input: JsonObject): number {
  const spec = optionalString(input, "KeySpec", 16);
  const bytes = optionalInteger(input, "NumberOfBytes", 1, 1024);
  if ((spec === undefined) === (bytes === undefined))
    throw validation("Please specify either KeySpec or NumberOfBytes, but not both.");
  if (bytes !== undefined) return bytes;
  // hasOwn: KeySpec "__proto__" or "constructor" must not find Object.prototype's members.
  const n = Object.hasOwn(KEY_SPEC_BYTES, spec!) ? KEY_SPEC_BYTES[spec!] : undefined;
  if (n === undefined)
    throw validation(`KeySpec must be one of ${Object.keys(KEY_SPEC_BYTES).join(", ")}`);
  return n;
}

export const generateDataKey: Handler = (ctx, input) => {
  refuseDryRun(input);
  const key = requireKey(ctx, input);
  const length = dataKeyLength(input);
  const context = encryptionContext(input);
  const recipient = resolveRecipient(input, ctx.verifyAttestation);
  authorize(ctx, key, "kms:GenerateDataKey", recipient, context);

  const dataKey = new Uint8Array(randomBytes(length));
  try {
    const out = {
      CiphertextBlob: encodeBase64(sealBlob(key.keyId, key.material, dataKey, context)),
      KeyId: keyArn(ctx, key.keyId),
    };
    if (recipient)
      return {
        ...out,
        CiphertextForRecipient: encodeBase64(buildCiphertextForRecipient(recipient.spki, dataKey)),
      };
    return { ...out, Plaintext: encodeBase64(dataKey) };
  } finally {
    dataKey.fill(0);
  }
};
