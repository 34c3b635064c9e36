/**
 * A reshare to a new committee (src/enclave/lifecycle-reshare.ts
 * ReshareCeremony over the real core, dkls23/sessions.ts Reshare): a 2-of-3
 * wallet reshared to 2-of-4 keeps its key, quorums with the new member sign,
 * an old share combines with no new ones; a new member trusts the old package
 * only when every dealer's signed statement names it, and the core refuses
 * fewer dealers than the old threshold. Sealing between enclaves is
 * peer-envelope.ts's; approvals are checked at start (ceremonies.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { asParty, dkgInProcess, runPhases, signInProcess } from "../../src/dev/in-process.ts";
import { type KeyShare, loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { checkReshareShape, ReshareCeremony } from "../../src/enclave/lifecycle-reshare.ts";
import { ownShareStateOf } from "../../src/enclave/share-state.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { reshareCommitteeDigest, reshareStatementTag } from "../../src/shared/wire/reshare.ts";

loadDkls();

/**
 * One 2-of-3 wallet for every test: small, since the core runs every party in this process
 * (3-of-5 to 3-of-6 to 4-of-6: test/integration/wallet-reshare.test.ts).
 */
let three: KeyShare[] | undefined;
const twoOfThree = () => (three ??= dkgInProcess(2, 3));

const POLICY = new Uint8Array(32).fill(0x55);
const WALLET = "w_reshare";
const keys = Array.from({ length: 7 }, () => ed25519.utils.randomSecretKey());
const peerKeys = new Map(keys.map((k, i) => [i + 1, ed25519.getPublicKey(k)]));

function signs(shares: readonly KeyShare[], quorum: number[], publicKey: Uint8Array): boolean {
  const digest = randomBytes(32);
  try {
    return verifySignature(publicKey, digest, signInProcess(shares, quorum, digest)[0]!);
  } catch {
    return false;
  }
}

/** Each dealer's signed share-state statement of `old`'s share, naming session `tag`. */
function dealerStatements(old: readonly KeyShare[], dealers: number[], tag: Uint8Array) {
  return dealers.map(
    (d) =>
      ownShareStateOf(
        (m) => ed25519.sign(m, keys[d - 1]!),
        tag,
        "reshare",
        WALLET,
        { index: d, generation: old[d - 1]!.generation },
        old[0]!.publicPackage(),
        { hash: POLICY } as never,
      ).signed,
  );
}

/** Runs the reshare of `old` (dealers at seats = their old indices) to t-of-n; `tamper` edits what each member is given. */
function reshare(
  old: readonly KeyShare[],
  t: number,
  n: number,
  opts: { givenPackage?: (seat: number) => Uint8Array; dealers?: number[] } = {},
): KeyShare[] {
  const sessionId = randomBytes(32);
  const dealers = opts.dealers ?? old.map((s) => s.index);
  const pkg = old[0]!.publicPackage();
  const members = Array.from({ length: n }, (_, k) => {
    const seat = k + 1;
    const share = dealers.includes(seat) ? old[seat - 1] : undefined;
    return new ReshareCeremony({
      me: seat,
      dealers,
      seats: dealers,
      threshold: t,
      parties: n,
      sessionId,
      walletId: WALLET,
      publicPackage: share ? pkg : (opts.givenPackage?.(seat) ?? pkg),
      policyHash: POLICY,
      ...(share ? { share } : {}),
    });
  });
  // Each dealer's own start seats the dealers as its ceremony does (reshare.ts reshareStatementTag).
  const tag = reshareStatementTag({ sessionId, dealers, seats: dealers, threshold: t, parties: n });
  const statements = dealerStatements(old, dealers, tag);
  members.forEach((m, k) =>
    m.checkStates(
      statements.filter((_, i) => dealers[i] !== k + 1),
      peerKeys,
    ),
  );
  return runPhases(members.map((m, k) => asParty(k + 1, m)));
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof EnclaveError ? e.code : `${(e as { code?: string }).code ?? e}`;
  }
  return "not refused";
}

