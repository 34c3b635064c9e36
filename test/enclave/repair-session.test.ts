/**
 * A share repair's term exchange (src/enclave/lifecycle-repair.ts
 * RepairSession), over the real core: t helpers of a 3-of-5 wallet each send
 * the target one term in a "repair" message; the target assembles a hollow
 * share that, after the complete refresh across all n, signs with every
 * quorum, while the lost holder's old share combines with none; the target
 * refuses fewer than t helpers, a term from a non-helper, helpers that
 * disagree about the package or policy, and a package that is not the one it
 * trusts. Sealing between enclaves is peer-envelope.ts's (tested there).
 */
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import {
  asParty,
  dkgInProcess,
  refreshInProcess,
  runPhases,
  signInProcess,
} from "../../src/dev/in-process.ts";
import {
  type KeyShare,
  loadDkls,
  Refresh,
  refreshFromHollow,
} from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { type RepairedParty, RepairSession } from "../../src/enclave/lifecycle-repair.ts";
import { ownShareState, ownShareStateOf } from "../../src/enclave/share-state.ts";
import { toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import {
  encodeMessageHeader,
  parseMessage,
  type ProtocolMessage,
} from "../../src/shared/wire/protocol-message.ts";
import {
  parseRepairTermBody,
  repairTargetDigest,
  RepairFormatError,
} from "../../src/shared/wire/repair.ts";

loadDkls();

const T = 3;
const N = 5;
const TARGET = 2;
const HELPERS = [1, 3, 4];
const POLICY = new Uint8Array(32).fill(0x77);
const channelKey = ed25519.utils.randomSecretKey();

function signs(shares: readonly KeyShare[], quorum: number[], publicKey: Uint8Array): boolean {
  const digest = randomBytes(32);
  try {
    return verifySignature(publicKey, digest, signInProcess(shares, quorum, digest)[0]!);
  } catch {
    return false;
  }
}

function helperSession(
  shares: readonly KeyShare[],
  me: number,
  sessionId: Uint8Array,
  policyHash = POLICY,
): RepairSession {
  return new RepairSession({
    me,
    target: TARGET,
    helpers: HELPERS,
    threshold: T,
    parties: N,
    sessionId,
    share: shares[me - 1]!,
    policyHash,
  });
}

function targetSession(
  sessionId: Uint8Array,
  trustedPackage?: Uint8Array,
  expectedPolicyHash?: Uint8Array,
): RepairSession {
  return new RepairSession({
    me: TARGET,
    target: TARGET,
    helpers: HELPERS,
    threshold: T,
    parties: N,
    sessionId,
    ...(trustedPackage ? { trustedPackage } : {}),
    ...(expectedPolicyHash ? { expectedPolicyHash } : {}),
  });
}

/** Every helper's phase-1 message, re-parsed from its bytes as the target's host would deliver it. */
function terms(shares: readonly KeyShare[], sessionId: Uint8Array): ProtocolMessage[] {
  return HELPERS.flatMap((h) => helperSession(shares, h, sessionId).phase1()).map((m) =>
    parseMessage(m.bytes),
  );
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof EnclaveError) return e.code;
    return `not an EnclaveError: ${String(e)}`;
  }
  return "not refused";
}

