/**
 * bun run bench/sign-cpu.ts [RUNS] [--wasm FILE] — CPU time of wasm signing
 * per party (3 of a 3-of-5 wallet), for comparing builds on a shared
 * machine, where wall times swing with other load: one DKG, 5 untimed
 * warm-up signings (JIT tiering), then RUNS signings (default 40); prints
 * the thread CPU time of the whole signing loop / (RUNS x 3) (JavaScript
 * routing included; Bun's per-thread clock ticks in ~4 ms, so the loop, not
 * each call, is timed) and the median and fastest per-party wall sample.
 * Native counterpart: bench-native's `sign_total_cpu`.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Dkg, Signing, type KeyShare, loadDkls } from "../src/enclave/dkls23/binding.ts";
import { inboxFor } from "../src/shared/wire/protocol-message.ts";
import { asParty, type PhasedParty } from "../src/dev/in-process.ts";

const args = process.argv.slice(2);
const wasmAt = args.indexOf("--wasm");
loadDkls(wasmAt >= 0 ? readFileSync(args[wasmAt + 1]!) : undefined);
const RUNS = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== "--wasm") ?? 40);
const sha = (s: string) => new Uint8Array(createHash("sha256").update(s).digest());

/** Runs the parties' four phases; adds each party's compute wall time to `wall`. */
function run<F>(parties: PhasedParty<F>[], wall?: number[]): F[] {
  const t = parties.map(() => 0);
  const c = <T>(k: number, f: () => T): T => {
    const s = performance.now();
    const r = f();
    t[k]! += performance.now() - s;
    return r;
  };
  let out = parties.flatMap((p, k) => c(k, () => p.phase1()));
  out = parties.flatMap((p, k) => c(k, () => p.phase2(inboxFor(p.index, out))));
  out = parties.flatMap((p, k) => c(k, () => p.phase3(inboxFor(p.index, out))));
  const finals = parties.map((p, k) => c(k, () => p.phase4(inboxFor(p.index, out))));
  wall?.push(...t);
  return finals;
}

const dkgSession = sha("sign-cpu dkg");
const shares = run(
  [1, 2, 3, 4, 5].map((i) =>
    asParty(i, new Dkg({ threshold: 3, parties: 5, index: i, sessionId: dkgSession })),
  ),
) as KeyShare[];
const signers = [1, 2, 3];
const sign = (label: string, wall?: number[]) =>
  run(
    signers.map((i) =>
      asParty(
        i,
        new Signing({
          share: shares[i - 1]!,
          sessionId: sha(label),
          parties: signers,
          digest: sha(`digest ${label}`),
        }),
      ),
    ),
    wall,
  );
for (let i = 0; i < 5; i++) sign(`warm ${i}`);
const wall: number[] = [];
const start = process.threadCpuUsage();
for (let i = 0; i < RUNS; i++) sign(`sign ${i}`, wall);
const used = process.threadCpuUsage(start);
wall.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    cpu_ms_per_party_signing: +((used.user + used.system) / 1000 / (RUNS * signers.length)).toFixed(
      3,
    ),
    wall_ms_median: +wall[wall.length >> 1]!.toFixed(3),
    wall_ms_fastest: +wall[0]!.toFixed(3),
  }),
);
