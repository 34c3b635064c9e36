/**
 * Public-key arithmetic that host, client and CLI need without the DKLs23
 * wasm core: a wallet's non-hardened BIP-32 child key from its group public
 * key and chain code, and the EIP-55 Ethereum address of a key. The enclave's
 * core derives the same child keys from a share (test/host/public-key.test.ts
 * and the core's BIP-32 test check the two agree).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
// @scure/bip32: audited BIP-32 by the @noble authors, already the core tests' reference implementation.
import { HDKey } from "@scure/bip32";
import { toHex } from "./hex.ts";
import { isNonHardenedPath } from "./wire/patterns.ts";

export const CHAIN_CODE_BYTES = 32;
export const COMPRESSED_KEY_BYTES = 33;

/** A derivation the host cannot do: a bad path, key or chain code. */
export class DerivationError extends Error {
  override name = "DerivationError";
  readonly code = "bad_request";
}

/**
 * Child public key and chain code along a non-hardened path ("m", "m/0/7").
 * Hardened steps need the private key, so they are refused, as are paths
 * outside PATH_PATTERN.
 */
export function deriveChildPublicKey(
  publicKey: Uint8Array,
  chainCode: Uint8Array,
  path: string,
): { publicKey: Uint8Array; chainCode: Uint8Array } {
  if (!isNonHardenedPath(path))
    throw new DerivationError(
      `derivation path ${JSON.stringify(String(path).slice(0, 80))} is not a non-hardened path like m/0/7`,
    );
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== COMPRESSED_KEY_BYTES)
    throw new DerivationError(`public key must be ${COMPRESSED_KEY_BYTES} bytes (compressed SEC1)`);
  if (!(chainCode instanceof Uint8Array) || chainCode.length !== CHAIN_CODE_BYTES)
    throw new DerivationError(`chain code must be ${CHAIN_CODE_BYTES} bytes`);
  let child: HDKey;
  try {
    child = new HDKey({ publicKey, chainCode }).derive(path);
  } catch (e) {
    throw new DerivationError(`cannot derive ${path}: ${(e as Error).message}`);
  }
  return { publicKey: child.publicKey!, chainCode: child.chainCode! };
}

/**
 * Addresses already computed, by key bytes: a host builds the same wallet's address for every
 * signature's answer (a point decompression and two Keccak hashes each). Bounded, oldest out;
 * only keys that are points get in.
 */
const addresses = new Map<string, string>();
const MAX_ADDRESSES = 1024;

/** EIP-55 checksummed address; throws on bytes that are not a curve point. */
export function ethAddress(publicKey: Uint8Array): string {
  const key = toHex(publicKey);
  const known = addresses.get(key);
  if (known !== undefined) return known;
  const address = computeEthAddress(publicKey);
  addresses.set(key, address);
  if (addresses.size > MAX_ADDRESSES) addresses.delete(addresses.keys().next().value!);
  return address;
}

function computeEthAddress(publicKey: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
  const hex = toHex(keccak_256(uncompressed.subarray(1)).subarray(12));
  const checksum = toHex(keccak_256(new TextEncoder().encode(hex)));
  let out = "0x";
  for (let i = 0; i < hex.length; i++) {
    const c = hex[i]!;
    out += parseInt(checksum[i]!, 16) >= 8 ? c.toUpperCase() : c;
  }
  return out;
}
