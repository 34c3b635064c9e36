/**
 * When a coordinator writes a signature's ceremony record (request-handler.ts recordStart,
 * coordinator.ts onDispatched): once phase 1's starts are sent, so its fsync overlaps the
 * signers' phase 1, and always before any phase 2, so no signature exists without it. A
 * refused record fails the request with the write's error and aborts the started signers; a
 * request that fails before its record is still recorded as failed. Real libsql file and lock,
 * the real request handler; the participants play the phases without a protocol (as in
 * ceremony-end-retry.test.ts), participant "b" as a remote one (reached through the broker).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lockDatabaseFile } from "../helpers/lock-database.ts";
import { scriptedCoordinator, scriptedSign, scriptedSignature } from "../helpers/scripted-sign.ts";
import type { RequestHandler } from "../../src/host/request-handler.ts";
import type { Participant } from "../../src/host/participant.ts";
import { findClientRequest, openStore, readAudit, type Db } from "../../src/host/store/index.ts";

const dir = mkdtempSync(join(tmpdir(), "tss-sign-record-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const W = "w_sign_record";
const DIGEST_HEX = "24".repeat(32);
const { signature: SIGNATURE, held } = scriptedSignature(W, DIGEST_HEX);

interface Hooks {
  onStart?: () => void;
  onStep?: (phase: number) => void;
  startFails?: boolean;
}

function participant(
  nodeId: string,
  partyIndex: number,
  remote: boolean,
  log: string[],
  h: Hooks = {},
): Participant {
  const reply = async () => ({ messages: [], generation: 0, signature: SIGNATURE });
  return {
    nodeId,
    ...(remote ? { remote: true } : {}),
    prepare: async () => ({ walletId: W, generation: 0, partyIndex }),
    attestation: async () => Uint8Array.of(1),
    start: async () => {
      log.push(`${nodeId}:start`);
      h.onStart?.();
      if (h.startFails)
        throw Object.assign(new Error(`${nodeId} refused the start`), { code: "ceremony_failed" });
      return reply();
    },
    step: async (req) => {
      log.push(`${nodeId}:${req.phase}`);
      h.onStep?.(req.phase);
      return reply();
    },
    abort: async () => {
      log.push(`${nodeId}:abort`);
    },
    persist: async () => Uint8Array.of(1),
    commit: async () => {},
    rollback: async () => {},
  };
}

/** Coordinator "a" (a real request handler on `db`, itself a signer) with remote signer `b`. */
const coordinator = (db: Db, log: string[], b: Participant) =>
  scriptedCoordinator(db, held, participant("a", 1, false, log), b);

const sign = (handler: RequestHandler, requestId: string) =>
  scriptedSign(handler, { client: "cli-9", requestId, walletId: W, digestHex: DIGEST_HEX });

describe("a signature's ceremony record", () => {
  it("is written after the signers' starts are sent and before any phase 2", async () => {
    const { db } = openStore({ path: join(dir, "order.db") }, { busyTimeoutMs: 20 });
    const log: string[] = [];
    const seen: Record<string, string | undefined> = {};
    const b = participant("b", 2, true, log, {
      onStart: () => (seen.start = findClientRequest(db, "cli-9", "r-order")?.status),
      onStep: (p) => {
        if (p === 2) seen.phase2 = findClientRequest(db, "cli-9", "r-order")?.status;
      },
    });
    try {
      const out = await sign(coordinator(db, log, b), "r-order");
      expect(out.fail).toBeUndefined();
      expect(out.done).toMatchObject({ walletId: W });
      // Not yet written when b's start ran; written (running) before b's phase 2.
      expect(seen).toEqual({ start: undefined, phase2: "running" });
      expect(log.slice(0, 2)).toEqual(["b:start", "a:start"]);
      expect(findClientRequest(db, "cli-9", "r-order")?.status).toBe("succeeded");
      expect(readAudit(db).map((e) => e.event)).toEqual(["ceremony_started", "ceremony_finished"]);
    } finally {
      db.close();
    }
  });

  it("refused (a locked database): the request fails with the write's error, the signers are aborted, nothing signs", async () => {
    const path = join(dir, "locked.db");
    const { db } = openStore({ path }, { busyTimeoutMs: 20 });
    const log: string[] = [];
    let release: (() => void) | null = null;
    // The lock is taken while the starts are on their way: the record cannot be written.
    const b = participant("b", 2, true, log, {
      onStart: () => void (release ??= lockDatabaseFile(path)),
    });
    try {
      const handler = coordinator(db, log, b);
      const first = await sign(handler, "r-locked");
      expect(release).not.toBeNull();
      expect(first.done).toBeUndefined();
      expect(first.fail).toMatchObject({ code: "internal" });
      expect(log.filter((l) => l.endsWith(":2"))).toEqual([]);
      expect(log.filter((l) => l.endsWith(":abort")).sort()).toEqual(["a:abort", "b:abort"]);
      release!();
      expect(findClientRequest(db, "cli-9", "r-locked")).toBeUndefined();
      // Nothing was recorded, so the request id runs afresh once the database is back.
      const again = await sign(coordinator(db, [], participant("b", 2, true, [])), "r-locked");
      expect(again.fail).toBeUndefined();
      expect(findClientRequest(db, "cli-9", "r-locked")?.status).toBe("succeeded");
    } finally {
      (release as (() => void) | null)?.();
      db.close();
    }
  });

  it("of a request that failed before it was written is still written, failed, and the id answers that", async () => {
    const { db } = openStore({ path: join(dir, "early.db") }, { busyTimeoutMs: 20 });
    const log: string[] = [];
    const b = participant("b", 2, true, log, { startFails: true });
    try {
      const first = await sign(coordinator(db, log, b), "r-early");
      expect(first.fail).toMatchObject({ code: "ceremony_failed" });
      expect(findClientRequest(db, "cli-9", "r-early")?.status).toBe("failed");
      expect(readAudit(db).map((e) => e.event)).toEqual(["ceremony_started", "ceremony_aborted"]);
      const again = await sign(coordinator(db, [], participant("b", 2, true, [])), "r-early");
      expect(again.fail).toMatchObject({ code: "ceremony_failed" });
    } finally {
      db.close();
    }
  });
});
