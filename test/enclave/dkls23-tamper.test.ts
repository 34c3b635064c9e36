/**
 * A message tampered with in any phase makes the receiving party abort with
 * an error, never a wrong result; replays, duplicates and omissions too.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { asParty, dkgInProcess } from "../../src/dev/in-process.ts";
import { Dkg, Refresh, Signing, type KeyShare } from "../../src/enclave/dkls23/binding.ts";
import { HEADER_LEN, type ProtocolMessage } from "../../src/shared/wire/protocol-message.ts";
import { verifySignature, type Signature } from "../../src/shared/signature.ts";
import { drive, flipped, type Mutator, type Outcome, type Stepper } from "../helpers/drive.ts";

type Kind = "dkg" | "sign" | "refresh";
let small: KeyShare[]; // 2-of-3: DKG and refresh cost is dominated by OT setup per pair
let sign3: KeyShare[]; // 3-of-4 wallet for signing with 3 parties

beforeAll(() => {
  small = dkgInProcess(2, 3);
  sign3 = dkgInProcess(3, 4);
});

function parties(kind: Kind): Stepper<unknown>[] {
  const sessionId = randomBytes(32);
  if (kind === "dkg")
    return [1, 2, 3].map((i) =>
      asParty(i, new Dkg({ threshold: 2, parties: 3, index: i, sessionId })),
    );
  if (kind === "refresh")
    return small.map((share) => asParty(share.index, new Refresh({ share, sessionId })));
  const digest = randomBytes(32);
  return [1, 2, 4].map((i) =>
    Object.assign(new Signing({ share: sign3[i - 1]!, sessionId, parties: [1, 2, 4], digest }), {
      index: i,
      digest,
    }),
  );
}

/**
 * Party 1 must fail at or after `phase`. Parties whose own inputs were honest
 * may still finish (the session layer drops the whole session on any abort),
 * but nothing anyone outputs may be a wrong signature.
 */
function expectReceiverAborts(
  kind: Kind,
  outcomes: Outcome<unknown>[],
  phase: number,
  pk?: Uint8Array,
  digest?: Uint8Array,
) {
  const p1 = outcomes.find((o) => o.index === 1)!;
  expect(p1.error, `${kind}: party 1 accepted a tampered phase-${phase - 1} message`).toBeDefined();
  expect(p1.result).toBeUndefined();
  expect(p1.failedAt!).toBeGreaterThanOrEqual(phase);
  expect(p1.error!.name).toBe("DklsError");
  if (kind === "sign")
    for (const o of outcomes)
      if (o.result) expect(verifySignature(pk!, digest!, o.result as Signature)).toBe(true);
}

const onlyTo1 =
  (phase: number, f: (inbox: ProtocolMessage[]) => ProtocolMessage[]): Mutator =>
  (p, to, inbox) =>
    p === phase && to === 1 ? f(inbox) : inbox;

describe.each(["dkg", "sign", "refresh"] as Kind[])("%s", (kind) => {
  it("runs honestly through the test driver", () => {
    const outs = drive(parties(kind));
    expect(outs.every((o) => o.result !== undefined && !o.error)).toBe(true);
  });

  for (const phase of [2, 3, 4]) {
    it(`aborts on a flipped body bit in a phase-${phase - 1} message (2 positions)`, () => {
      for (const seed of [3, 11]) {
        const ps = parties(kind);
        const digest = (ps[0] as unknown as { digest?: Uint8Array }).digest;
        const outs = drive(
          ps,
          onlyTo1(phase, (inbox) =>
            inbox.map((m, k) =>
              k === seed % inbox.length
                ? flipped(m, HEADER_LEN + ((seed * 7919) % (m.bytes.length - HEADER_LEN)), seed % 8)
                : m,
            ),
          ),
        );
        expectReceiverAborts(
          kind,
          outs,
          phase,
          kind === "sign" ? sign3[0]!.publicKey : undefined,
          digest,
        );
      }
    });
  }

  it("aborts on header tampering, a missing message, a duplicate and a cross-session replay", () => {
    const mutations: ((inbox: ProtocolMessage[]) => ProtocolMessage[])[] = [
      (ib) => ib.map((m, k) => (k === 0 ? flipped(m, 5 + 3) : m)), // session id
      (ib) => ib.map((m, k) => (k === 0 ? flipped(m, 2, 2) : m)), // phase
      (ib) => ib.map((m, k) => (k === 0 ? flipped(m, 3, 1) : m)), // sender
      (ib) => ib.slice(1),
      (ib) => [...ib, ib[0]!],
    ];
    for (const mutate of mutations) {
      const outs = drive(parties(kind), onlyTo1(2, mutate));
      expectReceiverAborts(kind, outs, 2);
      expect(outs[0]!.error!.message).toMatch(
        /another session|phase|expected|missing|duplicate|not a participant|addressed/,
      );
    }
    // Replay: phase-1 messages recorded in one session, delivered in another.
    const recorded: ProtocolMessage[] = [];
    drive(parties(kind), (p, to, inbox) => (p === 2 && to === 1 && recorded.push(...inbox), inbox));
    const outs = drive(
      parties(kind),
      onlyTo1(2, () => recorded),
    );
    expectReceiverAborts(kind, outs, 2);
    expect(outs[0]!.error!.message).toMatch(/another session/);
  });
});
