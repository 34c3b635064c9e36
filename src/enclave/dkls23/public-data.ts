/** What the core computes from public data only: package fields, public BIP-32 derivation, Ethereum addresses. */
import * as wasm from "./wasm/dkls23.js";
import { call } from "./core.ts";

export interface PackageInfo {
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  threshold: number;
  parties: number;
  generation: number;
}

export function packageInfo(publicPackage: Uint8Array): PackageInfo {
  const b = call(() => wasm.packageInfo(publicPackage));
  return {
    publicKey: b.slice(0, 33),
    chainCode: b.slice(33, 65),
    threshold: b[65]!,
    parties: b[66]!,
    generation: new DataView(b.buffer, b.byteOffset).getUint32(67),
  };
}

/** Child public key and chain code along a non-hardened path, from public data only. */
export function derivePublicKey(
  publicPackage: Uint8Array,
  path: string,
): { publicKey: Uint8Array; chainCode: Uint8Array } {
  const b = call(() => wasm.derivePublic(publicPackage, path));
  return { publicKey: b.slice(0, 33), chainCode: b.slice(33, 65) };
}

/** EIP-55 checksummed Ethereum address of a compressed or uncompressed key. */
export function ethAddress(publicKey: Uint8Array): string {
  return call(() => wasm.ethAddress(publicKey));
}
