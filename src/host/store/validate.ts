/** Input checks shared by the repositories, so bad values fail with a sentence before any SQL runs. */
import { StoreError } from "./errors.ts";

export const MAX_ID_CHARS = 256;
export const MAX_U32 = 0xffff_ffff;
/** Party indices are one byte on the wire. */
export const MAX_PARTY_INDEX = 255;

const invalid = (msg: string) => new StoreError("invalid", msg);

/** Wallet, node and request ids: non-empty, bounded, no control characters. */
export function checkId(value: unknown, what: string, maxChars: number = MAX_ID_CHARS): string {
  if (typeof value !== "string" || value.length === 0 || value.length > maxChars) {
    throw invalid(`${what} must be a string of 1..${maxChars} characters`);
  }
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw invalid(`${what} must not contain control characters`);
  return value;
}

export function checkInt(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

export const checkGeneration = (value: unknown, what = "generation") =>
  checkInt(value, 0, MAX_U32, what);
export const checkPartyIndex = (value: unknown) =>
  checkInt(value, 1, MAX_PARTY_INDEX, "party index");

export function checkBytes(value: unknown, what: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
  if (value.length < min || value.length > max)
    throw invalid(`${what} must be ${min}..${max} bytes, got ${value.length}`);
  return value;
}

export function checkPublicKey(value: unknown): Uint8Array {
  const pk = checkBytes(value, "public key", 33, 33);
  if (pk[0] !== 0x02 && pk[0] !== 0x03)
    throw invalid("public key must be a compressed SEC1 point (prefix 02 or 03)");
  return pk;
}

/** Ceremony ids are the 32-byte session id in lowercase hex. */
export function checkSessionHex(value: unknown, what = "ceremony id"): string {
  if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value))
    throw invalid(`${what} must be 64 lowercase hex characters (a 32-byte session id)`);
  return value;
}

export function checkTimestamp(value: unknown): number {
  return checkInt(value, 0, Number.MAX_SAFE_INTEGER, "timestamp (Unix milliseconds)");
}

/**
 * Free text (error sentences, reasons) bound for the database: cut to `maxChars` and with long
 * opaque runs replaced, so a key or share pasted into a message by mistake (hex from 16 bytes,
 * base64 from 30) is not persisted. Identifiers the schema stores in their own columns are not
 * free text and are not passed through this.
 */
export function scrubText(text: string, maxChars: number): string {
  // Redact before the final cut, so a secret straddling the limit cannot survive as a shorter run.
  return text
    .slice(0, maxChars * 2)
    .replace(/[0-9a-fA-F]{32,}/g, "[redacted]")
    .replace(/[A-Za-z0-9+/_-]{40,}={0,2}/g, "[redacted]")
    .slice(0, maxChars);
}
