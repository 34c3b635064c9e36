/**
 * The key types a wallet can have, named on the wire (docs/mqtt-api.md "Key types"): every
 * wallet answer carries `keyType`, and a request that creates or uses a wallet may name one.
 * Only threshold ECDSA over secp256k1 exists today. Naming it anyway lets another curve or
 * scheme be added later without a client misreading its keys and signatures as secp256k1 ones:
 * a client refuses an answer whose key type it does not know, and a node refuses a request for
 * a key type it does not support.
 */

export const KEY_TYPES = ["secp256k1-ecdsa"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** What a wallet is when nothing names its key type (every wallet made so far). */
export const DEFAULT_KEY_TYPE: KeyType = "secp256k1-ecdsa";

export const isKeyType = (v: unknown): v is KeyType =>
  typeof v === "string" && (KEY_TYPES as readonly string[]).includes(v);

/** For error messages: the supported key types, quoted. */
export const KEY_TYPES_RULE = `one of ${KEY_TYPES.map((k) => `"${k}"`).join(", ")}`;

/**
 * A request's optional `keyType`: absent means DEFAULT_KEY_TYPE; a value that is not a
 * supported key type is an error whose message names the supported ones (the caller turns it
 * into `bad_request` or an argument error).
 */
export function requestedKeyType(v: unknown): KeyType | Error {
  if (v === undefined) return DEFAULT_KEY_TYPE;
  if (isKeyType(v)) return v;
  const shown = typeof v === "string" ? `"${v.slice(0, 64)}"` : typeof v;
  return new Error(`keyType ${shown} is not supported: it must be ${KEY_TYPES_RULE}`);
}

/**
 * A wallet or signature answer (one with a `publicKey`) stored before answers named their key
 * type, as a repeated request id's earlier result: answered as now, with DEFAULT_KEY_TYPE, which
 * every such wallet is. Anything else, and an answer that names a key type, is left as it is.
 */
export function withKeyType<T>(answer: T): T {
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) return answer;
  return "publicKey" in answer && !("keyType" in answer)
    ? { ...answer, keyType: DEFAULT_KEY_TYPE }
    : answer;
}
