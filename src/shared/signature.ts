/** ECDSA signature forms handed to clients. */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { toHex } from "./hex.ts";

export interface Signature {
  r: Uint8Array;
  /** Low-S. */
  s: Uint8Array;
  /** 0 or 1 (y parity of R; x overflow never happens in practice and is refused). */
  recoveryId: number;
}

export interface SignatureForms {
  r: string;
  s: string;
  recoveryId: number;
  /** r || s || v with v = 27 + recovery id: what Ethereum's ecrecover takes. */
  ethereum: string;
  der: string;
}

export function signatureForms(sig: Signature): SignatureForms {
  const compact = new Uint8Array(64);
  compact.set(sig.r, 0);
  compact.set(sig.s, 32);
  const der = secp256k1.Signature.fromBytes(compact, "compact").toBytes("der");
  const eth = new Uint8Array(65);
  eth.set(compact, 0);
  eth[64] = 27 + sig.recoveryId;
  return {
    r: toHex(sig.r),
    s: toHex(sig.s),
    recoveryId: sig.recoveryId,
    ethereum: toHex(eth),
    der: toHex(der),
  };
}

/**
 * Independent verification with @noble/curves: r and s in [1, n-1], low-S, recovery id 0 or 1,
 * and the key recovered from (r, s, recovery id, digest) is `publicKey`. Never throws.
 *
 * One recovery instead of a verification plus a recovery (half the curve work, on every host's
 * signing path): recovery computes Q' = r⁻¹(sR − eG) from the point R with x = r and the
 * parity the recovery id names; Q' = publicKey means sR = eG + r·publicKey, i.e.
 * R = s⁻¹(eG + r·publicKey), whose x is r: exactly the ECDSA verification equation, so a
 * signature this accepts also verifies (and the reverse, for the recovery id that names R's
 * parity). test/shared/signature.test.ts checks agreement with noble's verify-and-recover.
 */
export function verifySignature(
  publicKey: Uint8Array,
  digest: Uint8Array,
  sig: Signature,
): boolean {
  // An x-coordinate of R at or above n (ids 2 and 3) has probability ~2^-128 and is refused.
  if (sig.recoveryId !== 0 && sig.recoveryId !== 1) return false;
  if (publicKey.length !== 33 && publicKey.length !== 65) return false;
  let recovered: Uint8Array;
  try {
    if (sig.r.length !== 32 || sig.s.length !== 32) return false;
    const compact = new Uint8Array(64);
    compact.set(sig.r, 0);
    compact.set(sig.s, 32);
    // fromBytes refuses r or s outside [1, n-1]; recovery refuses an r that is no point's x.
    const parsed = secp256k1.Signature.fromBytes(compact, "compact");
    if (parsed.hasHighS()) return false;
    recovered = parsed
      .addRecoveryBit(sig.recoveryId)
      .recoverPublicKey(digest)
      .toBytes(publicKey.length === 33);
  } catch {
    return false;
  }
  // Byte equality with the key's own encoding: equal bytes are a valid point, so the key needs no decoding.
  let diff = 0;
  for (let i = 0; i < recovered.length; i++) diff |= recovered[i]! ^ publicKey[i]!;
  return diff === 0;
}
