/**
 * The fixed inputs of the pinned vectors, and the peer identity a vector's
 * key seeds stand for. Used by the generator; the test reads the seeds back
 * from peer-envelope.json and needs only `identityOf`.
 */
import { fromHex } from "../../src/shared/hex.ts";
import type { PeerIdentity } from "../../src/enclave/peer-attestation.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";

/** `n` bytes seed, seed + 7, seed + 14, ... (mod 256): recognisable in hex, never secret. */
export function fixedBytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + 7 * i) & 0xff);
}

export const FIXED = {
  sessionId: fixedBytes(32, 0x5e),
  /** The secp256k1 generator G, compressed (even y). */
  publicKey: fromHex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
  /** -G, compressed (odd y). */
  publicKeyOdd: fromHex("0379be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
  /** Channel-key secrets of parties 1 and 2 (test keys: published here on purpose). */
  peerSeeds: [
    { x25519Secret: fixedBytes(32, 0x11), ed25519Secret: fixedBytes(32, 0x21) },
    { x25519Secret: fixedBytes(32, 0x12), ed25519Secret: fixedBytes(32, 0x22) },
  ],
};

export const peerKeysOf = (party: number): PeerKeys => new PeerKeys(FIXED.peerSeeds[party - 1]!);

/** What verifyPeer would yield for these keys; a PeerSession reads only the two public keys. */
export function identityOf(keys: PeerKeys): PeerIdentity {
  return {
    pcr0: new Uint8Array(48),
    x25519Public: keys.x25519Public,
    ed25519Public: keys.ed25519Public,
    documentHash: new Uint8Array(32),
  };
}

export function peerVectorIdentities(): Map<number, PeerIdentity> {
  return new Map(FIXED.peerSeeds.map((_, k) => [k + 1, identityOf(peerKeysOf(k + 1))]));
}
