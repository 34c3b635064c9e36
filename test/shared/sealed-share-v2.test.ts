/**
 * Sealed key share format version 2 (src/shared/wire/sealed-share.ts): the
 * frozen vectors of test/vectors/sealed-share-v2.json, and the binding of
 * the wallet's approval policy hash: a host that swaps the policy, drops it
 * (so the enclave would open under version 1) or relabels the blob's
 * version cannot open the share.
 */
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SealError, sealShare, unsealShare } from "../../src/enclave/seal.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { policyHash } from "../../src/shared/wire/approval.ts";
import {
  encodeAssociatedData,
  encodeSealedShare,
  parseAssociatedData,
  parseSealedShare,
  SEAL_TAG_BYTES,
  type SealBinding,
} from "../../src/shared/wire/sealed-share.ts";
import { fromJson, toJson, type Json } from "../vectors/vector-json.ts";

interface Case {
  description: string;
  policy: string;
  binding: Json;
  dataKey: string;
  share: string;
  associatedData: string;
  fields: Json;
  hex: string;
}
const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/sealed-share-v2.json"), "utf8"),
) as { cases: Case[] };

describe("sealed share version 2 (sealed-share-v2.json)", () => {
  for (const c of vectors.cases) {
    it(c.description, () => {
      const binding = fromJson(c.binding) as SealBinding;
      const dataKey = fromHex(c.dataKey);
      const parts = fromJson(c.fields) as Parameters<typeof encodeSealedShare>[0];
      expect(parts.version).toBe(2);
      expect(toHex(binding.policyHash!)).toBe(toHex(policyHash(fromHex(c.policy))));
      expect(toJson(parseSealedShare(fromHex(c.hex)))).toEqual(c.fields);
      expect(toHex(encodeSealedShare(parts))).toBe(c.hex);
      expect(c.hex.slice(0, 2)).toBe("02");
      expect(toHex(encodeAssociatedData(binding))).toBe(c.associatedData);
      expect(toJson(parseAssociatedData(fromHex(c.associatedData)))).toEqual(c.binding);
      const cipher = createCipheriv("aes-256-gcm", dataKey, parts.nonce, {
        authTagLength: SEAL_TAG_BYTES,
      });
      cipher.setAAD(fromHex(c.associatedData));
      expect(
        toHex(cipher.update(fromHex(c.share))) + toHex(cipher.final()) + toHex(cipher.getAuthTag()),
      ).toBe(toHex(parts.ciphertext) + toHex(parts.tag));
      expect(toHex(unsealShare({ dataKey, sealed: fromHex(c.hex), binding }))).toBe(c.share);
    });
  }

  it("opens only under the policy hash it was sealed with", () => {
    const c = vectors.cases[0]!;
    const binding = fromJson(c.binding) as SealBinding;
    const dataKey = fromHex(c.dataKey);
    const sealed = fromHex(c.hex);
    const otherPolicy = new Uint8Array(binding.policyHash!);
    otherPolicy[0]! ^= 1;
    expect(() =>
      unsealShare({ dataKey, sealed, binding: { ...binding, policyHash: otherPolicy } }),
    ).toThrow(SealError);
    // Dropping the policy means opening under version 1: refused, whatever the version byte says.
    const { policyHash: _dropped, ...v1 } = binding;
    expect(() => unsealShare({ dataKey, sealed, binding: v1 })).toThrow(SealError);
    const relabelled = sealed.slice();
    relabelled[0] = 1;
    expect(() => unsealShare({ dataKey, sealed: relabelled, binding: v1 })).toThrow(SealError);
    expect(() => unsealShare({ dataKey, sealed: relabelled, binding })).toThrow(SealError);
  });

  it("sealShare writes version 2 with a policy hash and version 1 without", () => {
    const c = vectors.cases[0]!;
    const binding = fromJson(c.binding) as SealBinding;
    const dataKey = fromHex(c.dataKey);
    const shareBytes = fromHex(c.share);
    const v2 = sealShare({ dataKey, shareBytes, binding });
    expect(v2[0]).toBe(2);
    expect(toHex(unsealShare({ dataKey, sealed: v2, binding }))).toBe(c.share);
    const { policyHash: _dropped, ...v1binding } = binding;
    const v1 = sealShare({ dataKey, shareBytes, binding: v1binding });
    expect(v1[0]).toBe(1);
    expect(() => unsealShare({ dataKey, sealed: v1, binding })).toThrow(SealError);
  });

  it("refuses a policy hash of the wrong length and a version 2 blob of another version", () => {
    const binding = fromJson(vectors.cases[0]!.binding) as SealBinding;
    expect(() => encodeAssociatedData({ ...binding, policyHash: new Uint8Array(31) })).toThrow(
      /policyHash/,
    );
    const ad = fromHex(vectors.cases[0]!.associatedData);
    expect(() => parseAssociatedData(ad.subarray(0, ad.length - 1))).toThrow();
    const blob = fromHex(vectors.cases[0]!.hex);
    blob[0] = 3;
    expect(() => parseSealedShare(blob)).toThrow(/version/);
  });
});
