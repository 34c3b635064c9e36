/**
 * The host's remembered work (sign-result.ts signatureVerifies and signingKey, public-key.ts ethAddress)
 * answer what a fresh computation would: a remembered success never covers other bytes, and
 * refusals are never remembered as successes.
 */
import { describe, expect, it } from "vitest";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { signatureVerifies, signingKey } from "../../src/host/sign-result.ts";
import { deriveChildPublicKey, ethAddress } from "../../src/shared/public-key.ts";
import type { Signature } from "../../src/shared/signature.ts";

function signed(seed: number) {
  const sk = new Uint8Array(32).fill(seed);
  const digest = new Uint8Array(32).fill(seed + 1);
  const rec = secp256k1.sign(digest, sk, { prehash: false, format: "recovered" });
  const sig: Signature = { r: rec.slice(1, 33), s: rec.slice(33, 65), recoveryId: rec[0]! };
  return { pk: secp256k1.getPublicKey(sk, true), digest, sig };
}

describe("signatureVerifies", () => {
  it("remembers a success only for the exact key, digest and signature", () => {
    const a = signed(3);
    const b = signed(4);
    for (let k = 0; k < 2; k++) {
      expect(signatureVerifies(a.pk, a.digest, a.sig)).toBe(true);
      expect(signatureVerifies(b.pk, a.digest, a.sig)).toBe(false);
      expect(signatureVerifies(a.pk, b.digest, a.sig)).toBe(false);
      expect(
        signatureVerifies(a.pk, a.digest, { ...a.sig, recoveryId: 1 - a.sig.recoveryId }),
      ).toBe(false);
      const s = a.sig.s.slice();
      s[31]! ^= 1;
      expect(signatureVerifies(a.pk, a.digest, { ...a.sig, s })).toBe(false);
    }
  });
});

describe("ethAddress", () => {
  it("gives the same address remembered as computed, and still refuses a non-point", () => {
    // The address of private key 1 (a well-known vector).
    const one = new Uint8Array(32);
    one[31] = 1;
    const pk = secp256k1.getPublicKey(one, true);
    // x = 5 is no point's x-coordinate (5^3 + 7 is not a square mod p).
    const notPoint = new Uint8Array(33);
    notPoint[0] = 2;
    notPoint[32] = 5;
    for (let k = 0; k < 2; k++) {
      expect(ethAddress(pk)).toBe("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
      expect(ethAddress(secp256k1.getPublicKey(one, false))).toBe(
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
      );
      expect(() => ethAddress(notPoint)).toThrow();
    }
  });
});

describe("signingKey", () => {
  it("gives the derived child key every time, a copy each time, and refuses a bad path each time", () => {
    const { pk } = signed(5);
    const chainCode = new Uint8Array(32).fill(9);
    const want = deriveChildPublicKey(pk, chainCode, "m/0/1/2").publicKey;
    expect(signingKey({ publicKey: pk, chainCode, path: undefined })).toBe(pk);
    const first = signingKey({ publicKey: pk, chainCode, path: "m/0/1/2" });
    expect(first).toEqual(want);
    first.fill(0);
    expect(signingKey({ publicKey: pk, chainCode, path: "m/0/1/2" })).toEqual(want);
    expect(signingKey({ publicKey: pk, chainCode, path: "m/0/1/3" })).not.toEqual(want);
    const otherChain = new Uint8Array(32).fill(8);
    expect(signingKey({ publicKey: pk, chainCode: otherChain, path: "m/0/1/2" })).not.toEqual(want);
    for (let k = 0; k < 2; k++)
      expect(() => signingKey({ publicKey: pk, chainCode, path: "m/0'" })).toThrow();
  });
});
