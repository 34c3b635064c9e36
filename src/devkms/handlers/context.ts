/**
 * What every operation handler gets, and the checks most of them share: finding the key a
 * request names and asking its key policy whether the request may proceed.
 */
import type { AttestationVerifier } from "../attestation.ts";
import { accessDenied, KmsError, notFound } from "../errors.ts";
import { isKeyId, type KeyRecord, type KeyStore } from "../keystore.ts";
import { encryptionContextKey, evaluatePolicy, parsePolicy } from "../policy.ts";
import type { Recipient } from "../recipient.ts";
import type { SigV4Identity } from "../sigv4.ts";
import { LIMITS, requireString, type JsonObject } from "../../shared/wire/kms-json.ts";

export interface HandlerContext {
  store: KeyStore;
  verifyAttestation: AttestationVerifier;
  region: string;
  accountId: string;
  caller: SigV4Identity;
}

export type Handler = (ctx: HandlerContext, input: JsonObject) => JsonObject;

export const keyArn = (ctx: HandlerContext, keyId: string) =>
  `arn:aws:kms:${ctx.region}:${ctx.accountId}:key/${keyId}`;

/** A key id or key ARN. Aliases are not implemented, so they are reported as not found. */
export function findKey(ctx: HandlerContext, ref: string): KeyRecord {
  let keyId = ref;
  if (ref.startsWith("arn:")) {
    const prefix = `arn:aws:kms:${ctx.region}:${ctx.accountId}:key/`;
    if (!ref.startsWith(prefix)) throw notFound(`Key '${ref}' does not exist`);
    keyId = ref.slice(prefix.length);
  } else if (ref.startsWith("alias/")) {
    throw notFound(`Alias ${ref} is not found (the development KMS does not implement aliases).`);
  }
  const key = isKeyId(keyId) ? ctx.store.get(keyId) : undefined;
  if (!key) throw notFound(`Key '${keyArn(ctx, keyId.slice(0, 64))}' does not exist`);
  if (!key.enabled)
    throw new KmsError("DisabledException", `${keyArn(ctx, key.keyId)} is disabled.`);
  return key;
}

export const requireKey = (ctx: HandlerContext, input: JsonObject) =>
  findKey(ctx, requireString(input, "KeyId", LIMITS.keyId));

/**
 * Evaluate the key policy for `action`. The attested measurements of a Recipient become the
 * `kms:RecipientAttestation:*` condition keys and each pair of the request's encryption context
 * a `kms:EncryptionContext:<key>` condition key; absent ones are simply missing, so a statement
 * that requires them does not match and the request falls through to default deny.
 */
export function authorize(
  ctx: HandlerContext,
  key: KeyRecord,
  action: string,
  recipient?: Recipient,
  context: ReadonlyMap<string, string> = new Map(),
): void {
  const resource = keyArn(ctx, key.keyId);
  const keys = new Map(recipient?.conditionKeys ?? []);
  for (const [k, v] of context) keys.set(encryptionContextKey(k), v);
  const decision = evaluatePolicy(parsePolicy(key.policy), { action, resource, keys });
  if (decision === "allow") return;
  const who = `arn:aws:iam::${ctx.accountId}:user/${ctx.caller.accessKeyId}`;
  const why =
    decision === "explicit-deny"
      ? "with an explicit deny in a resource-based policy"
      : `because no resource-based policy allows the ${action} action`;
  throw accessDenied(
    `User: ${who} is not authorized to perform: ${action} on resource: ${resource} ${why}`,
  );
}

export function keyMetadata(ctx: HandlerContext, key: KeyRecord): JsonObject {
  return {
    AWSAccountId: ctx.accountId,
    KeyId: key.keyId,
    Arn: keyArn(ctx, key.keyId),
    CreationDate: key.createdAt,
    Enabled: key.enabled,
    Description: key.description,
    KeyUsage: "ENCRYPT_DECRYPT",
    KeyState: key.enabled ? "Enabled" : "Disabled",
    Origin: "AWS_KMS",
    KeyManager: "CUSTOMER",
    CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
    KeySpec: "SYMMETRIC_DEFAULT",
    EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
    MultiRegion: false,
  };
}
