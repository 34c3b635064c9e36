/**
 * channelSignatureValid (JavaScript canonicality and key checks, BoringSSL's
 * equation) against @noble/curves' strict RFC 8032 verification, which it
 * replaced: the same verdict on valid, tampered and crafted signatures, and
 * stricter in the one documented case (R with a small-order component, which
 * noble's cofactored equation accepts and no RFC 8032 signer produces); the
 * same for P-256 approvals (strictP256Valid) against noble's low-S compact rules.
 */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { channelSignatureValid, strictP256Valid } from "../../src/enclave/channel-signature.ts";
import { PeerKeyError, PeerKeys } from "../../src/enclave/peer-keys.ts";

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
const P = Point.Fp.ORDER;
const noble = (sig: Uint8Array, msg: Uint8Array, key: Uint8Array): boolean => {
  try {
    return ed25519.verify(sig, msg, key, { zip215: false });
  } catch {
    return false;
  }
};
const le = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
/** Plain Uint8Arrays: a Buffer's slice() is a view, which would let a "copy" flip the original. */
const rand = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint =>
  fromLe(sha512(cat(r, a, m))) % L;
/** A key pair with its secret scalar, to craft signatures no RFC 8032 signer makes. */
const keyPair = () => {
  const secret = ed25519.utils.randomSecretKey();
  const { scalar, pointBytes } = ed25519.utils.getExtendedPublicKey(secret);
  return { secret, scalar, publicKey: pointBytes };
};
/** A point of order 8: [L]Q of a random point Q, until it has order 8. */
const order8 = (() => {
  for (;;) {
    let q;
    try {
      q = Point.fromBytes(rand(32).fill(0, 31, 32), false);
    } catch {
      continue;
    }
    const t = q.multiplyUnsafe(L - 1n).add(q);
    if (!t.is0() && !t.double().double().is0()) return t;
  }
})();
const IDENTITY = Point.ZERO.toBytes();

