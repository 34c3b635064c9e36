import { beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { HDKey } from "@scure/bip32";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { dkgInProcess, refreshInProcess, signInProcess } from "../../src/dev/in-process.ts";
import {
  derivePublicKey,
  ethAddress,
  KeyShare,
  packageInfo,
} from "../../src/enclave/dkls23/binding.ts";
import { verifySignature, signatureForms } from "../../src/shared/signature.ts";
import { toHex } from "../../src/shared/hex.ts";

const N = 5;
const T = 3;
let shares: KeyShare[];

function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k - 1).map((s) => [...s, n]), ...subsets(n - 1, k)];
}

function isLowS(s: Uint8Array): boolean {
  return BigInt("0x" + toHex(s)) <= secp256k1.Point.CURVE().n / 2n;
}

beforeAll(() => {
  shares = dkgInProcess(T, N);
});

describe("3-of-5 DKG", () => {
  it("gives every party a distinct share of one agreed public key", () => {
    const keys = shares.map((s) => toHex(s.publicKey));
    expect(new Set(keys).size).toBe(1);
    expect(shares.map((s) => s.index)).toEqual([1, 2, 3, 4, 5]);
    expect(shares.every((s) => s.threshold === T && s.parties === N && s.generation === 0)).toBe(
      true,
    );
    // All packages agree on the key, chain code and parameters.
    const infos = shares.map((s) => packageInfo(s.publicPackage()));
    expect(new Set(infos.map((i) => toHex(i.publicKey) + toHex(i.chainCode))).size).toBe(1);
    expect(infos[0]!.publicKey).toEqual(shares[0]!.publicKey);
    // Share bytes differ per party (they are different Shamir points).
    expect(new Set(shares.map((s) => toHex(s.toBytes()))).size).toBe(N);
  });

  it("derives the Ethereum address of the group key", () => {
    const pub = secp256k1.Point.fromBytes(shares[0]!.publicKey).toBytes(false);
    const expected = "0x" + toHex(keccak_256(pub.subarray(1)).subarray(12));
    expect(ethAddress(shares[0]!.publicKey).toLowerCase()).toBe(expected);
  });
});

describe("3-of-5 signing", () => {
  it("signs with every one of the 10 three-party quorums; each signature verifies, is low-S and recovers the key", () => {
    const quorums = subsets(N, T);
    expect(quorums).toHaveLength(10);
    const pk = shares[0]!.publicKey;
    for (const q of quorums) {
      const digest = randomBytes(32);
      const sigs = signInProcess(shares, q, digest);
      expect(sigs).toHaveLength(T);
      for (const s of sigs)
        expect(toHex(s.r) + toHex(s.s) + s.recoveryId).toBe(
          toHex(sigs[0]!.r) + toHex(sigs[0]!.s) + sigs[0]!.recoveryId,
        );
      const sig = sigs[0]!;
      expect(verifySignature(pk, digest, sig)).toBe(true);
      expect(isLowS(sig.s)).toBe(true);
      const recovered = secp256k1.Signature.fromBytes(
        new Uint8Array([...sig.r, ...sig.s]),
        "compact",
      )
        .addRecoveryBit(sig.recoveryId)
        .recoverPublicKey(digest);
      expect(recovered.toBytes(true)).toEqual(pk);
      // The signature does not verify for another digest.
      expect(verifySignature(pk, randomBytes(32), sig)).toBe(false);
    }
  });

  it("renders the Ethereum 65-byte and DER forms", () => {
    const digest = randomBytes(32);
    const [sig] = signInProcess(shares, [2, 4, 5], digest);
    const f = signatureForms(sig!);
    expect(f.ethereum).toHaveLength(130);
    expect(parseInt(f.ethereum.slice(128), 16)).toBe(27 + sig!.recoveryId);
    const der = secp256k1.Signature.fromBytes(Buffer.from(f.der, "hex"), "der");
    expect(der.r.toString(16).padStart(64, "0")).toBe(f.r);
  });

  it("refuses a quorum of the wrong size or one that omits the signer", () => {
    const digest = randomBytes(32);
    expect(() => signInProcess(shares, [1, 2], digest)).toThrow(/exactly t=3/);
    expect(() => signInProcess(shares, [1, 2, 3, 4], digest)).toThrow(/exactly t=3/);
    expect(() => signInProcess(shares, [1, 2, 3], randomBytes(31))).toThrow(
      /digest must be 32 bytes/,
    );
  });
});

