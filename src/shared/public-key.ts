/** Ethereum address of a secp256k1 public key, computed here so results can be checked without the wasm core. */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex } from "../shared/hex.ts";

/** EIP-55 checksummed address; throws on bytes that are not a curve point. */
export function ethAddress(publicKey: Uint8Array): string {
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
