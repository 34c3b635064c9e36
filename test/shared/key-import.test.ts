/**
 * The key import envelope (src/shared/wire/key-import.ts) against its frozen
 * vectors (test/vectors/key-import.json): the HPKE info and plaintext
 * encodings, and the envelope itself, byte for byte from the fixed inputs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeImportedKey,
  KEY_IMPORT_ENVELOPE_BYTES,
  keyImportInfo,
  parseImportedKey,
  sealKeyImportEnvelope,
  splitKeyImportEnvelope,
} from "../../src/shared/wire/key-import.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

interface Vector {
  description: string;
  fields: {
    walletId: string;
    requestId: string;
    threshold: number;
    parties: number;
    secretKey: Uint8Array;
    chainCode?: Uint8Array;
    ephemeralSecret: Uint8Array;
  };
  info: Uint8Array;
  plaintext: Uint8Array;
  envelope: Uint8Array;
}

const file = JSON.parse(
  readFileSync(join(import.meta.dirname, "../vectors/key-import.json"), "utf8"),
) as { recipient: Json; envelopes: Json[] };
const recipient = fromJson(file.recipient) as { x25519Public: Uint8Array; bindingHash: Uint8Array };
const vectors = file.envelopes.map((v) => fromJson(v) as Vector);

describe("key import envelope (key-import.json)", () => {
  for (const v of vectors)
    it(v.description, async () => {
      const { secretKey, chainCode, ephemeralSecret, ...context } = v.fields;
      const info = keyImportInfo({ ...context, recipientBindingHash: recipient.bindingHash });
      expect(toHex(info)).toBe(toHex(v.info));
      const plaintext = encodeImportedKey(secretKey, chainCode);
      expect(toHex(plaintext)).toBe(toHex(v.plaintext));
      expect(toHex(parseImportedKey(plaintext).secretKey)).toBe(toHex(secretKey));
      const envelope = await sealKeyImportEnvelope(
        recipient.x25519Public,
        info,
        plaintext,
        ephemeralSecret,
      );
      expect(toHex(envelope)).toBe(toHex(v.envelope));
      expect(KEY_IMPORT_ENVELOPE_BYTES).toContain(envelope.length);
    });

  it("refuses other versions and lengths, contexts out of bounds, and bad plaintexts", () => {
    const good = vectors[0]!.envelope;
    for (const bad of [
      good.subarray(1),
      Uint8Array.of(2, ...good.subarray(1)),
      new Uint8Array(200),
    ])
      expect(() => splitKeyImportEnvelope(bad)).toThrow(/version 1/);
    const context = {
      walletId: "w_1",
      requestId: "r_1",
      threshold: 2,
      parties: 3,
      recipientBindingHash: new Uint8Array(32),
    };
    for (const over of [{ threshold: 1 }, { parties: 17, threshold: 2 }, { walletId: "w/1" }])
      expect(() => keyImportInfo({ ...context, ...over })).toThrow();
    expect(() => parseImportedKey(Uint8Array.of(2, ...new Uint8Array(32)))).toThrow();
    expect(() => parseImportedKey(Uint8Array.of(1, ...new Uint8Array(32)))).toThrow();
    expect(() => encodeImportedKey(new Uint8Array(31))).toThrow();
  });
});
