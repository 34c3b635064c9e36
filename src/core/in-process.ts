/**
 * Runs whole ceremonies for several parties inside one process, routing
 * messages in memory. For the demo (before the cluster exists), tests and the
 * core benchmark; the node layers drive the same phase API across processes.
 */
import { randomBytes } from "node:crypto";
import { Dkg, Refresh, Signing, KeyShare } from "./dkls.ts";
import { inboxFor, type ProtocolMessage } from "../shared/protocol-message.ts";
import type { Signature } from "../shared/signature.ts";

interface Party<F> {
  index: number;
  phase1(): ProtocolMessage[];
  phase2(r: ProtocolMessage[]): ProtocolMessage[];
  phase3(r: ProtocolMessage[]): ProtocolMessage[];
  phase4(r: ProtocolMessage[]): F;
  close(): void;
}

/** Hook for tests: rewrite what party `to` receives before phase `phase`. */
export type Interceptor = (phase: number, to: number, inbox: ProtocolMessage[]) => ProtocolMessage[];

/** Drives all parties phase by phase; on any error every session is closed. */
export function runPhases<F>(parties: Party<F>[], intercept?: Interceptor): F[] {
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

function bind<F>(index: number, s: { phase1(): ProtocolMessage[]; phase2(r: ProtocolMessage[]): ProtocolMessage[]; phase3(r: ProtocolMessage[]): ProtocolMessage[]; phase4(r: ProtocolMessage[]): F; close(): void }): Party<F> {
  return {
    index,
    phase1: () => s.phase1(),
    phase2: (r) => s.phase2(r),
    phase3: (r) => s.phase3(r),
    phase4: (r) => s.phase4(r),
    close: () => s.close(),
  };
}

export function dkgInProcess(threshold: number, parties: number, intercept?: Interceptor): KeyShare[] {
  const sessionId = randomBytes(32);
  const all = Array.from({ length: parties }, (_, i) => bind(i + 1, new Dkg({ threshold, parties, index: i + 1, sessionId })));
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
    return bind(i, new Signing({ share, sessionId, parties: signers, digest, path: opts.path }));
  });
  return runPhases(all, opts.intercept);
}

export function refreshInProcess(shares: readonly KeyShare[], intercept?: Interceptor): KeyShare[] {
  const sessionId = randomBytes(32);
  const all = shares.map((share) => bind(share.index, new Refresh({ share, sessionId })));
  return runPhases(all, intercept);
}