describe("channelSignatureValid", () => {
  it("agrees with noble's strict verification on valid signatures and on every single-bit flip of signature, message and key", () => {
    for (let n = 0; n < 6; n++) {
      const { secret, publicKey } = keyPair();
      const msg = rand([0, 1, 37, 64, 3000, 70_000][n]!);
      const sig = ed25519.sign(msg, secret);
      expect(channelSignatureValid(sig, msg, publicKey)).toBe(true);
      expect(noble(sig, msg, publicKey)).toBe(true);
      for (const [what, bytes] of [
        ["sig", sig],
        ["msg", msg],
        ["key", publicKey],
      ] as const) {
        for (let k = 0; k < 12 && bytes.length > 0; k++) {
          const bit = Math.floor(Math.random() * bytes.length * 8);
          const b = bytes.slice();
          b[bit >> 3]! ^= 1 << (bit & 7);
          const [s, m, a] =
            what === "sig"
              ? [b, msg, publicKey]
              : what === "msg"
                ? [sig, b, publicKey]
                : [sig, msg, b];
          expect(channelSignatureValid(s, m, a)).toBe(noble(s, m, a));
          expect(channelSignatureValid(s, m, a)).toBe(false);
        }
      }
    }
  });

  it("accepts what the enclave's own channel key signs (native signing, same bytes as RFC 8032)", () => {
    const keys = new PeerKeys();
    const msg = rand(500);
    const sig = keys.sign(msg);
    expect(channelSignatureValid(sig, msg, keys.ed25519Public)).toBe(true);
    expect(noble(sig, msg, keys.ed25519Public)).toBe(true);
  });

  it("refuses S >= L (malleability) as noble does", () => {
    const { secret, publicKey } = keyPair();
    const msg = rand(40);
    const sig = ed25519.sign(msg, secret);
    const s = fromLe(sig.subarray(32));
    const malleated = cat(sig.subarray(0, 32), le(s + L));
    expect(noble(malleated, msg, publicKey)).toBe(false);
    expect(channelSignatureValid(malleated, msg, publicKey)).toBe(false);
    expect(channelSignatureValid(cat(sig.subarray(0, 32), le(L)), msg, publicKey)).toBe(false);
  });

  it("accepts R = identity when the equation holds, and refuses its non-canonical encodings", () => {
    const { scalar, publicKey } = keyPair();
    const msg = rand(20);
    const sigFor = (r: Uint8Array) => cat(r, le((challenge(r, publicKey, msg) * scalar) % L));
    // [S]B = O + [k]A with S = k·a: valid, if odd.
    const canonical = sigFor(IDENTITY);
    expect(noble(canonical, msg, publicKey)).toBe(true);
    expect(channelSignatureValid(canonical, msg, publicKey)).toBe(true);
    // y = 1 + p (fits 255 bits) and x = 0 with its sign bit set: the same point, non-canonical.
    const yPlusP = le(1n + P);
    const negZero = IDENTITY.slice();
    negZero[31]! |= 0x80;
    for (const r of [yPlusP, negZero]) {
      const sig = sigFor(r);
      // ZIP-215 takes both: each is a real signature under the lenient rules.
      expect(ed25519.verify(sig, msg, publicKey, { zip215: true })).toBe(true);
      expect(noble(sig, msg, publicKey)).toBe(false);
      expect(channelSignatureValid(sig, msg, publicKey)).toBe(false);
    }
  });

  it("refuses small-order and non-canonical keys even with signatures that satisfy the equation", () => {
    const msg = rand(16);
    // A of small order, R = O, S = 0: [0]B = O + [k]A whenever [k]A = O.
    // Multiples of an order-8 point: every point of order 1, 2, 4 and 8.
    const smallKeys: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) smallKeys.push(order8.multiplyUnsafe(BigInt(i + 1)).toBytes());
    const negZero = IDENTITY.slice();
    negZero[31]! |= 0x80;
    smallKeys.push(negZero, le(1n + P));
    const zeroSig = cat(IDENTITY, new Uint8Array(32));
    let equationHolds = 0;
    for (const a of smallKeys) {
      // For the identity key every message works; for the others, find one with [k]A = O.
      let m = msg;
      for (let t = 0; t < 64; t++) {
        const k = challenge(IDENTITY, a, m);
        let pt;
        try {
          pt = Point.fromBytes(a, true);
        } catch {
          break;
        }
        if (pt.multiplyUnsafe(k % L).is0()) {
          equationHolds++;
          break;
        }
        m = rand(16);
      }
      expect(noble(zeroSig, m, a)).toBe(false);
      expect(channelSignatureValid(zeroSig, m, a)).toBe(false);
    }
    expect(equationHolds).toBeGreaterThan(8);
  });

  it("is stricter than noble only for R with a small-order component (cofactorless equation)", () => {
    const { scalar, publicKey } = keyPair();
    const msg = rand(33);
    const r = BigInt(`0x${Buffer.from(rand(32)).toString("hex")}`) % L;
    const rPoint = Point.BASE.multiply(r).add(order8);
    const rBytes = rPoint.toBytes();
    const s = (r + challenge(rBytes, publicKey, msg) * scalar) % L;
    const sig = cat(rBytes, le(s));
    expect(noble(sig, msg, publicKey)).toBe(true); // 8(R + kA - SB) = 8T = O
    expect(channelSignatureValid(sig, msg, publicKey)).toBe(false); // R != SB - kA
  });

  it("never throws on malformed input, and keeps its verdict for a key across calls", () => {
    const { secret, publicKey } = keyPair();
    const msg = rand(8);
    const sig = ed25519.sign(msg, secret);
    for (const [s, m, a] of [
      [sig.subarray(0, 63), msg, publicKey],
      [sig, msg, publicKey.subarray(0, 31)],
      [new Uint8Array(64), msg, publicKey],
      [sig, msg, new Uint8Array(32).fill(0xff)],
      ["x", msg, publicKey],
      [sig, null, publicKey],
    ] as const)
      expect(channelSignatureValid(s as Uint8Array, m as Uint8Array, a as Uint8Array)).toBe(false);
    for (let k = 0; k < 3; k++) expect(channelSignatureValid(sig, msg, publicKey)).toBe(true);
    expect(channelSignatureValid(sig, msg, smallOrderKey())).toBe(false);
    expect(channelSignatureValid(sig, msg, smallOrderKey())).toBe(false);
  });
});

function smallOrderKey(): Uint8Array {
  return order8.toBytes();
}

