/**
 * Trapped means dead: after a trap (or a failure of the wasm-bindgen glue)
 * the core is never called again in this process; the enclave program's
 * hook exits it. This file has its own worker (vitest isolates test files),
 * because the trap it provokes ends the core for the rest of the process.
 */
import { describe, expect, it } from "vitest";
import { DklsError, KeyShare } from "../../src/enclave/dkls23/binding.ts";
import { call, coreTrapped, loadDkls, onCoreTrap } from "../../src/enclave/dkls23/core.ts";

describe("a trapped DKLs23 core", () => {
  it("calls the trap hook once and then refuses every use, loading included", () => {
    let hooked = 0;
    onCoreTrap(() => hooked++);
    // Coded and ordinary errors are not traps.
    expect(() => KeyShare.fromBytes(new Uint8Array(10))).toThrow(DklsError);
    expect(() =>
      call(() => {
        throw new TypeError("an ordinary error");
      }),
    ).toThrow(TypeError);
    expect(coreTrapped()).toBe(false);
    expect(hooked).toBe(0);

    expect(() =>
      call(() => {
        throw new WebAssembly.RuntimeError("unreachable");
      }),
    ).toThrow(/trapped: unreachable/);
    expect(coreTrapped()).toBe(true);
    expect(hooked).toBe(1);
    // wasm-bindgen's initSync would hand back the trapped instance: loading is refused too.
    expect(() => loadDkls()).toThrow(/trapped earlier/);
    expect(() => KeyShare.fromBytes(new Uint8Array(10))).toThrow(/trapped earlier/);
    expect(hooked).toBe(1);
  });
});
