/**
 * Checks of what callers pass in, before anything is published: a request
 * that the nodes would refuse fails here with `bad_request` and a sentence
 * that names the argument. The CLI reuses these for its usage errors.
 */
import { randomBytes } from "node:crypto";
import { toHex } from "../shared/hex.ts";
import {
  DIGEST_BYTES,
  DIGEST_HEX,
  ID_RULE,
  isId,
  isNonHardenedPath,
} from "../shared/wire/patterns.ts";
import { CLIENT_ID_PATTERN } from "../shared/wire/topics.ts";
import { requestedKeyType, type KeyType } from "../shared/wire/key-type.ts";
import { TssError } from "./errors.ts";

/** requestId and walletId alphabet (docs/mqtt-api.md); re-exported for SDK users and the CLI. */
export { ID_PATTERN } from "../shared/wire/patterns.ts";

/** 128 random bits: ids from independent clients never collide, so none need coordinating. */
export function newRequestId(): string {
  return `req-${randomBytes(16).toString("hex")}`;
}

function bad(message: string): TssError {
  return new TssError("bad_request", message);
}

export function checkRequestId(id: unknown): string {
  if (!isId(id)) throw bad(`requestId must be ${ID_RULE}.`);
  return id;
}

export function checkWalletId(id: unknown): string {
  if (!isId(id)) throw bad(`walletId must be ${ID_RULE}.`);
  return id;
}

/** A request's key type: default "secp256k1-ecdsa"; one the SDK does not support is refused. */
export function checkKeyType(keyType: unknown): KeyType {
  const k = requestedKeyType(keyType);
  if (k instanceof Error) throw bad(`${k.message}.`);
  return k;
}

/** Lowercase hex of a 32-byte digest given as bytes or as 64 hex characters (0x optional). */
export function normalizeDigest(digest: unknown): string {
  if (digest instanceof Uint8Array) {
    if (digest.length !== DIGEST_BYTES)
      throw bad(`digest must be ${DIGEST_BYTES} bytes, not ${digest.length}.`);
    return toHex(digest);
  }
  if (typeof digest === "string") {
    const hex = digest.replace(/^0x/, "");
    if (DIGEST_HEX.test(hex)) return hex.toLowerCase();
  }
  throw bad("digest must be 32 bytes or 64 hex characters.");
}

/** A non-hardened BIP-32 path such as m/0/7. */
export function checkPath(path: unknown): string {
  if (!isNonHardenedPath(path)) {
    throw bad("path must look like m/0/7, with at most 32 non-hardened indices below 2^31.");
  }
  return path;
}

export function checkCount(n: unknown, name: "threshold" | "parties"): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 255)
    throw bad(`${name} must be a whole number from 1 to 255.`);
  return n;
}

/** A deadline in ms: positive, and small enough for setTimeout (which overflows above 2^31 - 1). */
export function checkTimeout(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1)
    throw bad("timeoutMs must be a positive number of milliseconds below 2^31.");
  return Math.ceil(ms);
}

/** Client ids become a topic level, so they may not contain topic separators or wildcards. */
export function checkClientId(id: unknown): string {
  if (typeof id !== "string" || !CLIENT_ID_PATTERN.test(id))
    throw bad("clientId must be 1-128 characters without '/', '+', '#' or control characters.");
  return id;
}
