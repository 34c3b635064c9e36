import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { dkgInProcess, signInProcess } from "../../src/dev/in-process.ts";
import { Dkg, DklsError } from "../../src/enclave/dkls23/binding.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { toHex } from "../../src/shared/hex.ts";

describe.each([
  [2, 2, [[1, 2]]],
  [
    2,
    3,
    [
      [1, 2],
      [1, 3],
      [2, 3],
    ],
  ],
  [5, 5, [[1, 2, 3, 4, 5]]],
])("%i-of-%i", (t, n, quorums) => {
  it("runs DKG and every listed quorum signs", () => {
    const shares = dkgInProcess(t, n);
    expect(new Set(shares.map((s) => toHex(s.publicKey))).size).toBe(1);
    for (const q of quorums) {
      const digest = randomBytes(32);
      const [sig] = signInProcess(shares, q, digest);
      expect(verifySignature(shares[0]!.publicKey, digest, sig!)).toBe(true);
    }
    for (const s of shares) s.free();
  });
});

describe("parameter validation", () => {
  const sid = new Uint8Array(32);
  it.each([
    [1, 3, 1, /2 <= t <= n <= 16/],
    [4, 3, 1, /2 <= t <= n <= 16/],
    [3, 17, 1, /2 <= t <= n <= 16/],
    [2, 3, 0, /outside 1..=3/],
    [2, 3, 4, /outside 1..=3/],
  ])("t=%i n=%i index=%i is refused", (t, n, i, re) => {
    let err: unknown;
    try {
      new Dkg({ threshold: t, parties: n, index: i, sessionId: sid });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DklsError);
    expect((err as DklsError).code).toBe("invalid_parameters");
    expect((err as DklsError).message).toMatch(re);
  });

  it("refuses a session id that is not 32 bytes", () => {
    expect(
      () => new Dkg({ threshold: 2, parties: 3, index: 1, sessionId: new Uint8Array(31) }),
    ).toThrow(/32 bytes/);
  });

  it("accepts 16 parties, the upper bound (phase 1 only: a full 16-party DKG is too slow for a unit test)", () => {
    const d = new Dkg({ threshold: 9, parties: 16, index: 16, sessionId: sid });
    expect(d.phase1()).toHaveLength(15);
    d.close();
  });

  it("refuses phases out of order, and anything after close", () => {
    const d = new Dkg({ threshold: 2, parties: 2, index: 1, sessionId: sid });
    expect(() => d.phase2([])).toThrow(/phase 2 called after phase 0/);
    // Fail closed: the session is gone after the error.
    expect(() => d.phase1()).toThrow(/closed/);
  });
});
