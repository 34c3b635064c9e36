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

/** Independent verification with @noble/curves: valid, low-S, and recovers to `publicKey`. */
export function verifySignature(
  publicKey: Uint8Array,
  digest: Uint8Array,
  sig: Signature,
): boolean {
  const compact = new Uint8Array(64);
  compact.set(sig.r, 0);
  compact.set(sig.s, 32);
  if (
    !secp256k1.verify(compact, digest, publicKey, { prehash: false, lowS: true, format: "compact" })
  )
    return false;
  const recovered = secp256k1.Signature.fromBytes(compact, "compact")
    .addRecoveryBit(sig.recoveryId)
    .recoverPublicKey(digest);
  return (
    toHex(recovered.toBytes(true)) === toHex(secp256k1.Point.fromBytes(publicKey).toBytes(true))
  );
}
