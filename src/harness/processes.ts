/** Child processes the harness starts: spawned, awaited until ready, and always stopped. */
import { spawn, type ChildProcess } from "node:child_process";

export interface Started {
  proc: ChildProcess;
  /** The JSON object the process printed to announce it is ready. */
  ready: Record<string, unknown>;
  stop(): Promise<void>;
  /** Everything the process wrote to stderr so far (its log). */
  stderr(): string;
}

/**
 * Spawns `cmd`, optionally writes `stdin`, and resolves once a stdout line
 * parses as JSON with `event === readyEvent`.
 */
export function startProcess(
  cmd: string[],
  opts: {
    stdin?: string;
    readyEvent: string;
    timeoutMs?: number;
    env?: Record<string, string>;
    name: string;
  },
): Promise<Started> {
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  let err = "";
  let out = "";
  proc.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 4 << 20) err = err.slice(-(2 << 20));
  });
  if (opts.stdin !== undefined) proc.stdin!.write(opts.stdin);
  proc.stdin!.end();
  const stop = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      proc.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      proc.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(
        new Error(
          `${opts.name} did not become ready within ${opts.timeoutMs ?? 30_000} ms; stderr: ${err.slice(-2000)}`,
        ),
      );
    }, opts.timeoutMs ?? 30_000);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.event === opts.readyEvent) {
            clearTimeout(timer);
            resolve({ proc, ready: j, stop, stderr: () => err });
          }
        } catch {
          // not a JSON line: ignore
        }
      }
    });
    proc.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${opts.name} exited early (code ${code}, signal ${sig}); stderr: ${err.slice(-2000)}`,
        ),
      );
    });
  });
}
