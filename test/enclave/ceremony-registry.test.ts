/** Used session ids are remembered by time: as long as a session under the id could still be valid, never by count. */
import { describe, expect, it } from "vitest";
import { CeremonyRegistry } from "../../src/enclave/ceremony-registry.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";

const id = (n: number) => {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

describe("session id memory", () => {
  it("refuses a reused id until every phase deadline and the pending-share wait have passed", () => {
    let now = 1_000_000;
    const phaseMs = 1_000;
    const pendingMs = 5_000;
    const reg = new CeremonyRegistry(
      phaseMs,
      () => {},
      pendingMs,
      () => now,
    );
    reg.claim(id(1));
    const reused = () => reg.claim(id(1));
    expect(reused).toThrow(EnclaveError);
    expect(reused).toThrow(/already used/);
    // Four phases, each with its own deadline, plus the time the finished share may wait.
    now += 4 * phaseMs + pendingMs - 1;
    expect(reused).toThrow(/already used/);
    now += 1;
    expect(reused()).toBe("00000001".padEnd(64, "0"));
  });

  it("does not forget a recent id however many others arrive", () => {
    let now = 0;
    const reg = new CeremonyRegistry(
      100,
      () => {},
      0,
      () => now,
    );
    reg.claim(id(0));
    // Far more than the old count-based memory would have kept ordering-wise; time has not moved.
    for (let i = 1; i <= 250_000; i++) reg.claim(id(i));
    expect(() => reg.claim(id(0))).toThrow(/already used/);
    now += 400;
    expect(() => reg.claim(id(0))).not.toThrow();
  });
});