describe("PeerKeys (native signing, ECDH outputs kept for the boot)", () => {
  it("signs the same bytes as RFC 8032 (noble) and computes the same X25519 output, first call or cached", () => {
    const a = { x25519Secret: rand(32), ed25519Secret: rand(32) };
    const keys = new PeerKeys(a);
    const msg = rand(100);
    expect(Buffer.from(keys.sign(msg))).toEqual(Buffer.from(ed25519.sign(msg, a.ed25519Secret)));
    const peerSecret = x25519.utils.randomSecretKey();
    const peerPublic = x25519.getPublicKey(peerSecret);
    const expected = Buffer.from(x25519.getSharedSecret(a.x25519Secret, peerPublic));
    const first = keys.sharedSecret(peerPublic);
    first.fill(0); // the caller wipes its copy; the kept one must survive that
    expect(Buffer.from(keys.sharedSecret(peerPublic))).toEqual(expected);
    expect(Buffer.from(keys.sharedSecret(peerPublic.slice()))).toEqual(expected);
  });

  it("refuses low-order and malformed peer keys every time, and nothing after destroy()", () => {
    const keys = new PeerKeys();
    const lowOrder = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];
    for (const k of [...lowOrder, ...lowOrder, new Uint8Array(31)])
      expect(() => keys.sharedSecret(k)).toThrow(PeerKeyError);
    const peerPublic = x25519.getPublicKey(x25519.utils.randomSecretKey());
    keys.sharedSecret(peerPublic);
    keys.destroy();
    expect(() => keys.sharedSecret(peerPublic)).toThrow(PeerKeyError);
    expect(() => keys.sign(new Uint8Array(1))).toThrow(PeerKeyError);
  });
});

describe("strictP256Valid (administrators' P-256 approvals)", () => {
  const opts = { prehash: true, lowS: true, format: "compact" } as const;
  const nobleP256 = (sig: Uint8Array, msg: Uint8Array, key: Uint8Array): boolean => {
    try {
      return p256.verify(sig, msg, key, opts);
    } catch {
      return false;
    }
  };
  const N = p256.Point.Fn.ORDER;
  const be = (n: bigint): Uint8Array => le(n).reverse();

  it("agrees with noble on valid signatures and on single-bit flips of signature, message and key", () => {
    for (let n = 0; n < 5; n++) {
      const sk = p256.utils.randomSecretKey();
      const key = p256.getPublicKey(sk, true);
      const msg = rand([0, 1, 64, 300, 5000][n]!);
      const sig = p256.sign(msg, sk, opts);
      expect(strictP256Valid(sig, msg, key)).toBe(true);
      for (let k = 0; k < 30; k++) {
        const which = k % 3;
        const bytes = [sig, msg, key][which]!;
        if (bytes.length === 0) continue;
        const b = bytes.slice();
        const bit = Math.floor(Math.random() * b.length * 8);
        b[bit >> 3]! ^= 1 << (bit & 7);
        const [s, m, a] = which === 0 ? [b, msg, key] : which === 1 ? [sig, b, key] : [sig, msg, b];
        expect(strictP256Valid(s, m, a)).toBe(nobleP256(s, m, a));
      }
    }
  });

  it("refuses high S (the malleated twin of a valid signature), r or s of 0 or >= n, and bad keys, as noble does", () => {
    const sk = p256.utils.randomSecretKey();
    const key = p256.getPublicKey(sk, true);
    const msg = rand(50);
    const sig = p256.sign(msg, sk, opts);
    const r = sig.subarray(0, 32);
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString("hex")}`);
    const rN = BigInt(`0x${Buffer.from(r).toString("hex")}`);
    const cases: [string, Uint8Array, Uint8Array][] = [
      ["high S", cat(r, be(N - s)), key],
      ["s = 0", cat(r, new Uint8Array(32)), key],
      ["r = 0", cat(new Uint8Array(32), sig.subarray(32)), key],
      ["r + n", cat(be(rN + N).subarray(-32), sig.subarray(32)), key],
      ["s = n", cat(r, be(N)), key],
      ["r = n", cat(be(N), sig.subarray(32)), key],
      ["key off the curve", sig, Uint8Array.of(0x02, ...new Uint8Array(32).fill(0xff))],
      ["key of another prefix", sig, Uint8Array.of(0x04, ...key.subarray(1))],
    ];
    for (const [what, sg, k] of cases) {
      expect([what, nobleP256(sg, msg, k)]).toEqual([what, false]);
      expect([what, strictP256Valid(sg, msg, k)]).toEqual([what, false]);
    }
    // And the low-S twin itself is what noble and this accept.
    expect(strictP256Valid(sig, msg, key)).toBe(true);
    // The one difference: approvals carry 33-byte compressed keys only (approval.ts), so the
    // uncompressed form of the same key, which noble would take, is refused here.
    const uncompressed = p256.getPublicKey(sk, false);
    expect(nobleP256(sig, msg, uncompressed)).toBe(true);
    expect(strictP256Valid(sig, msg, uncompressed)).toBe(false);
  });
});
