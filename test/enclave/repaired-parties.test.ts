/**
 * The holder of repaired parties between a repair and its refresh
 * (src/enclave/repaired-parties.ts), with real hollow shares: handed over
 * once, only to the refresh naming its repair session; a newer repair of the
 * wallet, expiry and a full holder free what they drop.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dkgInProcess } from "../../src/dev/in-process.ts";
import { loadDkls, repairAssemble, repairTerm } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { RepairedParty } from "../../src/enclave/lifecycle-repair.ts";
import { RepairedParties } from "../../src/enclave/repaired-parties.ts";

loadDkls();

const shares = dkgInProcess(2, 3);
const publicPackage = shares[0]!.publicPackage();

function repaired(): RepairedParty {
  const repairId = randomBytes(32);
  const helpers = [1, 2];
  const terms = helpers.map((h) => ({
    from: h,
    term: repairTerm(shares[h - 1]!, { helpers, target: 3, repairId }),
  }));
  return {
    hollow: repairAssemble({ publicPackage, target: 3, repairId, terms }),
    publicPackage,
    policyHash: new Uint8Array(32),
  };
}

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return e instanceof EnclaveError ? e.code : String(e);
  }
  return "accepted";
};
const freed = (p: RepairedParty) => code(() => p.hollow.index) !== "accepted";

describe("repaired parties", () => {
  it("hands a party over once, and only to the refresh of its repair", () => {
    const held = new RepairedParties();
    const p = repaired();
    const id = randomBytes(32);
    held.put("w1", id, p);
    expect(code(() => held.take("w1", randomBytes(32)))).toBe("share_not_loaded");
    expect(code(() => held.take("w2", id))).toBe("share_not_loaded");
    expect(held.take("w1", id)).toBe(p);
    expect(code(() => held.take("w1", id))).toBe("share_not_loaded");
    expect(p.hollow.index).toBe(3);
    p.hollow.free();
  });

  it("frees what a newer repair, expiry or a full holder drops", () => {
    let now = 0;
    const held = new RepairedParties({ capacity: 1, ttlMs: 1000, now: () => now });
    const older = repaired();
    const newer = repaired();
    held.put("w1", randomBytes(32), older);
    held.put("w1", randomBytes(32), newer);
    expect(freed(older)).toBe(true);
    expect(freed(newer)).toBe(false);
    const refused = repaired();
    expect(code(() => held.put("w2", randomBytes(32), refused))).toBe("capacity_exceeded");
    expect(freed(refused)).toBe(true);
    now = 1000;
    expect(held.size).toBe(0);
    expect(freed(newer)).toBe(true);
  });
});
