/**
 * A coordinator whose database is locked (another process's `BEGIN EXCLUSIVE`, as a backup
 * tool would) when a ceremony ends: the client is told `internal` and nothing is released, as
 * before; the end is kept in memory (src/host/ceremony-ends.ts) and written when the write
 * probe sees the database back (DatabaseHealth, wired as in src/host/main.ts), so the request
 * id leaves "running" without a restart and a resubmission gets `ceremony_failed`, never the
 * signature. Real libsql file and lock; the request handler is the real one, its participants
 * play the phases without a protocol (as in audit.test.ts). The real-process version is the
 * fault matrix's "locked mid-ceremony" cell (test/faults/fault-matrix.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lockDatabaseFile } from "../helpers/lock-database.ts";
import { scriptedCoordinator, scriptedSign, scriptedSignature } from "../helpers/scripted-sign.ts";
import { until } from "../helpers/until.ts";
import { DatabaseHealth } from "../../src/host/database-health.ts";
import type { RequestHandler } from "../../src/host/request-handler.ts";
import type { Participant } from "../../src/host/participant.ts";
import { findClientRequest, openStore, readAudit, type Db } from "../../src/host/store/index.ts";
import { openWriteProbe } from "../../src/host/store/db.ts";

const dir = mkdtempSync(join(tmpdir(), "tss-end-retry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const W = "w_end_retry";
const DIGEST_HEX = "42".repeat(32);
const { signature: SIGNATURE, held } = scriptedSignature(W, DIGEST_HEX);

/** A participant that plays every phase without a protocol; `onStep` runs at each step. */
function participant(nodeId: string, partyIndex: number, onStep = () => {}): Participant {
  const reply = async () => ({ messages: [], generation: 0, signature: SIGNATURE });
  return {
    nodeId,
    prepare: async () => ({ walletId: W, generation: 0, partyIndex }),
    attestation: async () => Uint8Array.of(1),
    start: reply,
    step: async () => {
      onStep();
      return reply();
    },
    abort: async () => {},
    persist: async () => Uint8Array.of(1),
    commit: async () => {},
    rollback: async () => {},
  };
}

/** Coordinator "a" (a real request handler on `db`) with participant "b". */
const coordinator = (db: Db, b: Participant) =>
  scriptedCoordinator(db, held, participant("a", 1), b);

const sign = (handler: RequestHandler) =>
  scriptedSign(handler, { client: "cli-7", requestId: "r-1", walletId: W, digestHex: DIGEST_HEX });

describe("a ceremony end the locked database refused", () => {
  it("is written when the database is back: the request id leaves running without a restart, never signed", async () => {
    const path = join(dir, "a.db");
    // A short busy timeout, as the running host's (store/db.ts RUNNING_BUSY_TIMEOUT_MS), kept small here.
    const { db } = openStore({ path }, { busyTimeoutMs: 20 });
    const probe = openWriteProbe({ path });
    let release: (() => void) | null = null;
    // The lock is taken mid-sign: the start was recorded, the end cannot be.
    const handler = coordinator(
      db,
      participant("b", 2, () => {
        release ??= lockDatabaseFile(path);
      }),
    );
    const health = new DatabaseHealth({
      probe: () => probe.probe(),
      // As main.ts: back, the kept ends are written.
      onChange: (problem) => {
        if (problem === null) handler.ceremonyEnds.retry();
      },
      healthyIntervalMs: 50,
      failingIntervalMs: 50,
    });
    db.onWriteFailure = (e) => health.writeFailed(e);
    try {
      const first = await sign(handler);
      expect(release).not.toBeNull();
      // Fail closed: the client is told internal, the signature is not released.
      expect(first.done).toBeUndefined();
      expect(first.fail).toMatchObject({ code: "internal" });
      expect(handler.ceremonyEnds.waiting).toBe(1);
      expect(findClientRequest(db, "cli-7", "r-1")?.status).toBe("running");
      // While locked, a resubmission is told the id still runs (nothing runs again).
      expect((await sign(handler)).fail).toMatchObject({ code: "bad_request" });

      release!();
      // No restart: the probe sees the database back and the end is written.
      await until(
        () => findClientRequest(db, "cli-7", "r-1")?.status === "failed",
        5_000,
        "the row leaves running",
      );
      expect(handler.ceremonyEnds.waiting).toBe(0);
      expect(findClientRequest(db, "cli-7", "r-1")?.error).toMatch(
        /coordinator a could not record the ceremony's end/,
      );
      expect(readAudit(db).map((e) => e.event)).toEqual(["ceremony_started", "ceremony_aborted"]);
      // The resubmission gets the stored failure, never the signature.
      const again = await sign(handler);
      expect(again.done).toBeUndefined();
      expect(again.fail).toMatchObject({ code: "ceremony_failed" });
    } finally {
      (release as (() => void) | null)?.();
      health.stop();
      probe.close();
      db.close();
    }
  });
});
