/** Checks of the scalar fields the host sends; a failure is the host's fault (bad_request). */
import {
  MAX_ACCESS_KEY_ID_CHARS,
  MAX_SECRET_ACCESS_KEY_CHARS,
  MAX_SESSION_TOKEN_CHARS,
  type KmsCredentialFields,
} from "../shared/wire/enclave-ops.ts";
import { ID_RULE, isId } from "../shared/wire/patterns.ts";
import { EnclaveError } from "./errors.ts";
import type { AwsCredentials } from "./kms/kms-client.ts";

export function needInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new EnclaveError("bad_request", `${name} must be an integer in ${min}..${max}`);
  return v;
}

export function needWalletId(v: unknown): string {
  if (!isId(v)) throw new EnclaveError("bad_request", `walletId must be ${ID_RULE}`);
  return v;
}

/** Refuses any field outside `allowed`, so a host cannot slip in one the enclave would ignore (a data key, a node id). */
export function needOnlyFields(req: object, allowed: readonly string[], op: string): void {
  for (const k of Object.keys(req))
    if (!allowed.includes(k)) throw new EnclaveError("bad_request", `${op} has no field ${k}`);
}

export function needBytes(v: unknown, name: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max)
    throw new EnclaveError("bad_request", `${name} must be ${min}..${max} bytes`);
  return v;
}

/** Printable ASCII of 1..max characters: what AWS credentials are. */
function needToken(v: unknown, name: string, max: number): string {
  if (typeof v !== "string" || v.length < 1 || v.length > max || !/^[\x21-\x7e]+$/.test(v))
    throw new EnclaveError("bad_request", `${name} must be 1..${max} printable ASCII characters`);
  return v;
}

/** The per-call AWS credentials of a LOAD_SHARE / SEAL_SHARE request. */
export function needCredentials(req: KmsCredentialFields): AwsCredentials {
  const accessKeyId = needToken(req.accessKeyId, "accessKeyId", MAX_ACCESS_KEY_ID_CHARS);
  const secretAccessKey = needToken(
    req.secretAccessKey,
    "secretAccessKey",
    MAX_SECRET_ACCESS_KEY_CHARS,
  );
  if (req.sessionToken === undefined) return { accessKeyId, secretAccessKey };
  const sessionToken = needToken(req.sessionToken, "sessionToken", MAX_SESSION_TOKEN_CHARS);
  return { accessKeyId, secretAccessKey, sessionToken };
}
