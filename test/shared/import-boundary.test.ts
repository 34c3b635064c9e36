/**
 * The trust boundary, as an import graph: nothing in src/host, src/devkms,
 * src/client or src/cli reaches src/enclave (secrets) or src/dev
 * (development stand-ins), directly or through other files; and neither the
 * host executable nor the client SDK loads the DKLs23 wasm binding. The graph
 * follows relative `import … from`, `export … from`, side-effect `import "…"`
 * and `import("…")`, type-only imports included, since a type import of the
 * enclave is still a dependency on it.
 */
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const UNTRUSTED = ["src/host", "src/devkms", "src/client", "src/cli"];
const FORBIDDEN = ["src/enclave", "src/dev"];
const WASM_BINDING = /(^|\/)src\/enclave\/dkls23\/|\.wasm$|(^|\/)dkls23(_bg)?\.js$/;
const ENTRIES = ["src/host/main.ts", "src/client/index.ts"];

/** Module specifiers in `import … from`, `export … from`, `import "…"` and `import(…)`. */
function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    // import x from "…", import type { X } from "…", export { x } from "…", export * from "…"
    /\b(?:import|export)\s+(?:type\s+)?[^;'"`]*?\bfrom\s*["']([^"']+)["']/g,
    // import "…" (side effect only)
    /\bimport\s*["']([^"']+)["']/g,
    // import("…"), await import ( '…' )
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

/** A relative specifier as a file path under `root`, or null for packages and node: built-ins. */
function resolveSpecifier(root: string, from: string, spec: string): string | null {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return null;
  const base = resolve(root, dirname(from), spec);
  for (const c of [base, `${base}.ts`, join(base, "index.ts")])
    if (existsSync(c) && statSync(c).isFile()) return relative(root, c).split(sep).join("/");
  // An unresolvable import is reported as itself, so a typo cannot hide an edge.
  return relative(root, base).split(sep).join("/");
}

/** The files reachable from `start` (itself included), each with the import chain that reaches it. */
function reachable(root: string, start: string): Map<string, string[]> {
  const chains = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const abs = join(root, file);
    if (!/\.(ts|js|mjs)$/.test(file) || !existsSync(abs)) continue;
    for (const spec of importSpecifiers(readFileSync(abs, "utf8"))) {
      const next = resolveSpecifier(root, file, spec);
      if (next === null || chains.has(next)) continue;
      chains.set(next, [...chains.get(file)!, next]);
      queue.push(next);
    }
  }
  return chains;
}

function sourceFiles(root: string, dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(root, rel);
    return /\.ts$/.test(e.name) ? [rel] : [];
  });
}

const under = (file: string, dir: string) => file === dir || file.startsWith(`${dir}/`);

/** Every chain from a file in `untrusted` to a file in `forbidden`, as "a -> b -> c". */
function boundaryViolations(root: string, untrusted: string[], forbidden: string[]): string[] {
  const found: string[] = [];
  for (const file of untrusted.flatMap((d) => sourceFiles(root, d))) {
    for (const [target, chain] of reachable(root, file)) {
      if (forbidden.some((f) => under(target, f))) found.push(chain.join(" -> "));
    }
  }
  return found;
}

/** Chains from `entry` to the wasm binding. */
function wasmReach(root: string, entry: string): string[] {
  return [...reachable(root, entry)]
    .filter(([target]) => WASM_BINDING.test(target))
    .map(([, chain]) => chain.join(" -> "));
}

describe("import boundary of the untrusted side", () => {
  it("no file in src/host, src/devkms, src/client or src/cli reaches src/enclave or src/dev", () => {
    expect(sourceFiles(ROOT, "src/host").length).toBeGreaterThan(5);
    expect(boundaryViolations(ROOT, UNTRUSTED, FORBIDDEN)).toEqual([]);
  });

  it("the host executable and the client SDK never load the DKLs23 wasm binding", () => {
    for (const entry of ENTRIES) {
      expect(existsSync(join(ROOT, entry)), entry).toBe(true);
      expect(reachable(ROOT, entry).size, entry).toBeGreaterThan(3);
      expect(wasmReach(ROOT, entry), entry).toEqual([]);
    }
  });
});

describe("the boundary check itself", () => {
  it("finds every import form, type-only ones included", () => {
    const src = [
      `import { a } from "./a.ts";`,
      `import type { B } from '../b.ts';`,
      `import * as c from "./c.ts"`,
      `export { d } from "./d.ts";`,
      `export * from "./e.ts";`,
      `export type { F } from "./f.ts";`,
      `import "./g.ts";`,
      `const h = await import("./h.ts");`,
      `import {\n  i,\n  j,\n} from "./ij.ts";`,
      `import k, { type K } from "node:fs";`,
    ].join("\n");
    expect(importSpecifiers(src).sort()).toEqual(
      [
        "../b.ts",
        "./a.ts",
        "./c.ts",
        "./d.ts",
        "./e.ts",
        "./f.ts",
        "./g.ts",
        "./h.ts",
        "./ij.ts",
        "node:fs",
      ].sort(),
    );
  });

  it("fails on a synthetic tree whose host reaches the enclave and the wasm binding indirectly", () => {
    const root = mkdtempSync(join(tmpdir(), "import-boundary-"));
    try {
      const write = (file: string, text: string) => {
        mkdirSync(dirname(join(root, file)), { recursive: true });
        writeFileSync(join(root, file), text);
      };
      write("src/host/main.ts", `import { x } from "./util.ts";\nexport const y = x;\n`);
      write("src/host/util.ts", `export * from "../shared/helper.ts";\n`);
      write(
        "src/shared/helper.ts",
        `export const x = async () => import("../enclave/dkls23/binding.ts");\n`,
      );
      write(
        "src/enclave/dkls23/binding.ts",
        `import * as wasm from "./wasm/dkls23.js";\nexport { wasm };\n`,
      );
      write("src/enclave/dkls23/wasm/dkls23.js", `export {};\n`);
      write(
        "src/client/index.ts",
        `import type { T } from "../dev/stand-in.ts";\nexport type { T };\n`,
      );
      write("src/dev/stand-in.ts", `export type T = number;\n`);
      write("src/cli/tss.ts", `import { ok } from "../shared/clean.ts";\nok();\n`);
      write(
        "src/shared/clean.ts",
        `import { readFileSync } from "node:fs";\nexport const ok = () => readFileSync;\n`,
      );

      const violations = boundaryViolations(root, UNTRUSTED, FORBIDDEN);
      expect(violations).toContain(
        "src/host/main.ts -> src/host/util.ts -> src/shared/helper.ts -> src/enclave/dkls23/binding.ts",
      );
      expect(violations).toContain("src/client/index.ts -> src/dev/stand-in.ts");
      expect(violations.some((v) => v.startsWith("src/cli/"))).toBe(false);
      expect(wasmReach(root, "src/host/main.ts")).toContain(
        "src/host/main.ts -> src/host/util.ts -> src/shared/helper.ts -> src/enclave/dkls23/binding.ts -> src/enclave/dkls23/wasm/dkls23.js",
      );
      expect(wasmReach(root, "src/cli/tss.ts")).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
