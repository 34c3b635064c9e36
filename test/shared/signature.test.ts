/**
 * verifySignature is one public-key recovery (src/shared/signature.ts); it must accept exactly
 * what the earlier check did: noble's low-S verification plus a recovery that gives the key.
 * That earlier check is kept here as the reference (a throw counts as "refused"), and both run
 * on valid signatures and on crafted edge cases.
 */
import { describe, expect, it } from "vitest";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { type Signature, verifySignature } from "../../src/shared/signature.ts";
import { toHex } from "../../src/shared/hex.ts";

const N = secp256k1.Point.CURVE().n;
const P = secp256k1.Point.CURVE().p;

function reference(publicKey: Uint8Array, digest: Uint8Array, sig: Signature): boolean {
  try {
    const compact = new Uint8Array(64);
    compact.set(sig.r, 0);
    compact.set(sig.s, 32);
    if (
      !secp256k1.verify(compact, digest, publicKey, {
        prehash: false,
        lowS: true,
        format: "compact",
      })
    )
      return false;
    const recovered = secp256k1.Signature.fromBytes(compact, "compact")
      .addRecoveryBit(sig.recoveryId)
      .recoverPublicKey(digest);
    return (
      toHex(recovered.toBytes(true)) === toHex(secp256k1.Point.fromBytes(publicKey).toBytes(true))
    );
  } catch {
    return false;
  }
}

const be32 = (x: bigint) => {
  const b = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
};
const num = (b: Uint8Array) => BigInt(`0x${toHex(b) || "0"}`);

/** A deterministic key and digest from a seed byte. */
function fixture(seed: number) {
  const sk = new Uint8Array(32).fill(seed);
  const digest = new Uint8Array(32).map((_, i) => (seed * 31 + i * 7) & 0xff);
  const rec = secp256k1.sign(digest, sk, { prehash: false, format: "recovered" });
  const sig: Signature = { r: rec.slice(1, 33), s: rec.slice(33, 65), recoveryId: rec[0]! };
  return {
    sk,
    digest,
    sig,
    compressed: secp256k1.getPublicKey(sk, true),
    uncompressed: secp256k1.getPublicKey(sk, false),
  };
}

function agree(pk: Uint8Array, digest: Uint8Array, sig: Signature, expected: boolean) {
  expect(reference(pk, digest, sig)).toBe(expected);
  expect(verifySignature(pk, digest, sig)).toBe(expected);
}

describe("verifySignature (recovery only) agrees with verify-and-recover", () => {
  it("accepts valid low-S signatures under compressed and uncompressed keys", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const f = fixture(seed);
      agree(f.compressed, f.digest, f.sig, true);
      agree(f.uncompressed, f.digest, f.sig, true);
    }
  });

  it("refuses the wrong key, digest, recovery id, or a flipped bit", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const f = fixture(seed);
      const other = fixture(seed + 100);
      agree(other.compressed, f.digest, f.sig, false);
      agree(f.compressed, other.digest, f.sig, false);
      agree(f.compressed, f.digest, { ...f.sig, recoveryId: 1 - f.sig.recoveryId }, false);
      const r = f.sig.r.slice();
      r[31]! ^= 1;
      agree(f.compressed, f.digest, { ...f.sig, r }, false);
      const s = f.sig.s.slice();
      s[0]! ^= 0x10;
      agree(f.compressed, f.digest, { ...f.sig, s }, false);
    }
  });

  it("refuses the high-S twin (valid ECDSA, other parity) and out-of-range r and s", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const f = fixture(seed);
      const high = { r: f.sig.r, s: be32(N - num(f.sig.s)), recoveryId: 1 - f.sig.recoveryId };
      // The twin is a valid signature when S may be high: only the low-S rule refuses it.
      const compact = new Uint8Array([...high.r, ...high.s]);
      expect(
        secp256k1.verify(compact, f.digest, f.compressed, { prehash: false, lowS: false }),
      ).toBe(true);
      agree(f.compressed, f.digest, high, false);
      agree(f.compressed, f.digest, { ...f.sig, r: be32(0n) }, false);
      agree(f.compressed, f.digest, { ...f.sig, s: be32(0n) }, false);
      agree(f.compressed, f.digest, { ...f.sig, r: be32(N) }, false);
      agree(f.compressed, f.digest, { ...f.sig, s: be32(N) }, false);
      // r + n: same residue, not the same integer.
      agree(f.compressed, f.digest, { ...f.sig, r: be32(num(f.sig.r) + N) }, false);
      agree(f.compressed, f.digest, { ...f.sig, r: be32(P - 1n) }, false);
    }
  });

  it("refuses recovery ids other than 0 and 1, an all-zero digest's forgeries, and bad keys", () => {
    const f = fixture(7);
    for (const recoveryId of [2, 3, 4, 27, 255, -1])
      agree(f.compressed, f.digest, { ...f.sig, recoveryId }, false);
    // r or s not 32 bytes: refused, never thrown.
    expect(verifySignature(f.compressed, f.digest, { ...f.sig, r: f.sig.r.slice(1) })).toBe(false);
    expect(
      verifySignature(f.compressed, f.digest, { ...f.sig, s: new Uint8Array([...f.sig.s, 0]) }),
    ).toBe(false);
    agree(new Uint8Array(33), f.digest, f.sig, false);
    agree(new Uint8Array(65), f.digest, f.sig, false);
    agree(f.compressed.slice(0, 32), f.digest, f.sig, false);
    const wrongPrefix = f.compressed.slice();
    wrongPrefix[0] = wrongPrefix[0] === 2 ? 3 : 2;
    agree(wrongPrefix, f.digest, f.sig, false);
    const badY = f.uncompressed.slice();
    badY[64]! ^= 1;
    agree(badY, f.digest, f.sig, false);
    // An r that is no point's x-coordinate (x = 5: x^3 + 7 = 132 is a non-residue mod p).
    const r5 = be32(5n);
    agree(f.compressed, f.digest, { ...f.sig, r: r5 }, false);
    // Recovery to the point at infinity: with R = kG, the digest e = s·k makes sR − eG = 0.
    const k = 12345n;
    const R = secp256k1.Point.BASE.multiply(k).toAffine();
    const r = R.x % N;
    const s = 2n;
    const e = (s * k) % N;
    agree(
      f.compressed,
      be32(e),
      { r: be32(r), s: be32(s), recoveryId: R.y % 2n === 0n ? 0 : 1 },
      false,
    );
  });

  it("a signature made for a recovered key verifies under it (so recovery is self-consistent)", () => {
    // Any (r, s, v) with r some point's x recovers to a key; that key then accepts it, as the reference does.
    const digest = new Uint8Array(32).fill(9);
    const x = secp256k1.Point.BASE.multiply(7n).toAffine().x;
    const sig: Signature = { r: be32(x), s: be32(42n), recoveryId: 0 };
    const compact = new Uint8Array([...sig.r, ...sig.s]);
    const pk = secp256k1.Signature.fromBytes(compact, "compact")
      .addRecoveryBit(0)
      .recoverPublicKey(digest)
      .toBytes(true);
    agree(pk, digest, sig, true);
    agree(pk, digest, { ...sig, recoveryId: 1 }, false);
  });
});
