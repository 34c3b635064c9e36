/**
 * bun run bench/storage.ts — the serialised key share's size per (t, n), and
 * what one wallet costs a node's store. One in-process DKG per (t, n) with
 * the wasm core (src/dev/in-process.ts); sizes do not depend on timing, so
 * this may run on a loaded machine. Writes bench/results/storage.json; the
 * tables in BENCHMARKS.md ("Storage per wallet") and docs/SIZING.md quote it.
 *
 * Where the bytes come from (crates/dkls23-core-fork, postcard encoding):
 * per counterparty the party keeps a MulSender and a MulReceiver for
 * two-party multiplication, each with a 416-scalar "public gadget" vector
 * (416 x 33 bytes + 2) and the OT-extension state (the sender's 256
 * correlation bits and 256 seeds, the receiver's two sets of 256 seeds,
 * 32 bytes each), plus a zero-share seed and a verifying share. The model
 * below is checked against every measured size.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dkgInProcess } from "../src/dev/in-process.ts";
import { loadDkls } from "../src/enclave/dkls23/binding.ts";
import { SEAL_OVERHEAD } from "../src/enclave/seal.ts";

const { values } = parseArgs({
  options: {
    params: { type: "string", default: "2-of-2,2-of-3,3-of-3,3-of-5,5-of-5,5-of-9" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(`usage: bun run bench/storage.ts [--params T-of-N,...]

One DKG per (t, n) in this process (default 2-of-2,2-of-3,3-of-3,3-of-5,5-of-5,5-of-9);
prints and writes bench/results/storage.json: serialised share, sealed share, and
the per-counterparty model's prediction.`);
  process.exit(0);
}

/** Postcard sizes of one counterparty's state (see the header). */
const GADGET = 2 + 416 * 33;
const OT_SENDER = 2 + 256 + (2 + 256 * 32);
const OT_RECEIVER = 2 * (2 + 256 * 32);
const ZERO_SEED = 1 + 1 + 32;
const VERIFYING_SHARE = 1 + 1 + 33;
const MAP_KEYS = 2;
const PER_COUNTERPARTY =
  2 * GADGET + OT_SENDER + OT_RECEIVER + ZERO_SEED + VERIFYING_SHARE + MAP_KEYS;

loadDkls();
const ROOT = new URL("..", import.meta.url).pathname;
const rows = values.params!.split(",").map((p) => {
  const m = /^(\d+)-of-(\d+)$/.exec(p.trim());
  if (!m) throw new Error(`--params: ${p} is not T-of-N`);
  const [t, n] = [Number(m[1]), Number(m[2])];
  const t0 = performance.now();
  const shares = dkgInProcess(t, n);
  const lengths = shares.map((s) => s.toBytes().length);
  for (const s of shares) s.free();
  return { t, n, shareBytes: lengths, dkgMs: performance.now() - t0 };
});
const fixed = rows[0]!.shareBytes[0]! - (rows[0]!.n - 1) * PER_COUNTERPARTY;
const out = {
  date: new Date().toISOString(),
  machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Bun ${Bun.version}`,
  commit: (() => {
    try {
      return execFileSync("git", ["rev-parse", "HEAD"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "ignore"],
      })
        .toString()
        .trim();
    } catch {
      return process.env.TSS_BENCH_COMMIT ?? "unknown (not a git checkout)";
    }
  })(),
  command: `bun run bench/storage.ts ${process.argv.slice(2).join(" ")}`.trim(),
  model: {
    per_counterparty_bytes: PER_COUNTERPARTY,
    gadget_vectors_bytes: 2 * GADGET,
    ot_extension_bytes: OT_SENDER + OT_RECEIVER,
    other_bytes: ZERO_SEED + VERIFYING_SHARE + MAP_KEYS,
    fixed_bytes: fixed,
  },
  seal_overhead_bytes: SEAL_OVERHEAD,
  sizes: rows.map((r) => ({
    threshold: r.t,
    parties: r.n,
    share_bytes: r.shareBytes,
    sealed_bytes: Math.max(...r.shareBytes) + SEAL_OVERHEAD,
    model_bytes: fixed + (r.n - 1) * PER_COUNTERPARTY,
    in_process_dkg_ms: Math.round(r.dkgMs),
  })),
};
for (const s of out.sizes)
  console.log(
    `${s.threshold}-of-${s.parties}: share ${s.share_bytes.join("/")} B, sealed ${s.sealed_bytes} B, model ${s.model_bytes} B`,
  );
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(join(ROOT, "bench/results/storage.json"), `${JSON.stringify(out, null, 2)}\n`);
