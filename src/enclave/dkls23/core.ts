/**
 * The one instance of the DKLs23 wasm module, and the guard every call into
 * it goes through: the core's coded errors become DklsError, and a trap
 * discards the instance.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as wasm from "./wasm/dkls23.js";
import { DklsError, type ErrorCode } from "./errors.ts";

let loaded = false;

/**
 * Instantiates the wasm module once. `bytes` lets a compiled binary pass the
 * module it embeds; by default it is read from beside this file.
 */
export function loadDkls(bytes?: Uint8Array): void {
  if (loaded) return;
  const module =
    bytes ?? readFileSync(fileURLToPath(new URL("./wasm/dkls23_bg.wasm", import.meta.url)));
  wasm.initSync({ module });
  if (wasm.wireVersion() !== 1)
    throw new Error(`wasm core speaks wire version ${wasm.wireVersion()}, expected 1`);
  loaded = true;
}

/** Runs `f` against the loaded core (loading it from disk if nobody did). */
export function call<T>(f: () => T): T {
  if (!loaded) loadDkls();
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && typeof (e as { code?: unknown }).code === "string") {
      const x = e as Error & { code: ErrorCode; party: number | null; ban: boolean };
      throw new DklsError(x.message, x.code, x.party ?? null, Boolean(x.ban));
    }
    if (e instanceof WebAssembly.RuntimeError) {
      // A trap means a bug in the core; the instance can no longer be trusted.
      loaded = false;
      throw new Error(`dkls23 wasm core trapped: ${e.message}`);
    }
    throw e;
  }
}
