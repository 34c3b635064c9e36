/**
 * The DKLs23 wasm as an asset of the enclave program: `type: "file"` makes
 * Bun embed it in a bundle or compiled binary and give its path. Kept apart
 * from program.ts because only Bun understands this import (vitest does not).
 */
// TypeScript sees wasm-bindgen's .d.ts instead of a path, hence the cast.
import wasmAsset from "./dkls23/wasm/dkls23_bg.wasm" with { type: "file" };
import { isAbsolute, join } from "node:path";

/** The wasm core's bytes: embedded in a compiled binary, beside the code in a bundle. */
export function readEnclaveWasm(): Promise<Uint8Array> {
  const asset = wasmAsset as unknown as string;
  // In a bundle the path is relative to the bundle's own folder.
  return Bun.file(isAbsolute(asset) ? asset : join(import.meta.dir, asset)).bytes();
}
