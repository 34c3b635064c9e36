/**
 * The enclave's public counters, carried in its HEALTH reply (enclave-ops.ts HealthReply) so the
 * host can export them (src/host/metrics.ts) without the enclave opening a network port.
 *
 * Only public facts: how many sessions are open, wallets loaded, ceremonies finished or failed by
 * kind, share-cache statistics and the wasm memory size. Nothing derived from a share, a data key
 * or keep-state, nor any id: counts only, so a scrape says how busy an enclave is, not with what.
 *
 * HEALTH reply keys (each a body uint, absent when the enclave predates it):
 *
 * | key                         | meaning |
 * |-----------------------------|---------|
 * | loadedWallets, openSessions | shares loaded, sessions open now |
 * | share* , wasmMemoryBytes    | share cache (src/enclave/share-cache.ts) and wasm memory |
 * | `<kind>Finished`            | sessions of that kind that completed phase 4, since the enclave started |
 * | `<kind>Failed`              | sessions of that kind that failed a step or expired, since it started |
 * | ceremoniesAborted           | sessions (or pending shares) dropped at the host's CEREMONY_ABORT |
 *
 * Bounds: the reader takes only the keys named here, each a safe non-negative integer; anything
 * else in the reply is ignored, so a hostile enclave (or a newer one) cannot add metric series.
 */
import type { HealthReply } from "./enclave-ops.ts";

/** Ceremony kinds the counters are kept for (the enclave counts these; others are not exported). */
export const COUNTED_KINDS = ["dkg", "sign", "refresh", "repair"] as const;
export type CountedKind = (typeof COUNTED_KINDS)[number];

/** Per-kind counter key, e.g. `signFinished`. */
export const finishedKey = (kind: string) => `${kind}Finished`;
export const failedKey = (kind: string) => `${kind}Failed`;

/** The gauge-like fields (a value now) and the counter-like ones (since the enclave started). */
export const ENCLAVE_GAUGE_FIELDS = [
  "loadedWallets",
  "openSessions",
  "shareBudgetBytes",
  "shareBytesUsed",
  "sharesPinned",
  "wasmMemoryBytes",
] as const;
export const ENCLAVE_COUNT_FIELDS = [
  "shareHits",
  "shareMisses",
  "shareEvictions",
  "shareLoadsRefused",
  "ceremoniesAborted",
] as const;

export type EnclaveField =
  | (typeof ENCLAVE_GAUGE_FIELDS)[number]
  | (typeof ENCLAVE_COUNT_FIELDS)[number];

export interface EnclaveCounters {
  fields: Partial<Record<EnclaveField, number>>;
  finished: Partial<Record<CountedKind, number>>;
  failed: Partial<Record<CountedKind, number>>;
}

function count(v: unknown): number | undefined {
  return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : undefined;
}

/** The counters in a HEALTH reply: known keys only, each a safe non-negative integer, else absent. */
export function readEnclaveCounters(reply: HealthReply | Record<string, unknown>): EnclaveCounters {
  const r = reply as Record<string, unknown>;
  const own = (k: string) => (Object.hasOwn(r, k) ? count(r[k]) : undefined);
  const out: EnclaveCounters = { fields: {}, finished: {}, failed: {} };
  for (const k of [...ENCLAVE_GAUGE_FIELDS, ...ENCLAVE_COUNT_FIELDS]) {
    const v = own(k);
    if (v !== undefined) out.fields[k] = v;
  }
  for (const kind of COUNTED_KINDS) {
    const f = own(finishedKey(kind));
    if (f !== undefined) out.finished[kind] = f;
    const x = own(failedKey(kind));
    if (x !== undefined) out.failed[kind] = x;
  }
  return out;
}

/** The HEALTH reply fields for the enclave's ceremony counters (service.ts). */
export function ceremonyCounterFields(c: {
  finished: ReadonlyMap<string, number>;
  failed: ReadonlyMap<string, number>;
  aborted: number;
}): Record<string, number> {
  const out: Record<string, number> = { ceremoniesAborted: c.aborted };
  for (const kind of COUNTED_KINDS) {
    out[finishedKey(kind)] = c.finished.get(kind) ?? 0;
    out[failedKey(kind)] = c.failed.get(kind) ?? 0;
  }
  return out;
}
