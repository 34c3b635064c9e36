/**
 * A coordinator's record of how a ceremony ended, when the database refuses that write (locked
 * by another process, I/O error: store/db.ts isDatabaseFailure). The request path fails closed
 * as before: the client is answered with the write's error (`internal`) and nothing the
 * ceremony produced is released. What this adds: the end is kept here, in memory, as a failure
 * ("could not record the ceremony's end"), and written when the database is back
 * (DatabaseHealth's recovery, src/host/main.ts), so the request id stops answering "still
 * running" without a restart; a resubmission then gets the stored failure (`ceremony_failed`),
 * never a signature that was not recorded. A restart before that resolves the row the same way
 * (NodeHost.recover). Bounded: past MAX_KEPT the oldest end is left to the restart's recovery.
 */
import {
  appendAudit,
  ceremonyAborted,
  finishCeremony,
  type CeremonyKind,
  type Db,
} from "./store/index.ts";
import { isDatabaseFailure } from "./store/db.ts";

/** The ceremony whose end is recorded (its row was started by this coordinator). */
export interface CeremonyEndOf {
  ceremonyId: string;
  kind: CeremonyKind;
  requestId: string;
  walletId: string | null;
}

interface KeptEnd {
  of: CeremonyEndOf;
  error: string;
  cause: unknown;
}

export const MAX_KEPT_ENDS = 4096;

export class CeremonyEnds {
  private readonly kept = new Map<string, KeptEnd>();

  constructor(
    private readonly db: Db,
    private readonly nodeId: string,
    private readonly log: (event: string, fields: Record<string, unknown>) => void = () => {},
  ) {}

  /** How many ends wait for the database. */
  get waiting(): number {
    return this.kept.size;
  }

  /**
   * Records that the ceremony failed with `e` (with its ceremony_aborted audit row). When the
   * database refuses the write, the end is kept for `retry` and the write's error is thrown:
   * the caller answers the client with it, as before.
   */
  failed(of: CeremonyEndOf, e: unknown): void {
    const error = (e as Error)?.message ?? String(e);
    try {
      this.write(of, error.slice(0, 500), e);
    } catch (w) {
      // Only what the database refused waits for it; any other refusal is the caller's to see.
      if (!isDatabaseFailure(w)) throw w;
      this.keep({
        of,
        error:
          `coordinator ${this.nodeId} could not record the ceremony's end (${(w as Error).message}): ${error}`.slice(
            0,
            500,
          ),
        cause: e,
      });
      throw w;
    }
  }

  /** Writes every kept end (the database is back); those it still cannot write stay kept. */
  retry(): string[] {
    const written: string[] = [];
    for (const [id, k] of [...this.kept]) {
      try {
        this.write(k.of, k.error, k.cause);
      } catch (e) {
        const still = isDatabaseFailure(e);
        this.log("ceremony_end_not_recorded", {
          ceremony: id.slice(0, 16),
          error: (e as Error).message,
          kept: still,
        });
        // Still unavailable: the rest waits for the next recovery. Otherwise (say the row
        // finished meanwhile) this end has nothing left to record.
        if (still) return written;
        this.kept.delete(id);
        continue;
      }
      this.kept.delete(id);
      written.push(id);
    }
    if (written.length > 0) this.log("ceremony_ends_recorded", { ceremonies: written.length });
    return written;
  }

  private keep(k: KeptEnd): void {
    this.kept.delete(k.of.ceremonyId);
    this.kept.set(k.of.ceremonyId, k);
    if (this.kept.size > MAX_KEPT_ENDS) this.kept.delete(this.kept.keys().next().value!);
    this.log("ceremony_end_kept", {
      ceremony: k.of.ceremonyId.slice(0, 16),
      waiting: this.kept.size,
    });
  }

  private write(of: CeremonyEndOf, error: string, cause: unknown): void {
    this.db.transaction(() => {
      finishCeremony(this.db, of.ceremonyId, { status: "failed", error });
      appendAudit(this.db, this.nodeId, ceremonyAborted(of, cause));
    });
  }
}
