/**
 * Test driver that keeps every party going independently, so a test can see
 * which party aborted and when (runPhases in src/dev/in-process.ts stops at the first error).
 */
import { inboxFor, type ProtocolMessage } from "../../src/shared/wire/protocol-message.ts";
import type { PhasedParty } from "../../src/dev/in-process.ts";

export type Stepper<F> = PhasedParty<F>;

export interface Outcome<F> {
  index: number;
  result?: F;
  error?: Error & { code?: string; party?: number | null };
  /** Phase at which it failed. */
  failedAt?: number;
}

export type Mutator = (phase: number, to: number, inbox: ProtocolMessage[]) => ProtocolMessage[];

export function drive<F>(parties: Stepper<F>[], mutate?: Mutator): Outcome<F>[] {
  const outcomes: Outcome<F>[] = parties.map((p) => ({ index: p.index }));
  let out: ProtocolMessage[] = [];
  for (let phase = 1; phase <= 4; phase++) {
    const next: ProtocolMessage[] = [];
    parties.forEach((p, k) => {
      const o = outcomes[k]!;
      if (o.error) return;
      let inbox = inboxFor(p.index, out);
      if (mutate && phase > 1) inbox = mutate(phase, p.index, inbox);
      try {
        if (phase === 1) next.push(...p.phase1());
        else if (phase === 2) next.push(...p.phase2(inbox));
        else if (phase === 3) next.push(...p.phase3(inbox));
        else o.result = p.phase4(inbox);
      } catch (e) {
        o.error = e as Outcome<F>["error"];
        o.failedAt = phase;
        p.close();
      }
    });
    out = next;
  }
  return outcomes;
}

/** A copy of `m` with one bit flipped at `pos` (counted from the start of the body when `inBody`). */
export function flipped(m: ProtocolMessage, pos: number, bit = 0): ProtocolMessage {
  const bytes = m.bytes.slice();
  bytes[pos % bytes.length]! ^= 1 << bit;
  return { ...m, bytes };
}