describe("repair session", () => {
  it("rebuilds the lost party on the target; after the complete refresh it signs and the lost copy combines with nothing", () => {
    const shares = dkgInProcess(T, N);
    const publicKey = shares[0]!.publicKey;
    const sessionId = randomBytes(32);
    const out = terms(shares, sessionId);
    expect(out.map((m) => [m.ceremony, m.phase, m.from, m.to])).toEqual(
      HELPERS.map((h) => ["repair", 1, h, TARGET]),
    );
    const target = targetSession(sessionId, shares[0]!.publicPackage(), POLICY);
    expect(target.phase1()).toEqual([]);
    expect(target.phase2(out)).toEqual([]);
    expect(target.phase3([])).toEqual([]);
    const repaired = target.phase4([]) as RepairedParty;
    expect(repaired.hollow.index).toBe(TARGET);
    expect(toHex(repaired.hollow.publicKey)).toBe(toHex(publicKey));
    expect(toHex(repaired.policyHash)).toBe(toHex(POLICY));
    expect(toHex(repaired.publicPackage)).toBe(toHex(shares[0]!.publicPackage()));
    // Its share-state statement for the refresh says what the lost holder's would have said.
    const sign = (m: Uint8Array) => ed25519.sign(m, channelKey);
    const refreshId = randomBytes(32);
    const stated = ownShareStateOf(
      sign,
      refreshId,
      "refresh",
      "w",
      repaired.hollow,
      repaired.publicPackage,
      null,
    );
    expect(stated.state).toEqual(
      ownShareState(sign, refreshId, "refresh", "w", shares[TARGET - 1]!, null).state,
    );

    const fresh = runPhases(
      shares.map((share) =>
        share.index === TARGET
          ? asParty(TARGET, refreshFromHollow({ hollow: repaired.hollow, sessionId: refreshId }))
          : asParty(share.index, new Refresh({ share, sessionId: refreshId })),
      ),
    );
    // (a) quorums with the new holder sign.
    expect(signs(fresh, [1, 2, 3], publicKey)).toBe(true);
    expect(signs(fresh, [2, 4, 5], publicKey)).toBe(true);
    // (b) the lost holder's old share combines with no current one.
    expect(signs([fresh[0]!, shares[1]!, fresh[2]!], [1, 2, 3], publicKey)).toBe(false);
    // (c) a refresh of all n works again.
    expect(signs(refreshInProcess(fresh), [3, 4, 5], publicKey)).toBe(true);
  });

  it("helpers never send anything but their term to the target, and the target never sends", () => {
    const shares = dkgInProcess(T, N);
    const sessionId = randomBytes(32);
    const [m] = helperSession(shares, 1, sessionId).phase1();
    const body = parseRepairTermBody(m!.bytes.subarray(37));
    expect(toHex(body.publicPackage)).toBe(toHex(shares[0]!.publicPackage()));
    expect(toHex(body.policyHash)).toBe(toHex(POLICY));
    expect(targetSession(sessionId).phase1()).toEqual([]);
  });

  it("refuses fewer than t helpers, a target among the helpers, and a helper without its share", () => {
    const shares = dkgInProcess(T, N);
    const sessionId = randomBytes(32);
    const base = { target: TARGET, threshold: T, parties: N, sessionId };
    expect(refusal(() => new RepairSession({ ...base, me: TARGET, helpers: [1, 3] }))).toBe(
      "bad_request",
    );
    expect(refusal(() => new RepairSession({ ...base, me: TARGET, helpers: [1, 2, 3] }))).toBe(
      "bad_request",
    );
    expect(refusal(() => new RepairSession({ ...base, me: TARGET, helpers: [3, 1, 4] }))).toBe(
      "bad_request",
    );
    expect(refusal(() => new RepairSession({ ...base, me: 1, helpers: HELPERS }))).toBe(
      "bad_request",
    );
    expect(
      refusal(
        () =>
          new RepairSession({
            ...base,
            me: 1,
            helpers: HELPERS,
            share: shares[2]!,
            policyHash: POLICY,
          }),
      ),
    ).toBe("bad_request");
  });

  it("the target refuses a missing term, a term from a non-helper, and terms from another repair", () => {
    const shares = dkgInProcess(T, N);
    const sessionId = randomBytes(32);
    const out = terms(shares, sessionId);
    expect(refusal(() => targetSession(sessionId).phase2(out.slice(0, 2)))).toBe("ceremony_failed");
    // Helper 4's term relabelled as party 5's.
    const relabelled = out[2]!.bytes.slice();
    relabelled.set(
      encodeMessageHeader({ ceremony: "repair", phase: 1, from: 5, to: TARGET, sessionId }),
      0,
    );
    expect(
      refusal(() => targetSession(sessionId).phase2([out[0]!, out[1]!, parseMessage(relabelled)])),
    ).toBe("ceremony_failed");
    // Terms bound to another repair id do not assemble under this one.
    const other = terms(shares, randomBytes(32));
    expect(refusal(() => targetSession(sessionId).phase2(other))).toBe("ceremony_failed");
  });

  it("the target refuses helpers that disagree about the package or policy, and a package it does not trust", () => {
    const shares = dkgInProcess(T, N);
    const refreshed = refreshInProcess(shares);
    const sessionId = randomBytes(32);
    // Helper 4 is a generation ahead of the others (or they are stale).
    const mixed = [
      ...helperSession(shares, 1, sessionId).phase1(),
      ...helperSession(shares, 3, sessionId).phase1(),
      ...helperSession(refreshed, 4, sessionId).phase1(),
    ];
    expect(refusal(() => targetSession(sessionId).phase2(mixed))).toBe("ceremony_failed");
    const otherPolicy = [
      ...helperSession(shares, 1, sessionId).phase1(),
      ...helperSession(shares, 3, sessionId).phase1(),
      ...helperSession(shares, 4, sessionId, new Uint8Array(32).fill(1)).phase1(),
    ];
    expect(refusal(() => targetSession(sessionId).phase2(otherPolicy))).toBe("ceremony_failed");
    // All three agree, but on a policy other than the one the target checked the approval under.
    expect(
      refusal(() =>
        targetSession(sessionId, undefined, new Uint8Array(32).fill(2)).phase2(
          terms(shares, sessionId),
        ),
      ),
    ).toBe("ceremony_failed");
    // All three agree, but on a generation the target was not told to trust.
    expect(
      refusal(() =>
        targetSession(sessionId, refreshed[0]!.publicPackage()).phase2(terms(shares, sessionId)),
      ),
    ).toBe("ceremony_failed");
  });
});

describe("repair target digest", () => {
  it("binds the party and the target's PCR4, and nothing else has its shape", () => {
    const pcr4 = new Uint8Array(48).fill(0xa4);
    const d = toHex(repairTargetDigest(2, pcr4));
    expect(d).toHaveLength(64);
    expect(toHex(repairTargetDigest(3, pcr4))).not.toBe(d);
    expect(toHex(repairTargetDigest(2, new Uint8Array(48).fill(0xa5)))).not.toBe(d);
    expect(() => repairTargetDigest(0, pcr4)).toThrow(RepairFormatError);
    expect(() => repairTargetDigest(2, new Uint8Array(32))).toThrow(RepairFormatError);
  });
});
