/** PutKeyPolicy and GetKeyPolicy. A key has exactly one policy, named "default", as in KMS. */
import { KmsError, notFound } from "../errors.ts";
import { evaluatePolicy, parsePolicy } from "../policy.ts";
import {
  LIMITS,
  optionalBoolean,
  optionalString,
  requireString,
} from "../../shared/wire/kms-json.ts";
import { authorize, keyArn, requireKey, type Handler } from "./context.ts";

const POLICY_NAME = "default";

function policyName(input: Record<string, unknown>): string {
  const name = optionalString(input, "PolicyName", 128) ?? POLICY_NAME;
  if (name !== POLICY_NAME)
    throw notFound(`Policy ${name} does not exist; a key has only the "default" policy`);
  return name;
}

/**
 * Parse a new policy and, like KMS's lockout safety check, refuse one that would stop callers
 * from ever changing it again (unless the caller explicitly bypasses the check).
 */
export function checkNewPolicy(
  policy: string,
  bypassLockoutCheck: boolean,
  resource: string,
): void {
  const parsed = parsePolicy(policy);
  if (bypassLockoutCheck) return;
  const decision = evaluatePolicy(parsed, {
    action: "kms:PutKeyPolicy",
    resource,
    keys: new Map(),
  });
  if (decision !== "allow") {
    throw new KmsError(
      "MalformedPolicyDocumentException",
      "The new key policy will not allow you to update the key policy in the future.",
    );
  }
}

export const putKeyPolicy: Handler = (ctx, input) => {
  const key = requireKey(ctx, input);
  policyName(input);
  authorize(ctx, key, "kms:PutKeyPolicy");
  const policy = requireString(input, "Policy", LIMITS.policy);
  checkNewPolicy(
    policy,
    optionalBoolean(input, "BypassPolicyLockoutSafetyCheck") === true,
    keyArn(ctx, key.keyId),
  );
  ctx.store.setPolicy(key.keyId, policy);
  return {};
};

export const getKeyPolicy: Handler = (ctx, input) => {
  const key = requireKey(ctx, input);
  const name = policyName(input);
  authorize(ctx, key, "kms:GetKeyPolicy");
  return { Policy: key.policy, PolicyName: name };
};
