/**
 * Valid encodings the fuzzer starts from, so mutated inputs get past the first checks: the
 * frozen vectors (test/vectors/*.json) and the real AWS artefacts in ../shared/fixtures/nitro/
 * (attestation documents, KMS CiphertextForRecipient blobs).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex } from "../../src/shared/hex.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const VECTORS = fileURLToPath(new URL("../vectors/", import.meta.url));
export const NITRO_FIXTURES = fileURLToPath(
  new URL("../../../shared/fixtures/nitro/", import.meta.url),
);
export const haveNitroFixtures = existsSync(NITRO_FIXTURES);

export interface VectorCase {
  description: string;
  hex: string;
  [field: string]: Json;
}

export interface VectorFile {
  cases: VectorCase[];
  [field: string]: Json | VectorCase[];
}

export function vectorFile(name: string): VectorFile {
  return JSON.parse(readFileSync(join(VECTORS, name), "utf8")) as VectorFile;
}

/** Every case's `hex`, as bytes. */
export function vectorBytes(name: string): Uint8Array[] {
  return vectorFile(name).cases.map((c) => fromHex(c.hex));
}

/** A case's plain fields with {"hex"} byte strings turned back into Uint8Array. */
export const vectorFields = (c: VectorCase): Record<string, unknown> =>
  fromJson(c.fields as Json) as Record<string, unknown>;

/** A fixture file from ../shared/fixtures/nitro/; undefined when the folder is absent. */
export function nitroFixture(name: string): Uint8Array | undefined {
  if (!haveNitroFixtures) return undefined;
  const raw = readFileSync(join(NITRO_FIXTURES, name));
  return name.endsWith(".b64")
    ? new Uint8Array(Buffer.from(raw.toString("utf8").trim(), "base64"))
    : new Uint8Array(raw);
}

export const present = <T>(xs: (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined);
