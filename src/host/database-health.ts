/**
 * Watches this node's database: a write that fails because the database did (locked by another
 * process, I/O error, disk full, read-only: store/db.ts isDatabaseFailure) withdraws the node at
 * once (NodeCondition "database"), and a probe on a second connection (store/db.ts
 * openWriteProbe: takes the write lock without waiting for it) brings it back when it succeeds.
 * The probe also runs on a slower period while healthy, so a lock taken while the node is idle
 * withdraws it before a request finds out. Neither ever blocks the host: the probe does not wait
 * for a lock, and the request path's own waits are bounded by RUNNING_BUSY_TIMEOUT_MS.
 *
 * What the probe cannot see: a write that fails for another reason while the lock is free (a
 * full disk lets BEGIN IMMEDIATE through), so such a node comes back at the next probe and is
 * withdrawn again by its next failed write.
 */
export interface DatabaseHealthOptions {
  /** Throws when the database cannot be written now (openWriteProbe's probe). */
  probe: () => void;
  /** Told "unavailable" (with why) and "available" when the state changes. */
  onChange: (problem: string | null) => void;
  /** Probe period while healthy; default 5 s. */
  healthyIntervalMs?: number;
  /** Probe period while unavailable; default 1 s. */
  failingIntervalMs?: number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export class DatabaseHealth {
  private problem: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly healthyMs: number;
  private readonly failingMs: number;

  constructor(private readonly o: DatabaseHealthOptions) {
    this.healthyMs = o.healthyIntervalMs ?? 5_000;
    this.failingMs = o.failingIntervalMs ?? 1_000;
    this.schedule();
  }

  get available(): boolean {
    return this.problem === null;
  }

  /** A write failed because the database did (Db.onWriteFailure). */
  writeFailed(e: unknown): void {
    this.mark(`a write failed: ${(e as Error)?.message ?? String(e)}`);
  }

  /** Runs the probe now; true when the database can be written. */
  check(): boolean {
    try {
      this.o.probe();
    } catch (e) {
      this.mark(`the write probe failed: ${(e as Error)?.message ?? String(e)}`);
      return false;
    }
    if (this.problem !== null) {
      this.o.log?.("database_restored", { after: this.problem });
      this.problem = null;
      this.o.onChange(null);
      this.schedule();
    }
    return true;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private mark(problem: string): void {
    const first = this.problem === null;
    this.problem = problem.slice(0, 200);
    if (!first) return;
    this.o.log?.("database_unavailable", { problem: this.problem });
    this.o.onChange(this.problem);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.check();
        if (!this.timer) this.schedule();
      },
      this.problem === null ? this.healthyMs : this.failingMs,
    );
    this.timer.unref?.();
  }
}
