/**
 * What the cluster benchmarks share (bench/cluster.ts, bench/enclave-sign-profile.ts):
 * Linux's clock tick for /proc CPU figures, the whole machine's busy time (to say how much
 * other work shared the cores), and the admission limits a capacity measurement runs under.
 */
import { readFileSync } from "node:fs";

/** USER_HZ on Linux: /proc's CPU times are in these ticks. */
export const CLK = 100;

/** Busy CPU seconds of the whole machine so far (every core; /proc/stat user..steal less idle and iowait). */
export function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8")
    .split("\n")[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return (f.reduce((a, x) => a + x, 0) - f[3]! - f[4]!) / CLK;
}

/**
 * The benchmark is one client user measuring capacity: its per-user admission limits
 * (rate-limits.ts, default 10/s and 8 in flight) are raised above what the load needs, so the
 * figures are the cluster's, not the limiter's.
 */
export const CAPACITY_LIMITS = {
  requestsPerSecond: 10_000,
  requestBurst: 10_000,
  maxInFlight: 256,
  maxCeremonies: 256,
};
