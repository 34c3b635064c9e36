/**
 * Runs whole ceremonies for several parties inside one process, routing
 * messages in memory. For the demo (before the cluster exists), tests and the
 * core benchmark; the node layers drive the same phase API across processes.
 */
import { randomBytes } from "node:crypto";
import { Dkg, Refresh, Signing, KeyShare } from "../enclave/dkls23/binding.ts";
import { inboxFor, type ProtocolMessage } from "../shared/wire/protocol-message.ts";
import type { Signature } from "../shared/signature.ts";

/** A ceremony session of one party, whichever the ceremony: what the runners drive. */
export interface PhasedParty<F> {
  index: number;
  phase1(): ProtocolMessage[];
  phase2(r: ProtocolMessage[]): ProtocolMessage[];
  phase3(r: ProtocolMessage[]): ProtocolMessage[];
  phase4(r: ProtocolMessage[]): F;
  close(): void;
}

/** Hook for tests: rewrite what party `to` receives before phase `phase`. */
export type Interceptor = (
  phase: number,
  to: number,
  inbox: ProtocolMessage[],
) => ProtocolMessage[];

/** Drives all parties phase by phase; on any error every session is closed. */
export function runPhases<F>(parties: PhasedParty<F>[], intercept?: Interceptor): F[] {
  try {
    let out: ProtocolMessage[] = parties.flatMap((p) => p.phase1());
    for (const phase of [2, 3] as const) {
      out = parties.flatMap((p) => {
        let inbox = inboxFor(p.index, out);
        if (intercept) inbox = intercept(phase, p.index, inbox);
        return phase === 2 ? p.phase2(inbox) : p.phase3(inbox);
      });
    }
    return parties.map((p) => {
      let inbox = inboxFor(p.index, out);
      if (intercept) inbox = intercept(4, p.index, inbox);
      return p.phase4(inbox);
    });
  } finally {
    for (const p of parties) p.close();
  }
}

/** A session tagged with its party index. */
export function asParty<F>(index: number, s: Omit<PhasedParty<F>, "index">): PhasedParty<F> {
  return Object.assign(s, { index });
}

export function dkgInProcess(
  threshold: number,
  parties: number,
  intercept?: Interceptor,
): KeyShare[] {
  const sessionId = randomBytes(32);
  const all = Array.from({ length: parties }, (_, i) =>
    asParty(i + 1, new Dkg({ threshold, parties, index: i + 1, sessionId })),
  );
  return runPhases(all, intercept);
}

/** `shares` indexed by party index - 1; `signers` the t party indices. */
export function signInProcess(
  shares: readonly KeyShare[],
  signers: readonly number[],
  digest: Uint8Array,
  opts: { path?: string; intercept?: Interceptor } = {},
): Signature[] {
  const sessionId = randomBytes(32);
  const all = signers.map((i) => {
    const share = shares[i - 1];
    if (!share) throw new Error(`no share for party ${i}`);
    return asParty(i, new Signing({ share, sessionId, parties: signers, digest, path: opts.path }));
  });
  return runPhases(all, opts.intercept);
}

export function refreshInProcess(shares: readonly KeyShare[], intercept?: Interceptor): KeyShare[] {
  const sessionId = randomBytes(32);
  const all = shares.map((share) => asParty(share.index, new Refresh({ share, sessionId })));
  return runPhases(all, intercept);
}