describe("reshare session", () => {
  it("2-of-3 to 2-of-4 keeps the key, quorums with the new member sign, an old share combines with none", () => {
    const old = twoOfThree();
    const key = old[0]!.publicKey;
    const next = reshare(old, 2, 4);
    expect(next.map((s) => [s.index, s.threshold, s.parties, s.generation])).toEqual(
      [1, 2, 3, 4].map((i) => [i, 2, 4, old[0]!.generation + 1]),
    );
    expect(next.every((s) => Buffer.from(s.publicKey).equals(Buffer.from(key)))).toBe(true);
    expect(signs(next, [1, 4], key)).toBe(true);
    expect(signs(next, [3, 4], key)).toBe(true);
    // Party 1's pre-reshare share with a post-reshare one: no signature.
    const mixed = [old[0]!, ...next.slice(1)];
    expect(signs(mixed, [1, 4], key)).toBe(false);
  });

  it("a new member refuses a package no dealer stated, before its core reads anything", () => {
    const old = twoOfThree();
    // Another wallet's package: what a lying host could hand a new member.
    const other = dkgInProcess(2, 3)[0]!.publicPackage();
    expect(code(() => reshare(old, 2, 4, { givenPackage: () => other }))).toBe("ceremony_failed");
  });

  it("a member that skips the statement check never runs phase 2", () => {
    const old = twoOfThree();
    const m = new ReshareCeremony({
      me: 4,
      dealers: [1, 2, 3],
      seats: [1, 2, 3],
      threshold: 2,
      parties: 4,
      sessionId: randomBytes(32),
      walletId: WALLET,
      publicPackage: old[0]!.publicPackage(),
      policyHash: POLICY,
    });
    m.phase1();
    expect(code(() => m.phase2([]))).toBe("ceremony_failed");
  });

  it("fewer dealers than the old threshold are refused", () => {
    expect(
      code(() =>
        checkReshareShape({
          me: 1,
          dealers: [1, 2],
          seats: [1, 2],
          threshold: 3,
          parties: 6,
          oldThreshold: 3,
        }),
      ),
    ).toBe("bad_request");
    // And the core refuses them too, whatever the host's shape check.
    expect(code(() => reshare(twoOfThree(), 2, 4, { dealers: [1] }))).not.toBe("not refused");
  });

  it("a member seated otherwise than the dealers' own starts refuses their statements, blaming no one", () => {
    const old = twoOfThree();
    const sessionId = randomBytes(32);
    const pkg = old[0]!.publicPackage();
    // The dealers' starts: all three deal. Seat 4's start (a coordinator's other story): only
    // dealers 1 and 2, whose weights would then refuse dealer 1's honest commitment.
    const tag = reshareStatementTag({
      sessionId,
      dealers: [1, 2, 3],
      seats: [1, 2, 3],
      threshold: 2,
      parties: 4,
    });
    const statements = dealerStatements(old, [1, 2], tag);
    const m = new ReshareCeremony({
      me: 4,
      dealers: [1, 2],
      seats: [1, 2],
      threshold: 2,
      parties: 4,
      sessionId,
      walletId: WALLET,
      publicPackage: pkg,
      policyHash: POLICY,
    });
    let refused: unknown;
    try {
      m.checkStates(statements, peerKeys);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(EnclaveError);
    expect((refused as EnclaveError).code).toBe("ceremony_failed");
    expect((refused as EnclaveError).message).toContain("seats the dealers otherwise");
    expect((refused as EnclaveError).blame.party ?? null).toBeNull();
  });

  it("the committee digest names the generation, t and the machines, not the seat order", () => {
    const a = { nodeId: "node-a", pcr4: new Uint8Array(48).fill(1) };
    const b = { nodeId: "node-b", pcr4: new Uint8Array(48).fill(2) };
    const c = { nodeId: "node-c", pcr4: new Uint8Array(48).fill(3) };
    const d = reshareCommitteeDigest(5, 2, [a, b, c]);
    expect(reshareCommitteeDigest(5, 2, [c, a, b])).toEqual(d);
    expect(reshareCommitteeDigest(5, 3, [a, b, c])).not.toEqual(d);
    // One approval, one transition: the same committee from the next generation is another digest.
    expect(reshareCommitteeDigest(6, 2, [a, b, c])).not.toEqual(d);
    expect(
      reshareCommitteeDigest(5, 2, [a, b, { ...c, pcr4: new Uint8Array(48).fill(4) }]),
    ).not.toEqual(d);
    expect(() => reshareCommitteeDigest(5, 2, [a, b, { ...c, pcr4: a.pcr4 }])).toThrow();
    expect(() => reshareCommitteeDigest(-1, 2, [a, b, c])).toThrow();
    // The layout the SDK and every enclave compute (reshare.ts), byte for byte.
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const label = Buffer.from("tss-reshare-v1");
    const member = (m: typeof a) => [u32(m.nodeId.length), Buffer.from(m.nodeId), u32(48), m.pcr4];
    const expected = createHash("sha256")
      .update(
        Buffer.concat([
          u32(label.length),
          label,
          u32(5),
          Uint8Array.of(2, 3),
          ...[a, b, c].flatMap(member),
        ]),
      )
      .digest();
    expect(Buffer.from(d).equals(expected)).toBe(true);
  });
});
