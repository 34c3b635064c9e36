/**
 * The one instance of the DKLs23 wasm module, and the guard every call into
 * it goes through: the core's coded errors become DklsError, and a trap
 * ends the instance for the life of the process (the enclave exits).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as wasm from "./wasm/dkls23.js";
import { DklsError, type ErrorCode } from "./errors.ts";

let loaded = false;
let memory: WebAssembly.Memory | null = null;
/** Set by the first trap; from then on this process never calls the instance again. */
let trapped: string | null = null;
let trapHook: (() => void) | null = null;

/**
 * Registers what a trap does to the process. The enclave program exits
 * (after wiping what it can), so a trapped instance never serves again and
 * the host sees the channel drop. Without a hook (tests, the in-process
 * runner) every later call throws.
 */
export function onCoreTrap(hook: () => void): void {
  trapHook = hook;
}

/** Whether the core trapped in this process. */
export function coreTrapped(): boolean {
  return trapped !== null;
}

function refuseTrapped(): never {
  throw new Error(`dkls23 wasm core trapped earlier (${trapped}); it is not used again`);
}

/**
 * Instantiates the wasm module once. `bytes` lets a compiled binary pass the
 * module it embeds; by default it is read from beside this file. Refuses once
 * the core trapped: wasm-bindgen's initSync would hand back the trapped instance.
 */
export function loadDkls(bytes?: Uint8Array): void {
  if (trapped) refuseTrapped();
  if (loaded) return;
  const module =
    bytes ?? readFileSync(fileURLToPath(new URL("./wasm/dkls23_bg.wasm", import.meta.url)));
  memory = wasm.initSync({ module }).memory;
  if (wasm.wireVersion() !== 1)
    throw new Error(`wasm core speaks wire version ${wasm.wireVersion()}, expected 1`);
  loaded = true;
}

/**
 * The wasm-bindgen glue's own failures: a Rust object used while borrowed, or
 * a freed handle. They mean the instance's state is not what the binding
 * believes, which is as untrustworthy as a trap.
 */
const GLUE_FAILURE =
  /recursive use of an object|null pointer passed to rust|attempted to take ownership/;

/** Size of the instance's linear memory in bytes; it only grows (freed space is reused, never returned). */
export function wasmMemoryBytes(): number {
  if (!loaded) loadDkls();
  return (memory as WebAssembly.Memory).buffer.byteLength;
}

/** Runs `f` against the loaded core (loading it from disk if nobody did). */
export function call<T>(f: () => T): T {
  if (trapped) refuseTrapped();
  if (!loaded) loadDkls();
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && typeof (e as { code?: unknown }).code === "string") {
      const x = e as Error & { code: ErrorCode; party: number | null; ban: boolean };
      throw new DklsError(x.message, x.code, x.party ?? null, Boolean(x.ban));
    }
    if (
      e instanceof WebAssembly.RuntimeError ||
      (e instanceof Error && GLUE_FAILURE.test(e.message))
    ) {
      // A bug in the core; the instance can no longer be trusted, now or ever.
      trapped = e.message.slice(0, 200);
      loaded = false;
      trapHook?.();
      throw new Error(`dkls23 wasm core trapped: ${e.message}`);
    }
    throw e;
  }
}
