/**
 * Restarting a dead process the way a service manager restarts
 * `nitro-cli run-enclave` (systemd `Restart=always` with `RestartSec`): when
 * the enclave process exits without being asked to (a wasm trap ends it, or
 * `kill -9`), it is started again with the same options, so the same socket
 * path and the same identity (PCR4). Its stale socket file is removed first,
 * as an `ExecStartPre` would, since a killed process cannot unlink it.
 */
import { rmSync } from "node:fs";
import type { Started } from "./processes.ts";
import { startEnclaveProcess, type EnclaveProcessOptions } from "./enclave-process.ts";

/** Between an unasked-for exit and the restart (systemd's RestartSec). */
export const RESTART_DELAY_MS = 200;

export interface Supervised extends Started {
  /** How many times the process was restarted after dying. */
  readonly restarts: number;
  /** Resolves once the process has been restarted `n` times in all (tests). */
  restarted(n: number): Promise<void>;
  /** Holds any restart until the returned function is called (tests keep a node down for a while). */
  holdRestarts(): () => void;
}

export async function supervise(
  start: () => Promise<Started>,
  o: { socketPath?: string; log?: (line: string) => void; restartDelayMs?: number } = {},
): Promise<Supervised> {
  let current = await start();
  let stopping = false;
  let restarts = 0;
  let held: Promise<void> | null = null;
  const waiters: { n: number; resolve: () => void }[] = [];
  const watch = (s: Started) => {
    s.proc.once("exit", (code, signal) => {
      if (stopping) return;
      o.log?.(`process died (code ${code}, signal ${signal}); restarting`);
      void restart();
    });
  };
  const restart = async (): Promise<void> => {
    for (let attempt = 0; !stopping; attempt++) {
      await new Promise((r) =>
        setTimeout(r, (o.restartDelayMs ?? RESTART_DELAY_MS) * Math.min(attempt + 1, 10)),
      );
      if (held) await held;
      if (stopping) return;
      if (o.socketPath) rmSync(o.socketPath, { force: true });
      try {
        current = await start();
      } catch (e) {
        o.log?.(`restart failed: ${(e as Error).message.slice(0, 200)}`);
        continue;
      }
      restarts++;
      watch(current);
      for (const w of waiters.splice(0))
        if (restarts >= w.n) w.resolve();
        else waiters.push(w);
      if (stopping) await current.stop();
      return;
    }
  };
  watch(current);
  return {
    get proc() {
      return current.proc;
    },
    get ready() {
      return current.ready;
    },
    get restarts() {
      return restarts;
    },
    stderr: () => current.stderr(),
    restarted: (n) =>
      restarts >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    holdRestarts: () => {
      let release = () => {};
      const gate = new Promise<void>((r) => (release = r));
      held = gate;
      return () => {
        if (held === gate) held = null;
        release();
      };
    },
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}

/** A development enclave process, restarted with the same options (socket, PCR4) whenever it dies. */
export function superviseEnclaveProcess(
  log: ((line: string) => void) | undefined,
  o: EnclaveProcessOptions,
): Promise<Supervised> {
  return supervise(() => startEnclaveProcess(o), {
    socketPath: o.socketPath,
    log: (line) => log?.(`${o.name} enclave: ${line}`),
  });
}
