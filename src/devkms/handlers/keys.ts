/** CreateKey and DescribeKey. Only symmetric ENCRYPT_DECRYPT keys exist in the stand-in. */
import { KmsError, validation } from "../errors.ts";
import { defaultKeyPolicy } from "../policy.ts";
import {
  LIMITS,
  optionalBoolean,
  optionalString,
  refuseDryRun,
} from "../../shared/wire/kms-json.ts";
import { checkNewPolicy } from "./key-policy.ts";
import { keyArn, keyMetadata, requireKey, type Handler } from "./context.ts";

function requireDefault(value: string | undefined, field: string, only: string): void {
  if (value !== undefined && value !== only) {
    throw new KmsError(
      "UnsupportedOperationException",
      `${field} ${value} is not supported by the development KMS (only ${only})`,
    );
  }
}

export const createKey: Handler = (ctx, input) => {
  requireDefault(optionalString(input, "KeyUsage", 64), "KeyUsage", "ENCRYPT_DECRYPT");
  requireDefault(optionalString(input, "KeySpec", 64), "KeySpec", "SYMMETRIC_DEFAULT");
  requireDefault(
    optionalString(input, "CustomerMasterKeySpec", 64),
    "CustomerMasterKeySpec",
    "SYMMETRIC_DEFAULT",
  );
  requireDefault(optionalString(input, "Origin", 64), "Origin", "AWS_KMS");
  if (optionalBoolean(input, "MultiRegion") === true)
    throw new KmsError("UnsupportedOperationException", "Multi-Region keys are not supported");
  if (input.CustomKeyStoreId !== undefined || input.XksKeyId !== undefined) {
    throw new KmsError("UnsupportedOperationException", "custom key stores are not supported");
  }
  const description = optionalString(input, "Description", LIMITS.description) ?? "";
  const explicit = optionalString(input, "Policy", LIMITS.policy);
  if (explicit !== undefined && explicit.length === 0) throw validation("Policy must not be empty");
  const policy = explicit ?? defaultKeyPolicy(ctx.accountId);
  // The key id does not exist yet, so a policy naming its own ARN cannot match; KMS users write "*".
  checkNewPolicy(
    policy,
    optionalBoolean(input, "BypassPolicyLockoutSafetyCheck") === true,
    keyArn(ctx, "new-key"),
  );
  const key = ctx.store.create({ description, policy });
  return { KeyMetadata: keyMetadata(ctx, key) };
};

export const describeKey: Handler = (ctx, input) => {
  refuseDryRun(input);
  const key = requireKey(ctx, input);
  return { KeyMetadata: keyMetadata(ctx, key) };
};
