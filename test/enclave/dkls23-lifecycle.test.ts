/**
 * Re-keying and share repair through the real wasm build: an imported key
 * signs under its own address, a repaired party signs after the complete
 * refresh, and shares from before that refresh never combine with new ones.
 */
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  asParty,
  dkgInProcess,
  refreshInProcess,
  runPhases,
  signInProcess,
} from "../../src/dev/in-process.ts";
import {
  DklsError,
  ethAddress,
  type KeyShare,
  packageInfo,
  Refresh,
  refreshFromHollow,
  rekey,
  repairAssemble,
  repairTerm,
} from "../../src/enclave/dkls23/binding.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { toHex } from "../../src/shared/hex.ts";

function signs(shares: readonly KeyShare[], quorum: number[], publicKey: Uint8Array): boolean {
  const digest = randomBytes(32);
  try {
    return verifySignature(publicKey, digest, signInProcess(shares, quorum, digest)[0]!);
  } catch {
    return false;
  }
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof DklsError ? e.code : `not a DklsError: ${String(e)}`;
  }
  return undefined;
}

describe("rekey", () => {
  it("splits a @noble/curves key into 3-of-5 shares that sign under its own key and address", () => {
    const secretKey = secp256k1.utils.randomSecretKey();
    const publicKey = secp256k1.getPublicKey(secretKey, true);
    const chainCode = randomBytes(32);
    const secretCopy = secretKey.slice();
    const chainCopy = Uint8Array.from(chainCode);
    const shares = rekey({
      threshold: 3,
      parties: 5,
      secretKey: secretCopy,
      chainCode: chainCopy,
      sessionId: randomBytes(32),
    });
    // The caller's buffers are wiped.
    expect(secretCopy.every((b) => b === 0)).toBe(true);
    expect(chainCopy.every((b) => b === 0)).toBe(true);
    expect(shares.map((s) => s.index)).toEqual([1, 2, 3, 4, 5]);
    for (const s of shares) {
      expect(s.publicKey).toEqual(publicKey);
      expect(s.generation).toBe(0);
      expect(packageInfo(s.publicPackage()).chainCode).toEqual(new Uint8Array(chainCode));
    }
    expect(ethAddress(shares[0]!.publicKey)).toBe(
      ethAddress(secp256k1.getPublicKey(secretKey, false)),
    );
    expect(signs(shares, [1, 2, 3], publicKey)).toBe(true);
    expect(signs(shares, [2, 4, 5], publicKey)).toBe(true);

    // The complete refresh that must follow an import: new shares sign, the
    // dealt ones (which the dealer saw) do not combine with them.
    const fresh = refreshInProcess(shares);
    expect(fresh.every((s) => s.generation === 1 && toHex(s.publicKey) === toHex(publicKey))).toBe(
      true,
    );
    expect(signs(fresh, [1, 3, 5], publicKey)).toBe(true);
    expect(signs([shares[0]!, fresh[1]!, fresh[2]!], [1, 2, 3], publicKey)).toBe(false);
  });

  it("refuses keys that are not keys and wipes them anyway", () => {
    const sessionId = randomBytes(32);
    const order = secp256k1.Point.CURVE().n;
    const atOrder = Uint8Array.from(Buffer.from(order.toString(16).padStart(64, "0"), "hex"));
    for (const secretKey of [new Uint8Array(32), atOrder, new Uint8Array(31).fill(1)]) {
      expect(code(() => rekey({ threshold: 2, parties: 3, secretKey, sessionId }))).toBe(
        "invalid_parameters",
      );
      expect(secretKey.every((b) => b === 0)).toBe(true);
    }
    const one = new Uint8Array(32);
    one[31] = 1;
    expect(code(() => rekey({ threshold: 1, parties: 3, secretKey: one.slice(), sessionId }))).toBe(
      "invalid_parameters",
    );
    expect(
      code(() =>
        rekey({ threshold: 2, parties: 3, secretKey: one.slice(), sessionId: new Uint8Array(31) }),
      ),
    ).toBe("invalid_parameters");
  });
});

describe("share repair", () => {
  it("rebuilds a lost party's share that signs with the others after a complete refresh; the lost copy no longer combines", () => {
    const shares = dkgInProcess(3, 5);
    const publicKey = shares[0]!.publicKey;
    const publicPackage = shares[0]!.publicPackage();
    const repairId = randomBytes(32);
    const helpers = [1, 3, 4];
    const terms = helpers.map((h) => ({
      from: h,
      term: repairTerm(shares[h - 1]!, { helpers, target: 2, repairId }),
    }));
    const hollow = repairAssemble({ publicPackage, target: 2, repairId, terms });
    expect(terms.every((t) => t.term.every((b) => b === 0))).toBe(true);
    expect([hollow.index, hollow.generation, toHex(hollow.publicKey)]).toEqual([
      2,
      0,
      toHex(publicKey),
    ]);

    const sessionId = randomBytes(32);
    const fresh = runPhases(
      shares.map((share) =>
        share.index === 2
          ? asParty(2, refreshFromHollow({ hollow, sessionId }))
          : asParty(share.index, new Refresh({ share, sessionId })),
      ),
    );
    expect(() => hollow.index).toThrow(); // consumed by the refresh
    expect(fresh.every((s) => s.generation === 1 && toHex(s.publicKey) === toHex(publicKey))).toBe(
      true,
    );
    expect(signs(fresh, [1, 2, 3], publicKey)).toBe(true);
    expect(signs(fresh, [2, 4, 5], publicKey)).toBe(true);
    // The lost holder's share (from a backup, say) and any pre-refresh share
    // combine with no refreshed one.
    expect(signs([fresh[0]!, shares[1]!, fresh[2]!], [1, 2, 3], publicKey)).toBe(false);
    expect(signs([shares[0]!, fresh[1]!, fresh[2]!], [1, 2, 3], publicKey)).toBe(false);
    // And the refresh works again with all n.
    expect(signs(refreshInProcess(fresh), [3, 4, 5], publicKey)).toBe(true);
  });

  it("refuses too few helpers, relabelled or foreign terms, and stale helpers", () => {
    const shares = dkgInProcess(3, 5);
    const publicPackage = shares[0]!.publicPackage();
    const repairId = randomBytes(32);
    const helpers = [1, 3, 4];
    expect(code(() => repairTerm(shares[0]!, { helpers: [1, 3], target: 2, repairId }))).toBe(
      "invalid_parameters",
    );
    const make = (id: Uint8Array, from = shares) =>
      helpers.map((h) => ({
        from: h,
        term: repairTerm(from[h - 1]!, { helpers, target: 2, repairId: id }),
      }));
    const two = make(repairId).slice(0, 2);
    expect(code(() => repairAssemble({ publicPackage, target: 2, repairId, terms: two }))).toBe(
      "invalid_parameters",
    );
    const relabelled = make(repairId);
    relabelled[2] = { from: 5, term: relabelled[2]!.term };
    expect(
      code(() => repairAssemble({ publicPackage, target: 2, repairId, terms: relabelled })),
    ).toBe("unexpected_message");
    const foreign = [...make(repairId).slice(0, 2), make(randomBytes(32))[2]!];
    expect(code(() => repairAssemble({ publicPackage, target: 2, repairId, terms: foreign }))).toBe(
      "unexpected_message",
    );
    // After a refresh, the pre-refresh shares' terms do not match the current package.
    const fresh = refreshInProcess(shares);
    expect(
      code(() =>
        repairAssemble({
          publicPackage: fresh[0]!.publicPackage(),
          target: 2,
          repairId,
          terms: make(repairId),
        }),
      ),
    ).toBe("protocol_abort");
  });
});
