/**
 * The development enclave image: the development entry (src/dev/enclave-main.ts,
 * the enclave program with the simulated NSM) bundled into one file with its
 * wasm beside it. Its PCR0 is SHA-384(bundle || wasm), exactly what
 * the enclave computes about itself, so KMS policies can pin it and any change
 * to the enclave code or wasm changes it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pcr0ForCode } from "../dev/simulated-nsm.ts";
import { toHex } from "../shared/hex.ts";

export interface EnclaveImage {
  /** The bundle (run with Bun), or with `executable` the compiled tss-enclave-dev itself. */
  entry: string;
  wasm: string;
  /** `entry` is a standalone executable (build/build-executables.sh), started without Bun. */
  executable?: boolean;
  pcr0: Uint8Array;
  pcr0Hex: string;
}

export const DEVELOPMENT_ENTRY = "src/dev/enclave-main.ts";
/** What build/build-executables.sh compiles as tss-enclave, the program in the EIF. */
export const PRODUCTION_ENTRY = "src/enclave/main.ts";

/** Bundles an enclave entry (a path from the repository root) into `outDir`: the entry file and its wasm. */
export async function bundleEnclaveEntry(
  entryPoint: string,
  outDir: string,
): Promise<{ entry: string; wasm: string }> {
  const root = new URL("../..", import.meta.url).pathname;
  const r = await Bun.build({
    entrypoints: [join(root, entryPoint)],
    target: "bun",
    outdir: outDir,
    naming: { asset: "[name]-[hash].[ext]" },
  });
  if (!r.success) throw new Error(`bundling the enclave failed: ${r.logs.map(String).join("\n")}`);
  const entry = r.outputs.find((o) => o.kind === "entry-point")?.path;
  const wasm = r.outputs.find((o) => o.path.endsWith(".wasm"))?.path;
  if (!entry || !wasm) throw new Error("enclave bundle lacks its entry point or wasm");
  return { entry, wasm };
}

export async function bundleEnclave(outDir: string): Promise<EnclaveImage> {
  const { entry, wasm } = await bundleEnclaveEntry(DEVELOPMENT_ENTRY, outDir);
  const pcr0 = pcr0ForCode([
    new Uint8Array(readFileSync(entry)),
    new Uint8Array(readFileSync(wasm)),
  ]);
  return { entry, wasm, pcr0, pcr0Hex: toHex(pcr0) };
}

/** The wasm the sources import, which a build embeds (src/enclave/wasm-asset.ts). */
export const WASM_SOURCE = "src/enclave/dkls23/wasm/dkls23_bg.wasm";

/**
 * The compiled development enclave (dist/tss-enclave-dev) as an image: PCR0 is
 * SHA-384(executable || wasm), what it computes about itself when compiled.
 * The wasm is the tree's, which the build embedded; an executable built from
 * another wasm attests another PCR0, and KMS refuses it.
 */
export function compiledEnclaveImage(executable: string): EnclaveImage {
  const wasm = join(new URL("../..", import.meta.url).pathname, WASM_SOURCE);
  // pcr0ForCode's SHA-384 over both, by Bun's native hasher: 100 MB in JavaScript takes seconds.
  const pcr0 = new Uint8Array(
    new Bun.CryptoHasher("sha384")
      .update(readFileSync(executable))
      .update(readFileSync(wasm))
      .digest(),
  );
  return { entry: executable, wasm, executable: true, pcr0, pcr0Hex: toHex(pcr0) };
}
