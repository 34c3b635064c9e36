/**
 * Text patterns that cross process boundaries, defined once. Every check of a
 * wallet id, request id, node id, digest, derivation path or error code in
 * host, enclave, client and CLI uses these.
 *
 * | pattern        | form                                                  |
 * |----------------|-------------------------------------------------------|
 * | ID_PATTERN     | wallet and request ids: 1-128 of [A-Za-z0-9._:-]      |
 * | NODE_ID_PATTERN| node ids (also an MQTT topic level): 1-64 of [A-Za-z0-9._:-] |
 * | DIGEST_HEX     | a 32-byte digest as 64 hex characters                 |
 * | ERROR_CODE     | lowercase error codes: [a-z][a-z0-9_]{0,63}           |
 * | PATH_PATTERN   | non-hardened BIP-32 path: m(/index)*, at most 32 levels, each < 2^31 |
 */

export const MAX_ID_LEN = 128;
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const ID_RULE = "1-128 characters of [A-Za-z0-9._:-]";

export const MAX_NODE_ID_LEN = 64;
/** Node ids become topic levels, so they must not contain "/", "+" or "#". */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const NODE_ID_RULE = "1-64 characters of [A-Za-z0-9._:-]";

export const DIGEST_BYTES = 32;
export const DIGEST_HEX = /^[0-9a-fA-F]{64}$/;

export const ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/;

/** Non-hardened BIP-32 derivation: each index below 2^31. */
export const MAX_PATH_DEPTH = 32;
export const PATH_PATTERN = /^m(\/\d{1,10}){0,32}$/;
export const HARDENED_INDEX = 2 ** 31;
/** True for a path of PATH_PATTERN's form whose every index is below HARDENED_INDEX. */
export const isNonHardenedPath = (p: unknown): p is string =>
  typeof p === "string" &&
  PATH_PATTERN.test(p) &&
  p
    .split("/")
    .slice(1)
    .every((i) => Number(i) < HARDENED_INDEX);

export const isId = (s: unknown): s is string => typeof s === "string" && ID_PATTERN.test(s);
export const isNodeId = (s: unknown): s is string =>
  typeof s === "string" && NODE_ID_PATTERN.test(s);
