/**
 * Reading fields of a KMS JSON 1.1 request body. Every value arrives from the network, so each
 * accessor checks type and size and answers with a ValidationException naming the field.
 * Blobs travel as base64 text (the awsJson1_1 convention for `blob` members).
 *
 * Shape (AWS KMS API, protocol awsJson1_1): POST / with `X-Amz-Target: TrentService.<Operation>`
 * and `Content-Type: application/x-amz-json-1.1`; the body is one JSON object of the operation's
 * members, e.g. for GenerateDataKey with an attested recipient:
 *
 *   {"KeyId": "alias/tss", "KeySpec": "AES_256",
 *    "EncryptionContext": {"purpose": "tss-share", "wallet": "...", "node": "...", "generation": "0"},
 *    "Recipient": {"AttestationDocument": "<base64>", "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}
 *
 * Bounds: LIMITS below (KMS's own quotas where KMS defines one: 4096-byte plaintext, 6144-byte
 * ciphertext blob, 8192 bytes of encryption context); a base64 field's text length is checked
 * before it is decoded.
 */
import { KmsError, validation } from "../../devkms/errors.ts";

export type JsonObject = Record<string, unknown>;

/** KMS limits: Encrypt plaintext 4096 bytes, ciphertext blobs 6144 bytes, encryption context 8192 bytes. */
export const LIMITS = {
  plaintext: 4096,
  ciphertextBlob: 6144,
  encryptionContextBytes: 8192,
  attestationDocument: 16 * 1024,
  keyId: 2048,
  description: 8192,
  policy: 32 * 1024,
} as const;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function asObject(v: unknown, what: string): JsonObject {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw validation(`${what} must be a JSON object`);
  return v as JsonObject;
}

export function optionalString(o: JsonObject, field: string, max: number): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw validation(`${field} must be a string`);
  if (v.length > max) throw validation(`${field} must be at most ${max} characters`);
  return v;
}

export function requireString(o: JsonObject, field: string, max: number): string {
  const v = optionalString(o, field, max);
  if (v === undefined || v.length === 0) throw validation(`${field} is required`);
  return v;
}

export function optionalBoolean(o: JsonObject, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw validation(`${field} must be a boolean`);
  return v;
}

export function optionalInteger(
  o: JsonObject,
  field: string,
  min: number,
  max: number,
): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw validation(`${field} must be an integer between ${min} and ${max}`);
  }
  return v;
}

export function decodeBase64(v: unknown, field: string, maxBytes: number): Uint8Array {
  if (typeof v !== "string") throw validation(`${field} must be base64 text`);
  // Checked before decoding so an oversized field costs nothing.
  if (v.length > Math.ceil(maxBytes / 3) * 4)
    throw validation(`${field} must be at most ${maxBytes} bytes`);
  if (!BASE64.test(v)) throw new KmsError("SerializationException", `${field} is not valid base64`);
  const bytes = new Uint8Array(Buffer.from(v, "base64"));
  if (bytes.length > maxBytes) throw validation(`${field} must be at most ${maxBytes} bytes`);
  return bytes;
}

export function requireBlob(o: JsonObject, field: string, maxBytes: number): Uint8Array {
  const v = o[field];
  if (v === undefined || v === null) throw validation(`${field} is required`);
  const bytes = decodeBase64(v, field, maxBytes);
  if (bytes.length === 0) throw validation(`${field} must not be empty`);
  return bytes;
}

export const encodeBase64 = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");

/** Encryption context: a flat map of non-empty strings, 8 KiB at most in total. */
export function encryptionContext(o: JsonObject): Map<string, string> {
  const v = o.EncryptionContext;
  const out = new Map<string, string>();
  if (v === undefined || v === null) return out;
  const ctx = asObject(v, "EncryptionContext");
  let size = 0;
  for (const [k, val] of Object.entries(ctx)) {
    if (typeof val !== "string")
      throw validation(`EncryptionContext value for '${k.slice(0, 64)}' must be a string`);
    if (k.length === 0) throw validation("EncryptionContext keys must not be empty");
    size += Buffer.byteLength(k) + Buffer.byteLength(val);
    if (size > LIMITS.encryptionContextBytes)
      throw validation(`EncryptionContext must be at most ${LIMITS.encryptionContextBytes} bytes`);
    out.set(k, val);
  }
  return out;
}

/** DryRun would need a second execution path; refusing it beats silently performing the operation. */
export function refuseDryRun(o: JsonObject): void {
  if (optionalBoolean(o, "DryRun") === true)
    throw new KmsError(
      "UnsupportedOperationException",
      "DryRun is not supported by the development KMS",
    );
}
