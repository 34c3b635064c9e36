/**
 * Checks of what callers pass in, before anything is published: a request
 * that the nodes would refuse fails here with `bad_request` and a sentence
 * that names the argument. The CLI reuses these for its usage errors.
 */
import { randomBytes } from "node:crypto";
import { toHex } from "../shared/hex.ts";
import { TssError } from "./errors.ts";

/** requestId and walletId alphabet (docs/mqtt-api.md). */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const PATH_PATTERN = /^m(\/\d{1,10}){0,32}$/;
const HARDENED = 2 ** 31;

/** 128 random bits: ids from independent clients never collide, so none need coordinating. */
export function newRequestId(): string {
  return `req-${randomBytes(16).toString("hex")}`;
}

function bad(message: string): TssError {
  return new TssError("bad_request", message);
}

export function checkRequestId(id: unknown): string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) throw bad("requestId must be 1-128 characters of [A-Za-z0-9._:-].");
  return id;
}

export function checkWalletId(id: unknown): string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) throw bad("walletId must be 1-128 characters of [A-Za-z0-9._:-].");
  return id;
}

/** Lowercase hex of a 32-byte digest given as bytes or as 64 hex characters (0x optional). */
export function normalizeDigest(digest: unknown): string {
  if (digest instanceof Uint8Array) {
    if (digest.length !== 32) throw bad(`digest must be 32 bytes, not ${digest.length}.`);
    return toHex(digest);
  }
  if (typeof digest === "string" && /^(0x)?[0-9a-fA-F]{64}$/.test(digest)) return digest.replace(/^0x/, "").toLowerCase();
  throw bad("digest must be 32 bytes or 64 hex characters.");
}

/** A non-hardened BIP-32 path such as m/0/7. */
export function checkPath(path: unknown): string {
  if (typeof path !== "string" || !PATH_PATTERN.test(path) || path.split("/").slice(1).some((i) => Number(i) >= HARDENED)) {
    throw bad("path must look like m/0/7, with at most 32 non-hardened indices below 2^31.");
  }
  return path;
}

export function checkCount(n: unknown, name: "threshold" | "parties"): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 255) throw bad(`${name} must be a whole number from 1 to 255.`);
  return n;
}

/** A deadline in ms: positive, and small enough for setTimeout (which overflows above 2^31 - 1). */
export function checkTimeout(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1) throw bad("timeoutMs must be a positive number of milliseconds below 2^31.");
  return Math.ceil(ms);
}

/** Client ids become a topic level, so they may not contain topic separators or wildcards. */
export function checkClientId(id: unknown): string {
  if (typeof id !== "string" || !/^[^/+#\u0000-\u001f]{1,128}$/.test(id)) throw bad("clientId must be 1-128 characters without '/', '+', '#' or control characters.");
  return id;
}