describe("key share bytes", () => {
  it("round-trip through opaque bytes and still sign", () => {
    const copies = shares.map((s) => KeyShare.fromBytes(s.toBytes()));
    const digest = randomBytes(32);
    const [sig] = signInProcess(copies, [1, 3, 5], digest);
    expect(verifySignature(shares[0]!.publicKey, digest, sig!)).toBe(true);
    for (const c of copies) c.free();
  });

  it("fromBytes wipes the caller's buffer", () => {
    const b = shares[0]!.toBytes();
    KeyShare.fromBytes(b).free();
    expect(b.every((x) => x === 0)).toBe(true);
  });
});

describe("BIP-32 derivation", () => {
  it("child public key equals independent BIP-32 public derivation, and the child share signs under it", () => {
    const info = packageInfo(shares[0]!.publicPackage());
    const master = new HDKey({ publicKey: info.publicKey, chainCode: info.chainCode });
    for (const path of ["m/0", "m/0/7", "m/44/60/0/0/3", "m/2147483647"]) {
      const expected = master.derive(path);
      const mine = derivePublicKey(shares[2]!.publicPackage(), path);
      expect(toHex(mine.publicKey)).toBe(toHex(expected.publicKey!));
      expect(toHex(mine.chainCode)).toBe(toHex(expected.chainCode!));
      const child = shares[1]!.derive(path);
      expect(toHex(child.publicKey)).toBe(toHex(expected.publicKey!));
      child.free();
    }
    const digest = randomBytes(32);
    const [sig] = signInProcess(shares, [1, 2, 5], digest, { path: "m/44/60/0/0/3" });
    expect(verifySignature(master.derive("m/44/60/0/0/3").publicKey!, digest, sig!)).toBe(true);
    expect(verifySignature(shares[0]!.publicKey, digest, sig!)).toBe(false);
  });

  it("rejects hardened and malformed paths", () => {
    for (const p of ["m/0'", "m/2147483648", "0/1", "m/x", "m//1", "m/" + "1/".repeat(200) + "1"]) {
      expect(() => derivePublicKey(shares[0]!.publicPackage(), p)).toThrow();
      expect(() => shares[0]!.derive(p)).toThrow();
    }
  });
});

describe("refresh", () => {
  it("keeps the public key, new shares sign, and old shares no longer combine with new ones", () => {
    const fresh = refreshInProcess(shares);
    const pk = shares[0]!.publicKey;
    expect(fresh.every((s) => toHex(s.publicKey) === toHex(pk) && s.generation === 1)).toBe(true);
    expect(fresh.map((s) => toHex(s.toBytes()))).not.toEqual(shares.map((s) => toHex(s.toBytes())));
    for (const q of [
      [1, 2, 3],
      [3, 4, 5],
      [1, 4, 5],
    ]) {
      const digest = randomBytes(32);
      const [sig] = signInProcess(fresh, q, digest);
      expect(verifySignature(pk, digest, sig!)).toBe(true);
    }
    // A quorum mixing one pre-refresh share with post-refresh shares.
    for (const stale of [1, 2, 3]) {
      const mixed = fresh.map((s, i) => (i + 1 === stale ? shares[i]! : s));
      const digest = randomBytes(32);
      let sigs: ReturnType<typeof signInProcess> | undefined;
      try {
        sigs = signInProcess(mixed, [1, 2, 3], digest);
      } catch (e) {
        expect((e as Error).name).toBe("DklsError");
      }
      // Either it aborts, or whatever came out is not a valid signature.
      if (sigs) for (const s of sigs) expect(verifySignature(pk, digest, s)).toBe(false);
    }
    for (const s of fresh) s.free();
  });
});
