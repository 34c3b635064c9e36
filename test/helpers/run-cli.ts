/** Runs the tss CLI as a separate process, without the caller's TSS_* environment. */
import { spawn } from "node:child_process";
import { join } from "node:path";

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `tss ARGS…` under Bun; `dataDir` gets the (absent) client file, so no settings leak in. */
export async function runTss(args: string[], dataDir: string): Promise<CliRun> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TSS_")),
  ) as Record<string, string>;
  const child = spawn(
    process.execPath,
    ["run", join(import.meta.dirname, "../../src/cli/tss.ts"), ...args],
    {
      env: { ...env, TSS_CLIENT_CONFIG: join(dataDir, "absent.json") },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const status = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { status, stdout, stderr };
}
