/**
 * Inputs the fuzz targets found that broke a decoder's documented property, kept as plain
 * regression tests (each failed before its fix).
 */
import { describe, expect, it } from "vitest";
import { decodeCbor, encodeCbor, type Cbor } from "../../src/attestation/cose.ts";
import { decodeBody, encodeBody } from "../../src/shared/wire/body.ts";
import { fromBody, toBody } from "../../src/shared/wire/enclave-codec.ts";
import { KmsError } from "../../src/devkms/errors.ts";
import { operations } from "../../src/devkms/handlers/index.ts";
import { fuzzKeyId, kmsContext } from "./targets/kms.ts";

describe("fuzz regressions", () => {
  it('fromBody keeps a "__proto__" key as data instead of replacing the prototype', () => {
    // Found by "enclave-codec: fromBody" (seed 20240907): {"__proto__": bytes, "signers": ..., ...}.
    const body = Uint8Array.from([
      0, 4, 1, 9, 95, 95, 112, 114, 111, 116, 111, 95, 95, 2, 0, 0, 0, 2, 1, 2, 1, 7, 115, 105, 103,
      110, 101, 114, 115, 2, 0, 0, 0, 2, 1, 3, 1, 11, 99, 111, 110, 115, 116, 114, 117, 99, 116,
      111, 114, 3, 0, 0, 0, 1, 120, 1, 11, 112, 101, 101, 114, 80, 97, 114, 116, 105, 101, 115, 2,
      0, 0, 0, 0,
    ]);
    const o = fromBody<Record<string, unknown>>(decodeBody(body));
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(["__proto__", "signers", "constructor", "peerParties"]);
    expect(Object.getOwnPropertyDescriptor(o, "__proto__")?.value).toEqual(Uint8Array.of(1, 2));
    expect(o.signers).toEqual([1, 3]);
    expect(encodeBody(toBody(o))).toEqual(body);
  });

  it("decodeCbor keeps a leading U+FEFF in text, so one document has one reading", () => {
    // Found by "cose: decodeCbor" (FUZZ_SEED=1): the map key "\uFEFFest" read as "est".
    const bytes = Uint8Array.from([
      162, 102, 239, 187, 191, 101, 115, 116, 102, 83, 72, 65, 51, 56, 52, 105, 116, 105, 109, 101,
      115, 116, 97, 109, 112, 27, 0, 0, 1, 145, 204, 235, 81, 89,
    ]);
    const v = decodeCbor(bytes) as Map<string, Cbor>;
    expect([...v.keys()]).toEqual(["\ufeffest", "timestamp"]);
    expect(encodeCbor(v)).toEqual(bytes);
    expect(decodeCbor(Uint8Array.of(0x63, 0xef, 0xbb, 0xbf))).toBe("\ufeff");
  });

  it('GenerateDataKey refuses KeySpec "__proto__" with a ValidationException, not a 500', () => {
    // Found by "devkms: every operation handler" (FUZZ_SEED=187254324): the KeySpec table
    // lookup found Object.prototype, and randomBytes threw a TypeError.
    const generate = operations.get("GenerateDataKey")!;
    for (const spec of ["__proto__", "constructor", "toString"]) {
      let thrown: unknown;
      try {
        generate(kmsContext, { KeyId: fuzzKeyId, KeySpec: spec });
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(KmsError);
      expect((thrown as KmsError).type).toBe("ValidationException");
    }
  });
});
