/**
 * The compiled executables (build/build-executables.sh) for tests, the demo
 * and npm run smoke: built into a directory, or taken from a cache keyed on
 * everything that goes into them, so a test file that runs them does not pay
 * for a build when nothing changed (a build of all four takes seconds, and
 * 440 MB).
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

export interface Executables {
  dir: string;
  /** The host (src/host/main.ts). */
  host: string;
  /** The production enclave (src/enclave/main.ts): /dev/nsm and VSOCK only. */
  enclave: string;
  /** The CLI (src/cli/tss.ts). */
  cli: string;
  /** DEVELOPMENT ONLY: the enclave with the simulated NSM (src/dev/enclave-main.ts). */
  enclaveDev: string;
}

export const EXECUTABLE_NAMES = ["tss-host", "tss-enclave", "tss", "tss-enclave-dev"] as const;

export function executablesIn(dir: string): Executables {
  return {
    dir,
    host: join(dir, "tss-host"),
    enclave: join(dir, "tss-enclave"),
    cli: join(dir, "tss"),
    enclaveDev: join(dir, "tss-enclave-dev"),
  };
}

/** Runs build/build-executables.sh --out DIR; throws with its log's tail when it fails. */
export function buildExecutables(dir: string): Executables & { buildMs: number } {
  const t0 = performance.now();
  const r = spawnSync("bash", [join(ROOT, "build/build-executables.sh"), "--out", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0)
    throw new Error(
      `build/build-executables.sh failed (exit ${r.status}): ${(r.stderr ?? "").slice(-2000)}`,
    );
  const x = executablesIn(dir);
  for (const name of EXECUTABLE_NAMES)
    if (!existsSync(join(dir, name))) throw new Error(`the build did not produce ${name}`);
  return { ...x, buildMs: performance.now() - t0 };
}

/** Files whose content a build depends on, besides the version and commit. */
function buildInputs(): string[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(join(ROOT, d), { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk("src");
  return [
    ...files,
    "build/build-executables.sh",
    "build/compile.ts",
    "package.json",
    "package-lock.json",
  ];
}

/**
 * The executables built from this tree, from .tmp/executables/KEY when built
 * before (KEY: the version and commit they report, and every input's bytes);
 * otherwise built there, and older entries removed.
 */
export function cachedExecutables(): Executables & { cached: boolean; buildMs: number } {
  const stamp = spawnSync("bash", [join(ROOT, "build/build-executables.sh"), "--print-stamp"], {
    encoding: "utf8",
  });
  if (stamp.status !== 0) throw new Error(`build stamp failed: ${stamp.stderr}`);
  const h = new Bun.CryptoHasher("sha256").update(stamp.stdout);
  for (const f of buildInputs()) {
    if (!existsSync(join(ROOT, f))) continue;
    h.update(`${f}\0`)
      .update(readFileSync(join(ROOT, f)))
      .update("\0");
  }
  const key = h.digest("hex").slice(0, 24);
  const cache = join(ROOT, ".tmp", "executables");
  const dir = join(cache, key);
  if (EXECUTABLE_NAMES.every((n) => existsSync(join(dir, n))))
    return { ...executablesIn(dir), cached: true, buildMs: 0 };
  mkdirSync(cache, { recursive: true });
  // Built aside and renamed, so a concurrent user never sees half a set.
  const partial = join(cache, `${key}.partial-${process.pid}`);
  rmSync(partial, { recursive: true, force: true });
  const built = buildExecutables(partial);
  try {
    renameSync(partial, dir);
  } catch {
    rmSync(partial, { recursive: true, force: true }); // someone else finished first: theirs is the same
  }
  // Older sets (another tree) are large; keep the newest few minutes' worth only.
  for (const e of readdirSync(cache))
    if (e !== key && Date.now() - statSync(join(cache, e)).mtimeMs > 10 * 60_000)
      rmSync(join(cache, e), { recursive: true, force: true });
  return { ...executablesIn(dir), cached: false, buildMs: built.buildMs };
}
