/**
 * A node whose database cannot be written withdraws itself and comes back (database-health.ts,
 * node-condition.ts), on a real libsql file write-locked by another connection as an operator's
 * tool would: the write probe fails at once without waiting for the lock, a failed write
 * withdraws the node before any probe, a constraint error does not, and the node is "online"
 * only while neither its enclave nor its database withdraws it. The real-process version is the
 * fault matrix's database-lock cell (test/faults/fault-matrix.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockDatabaseFile as lock } from "../helpers/lock-database.ts";
import { DatabaseHealth } from "../../src/host/database-health.ts";
import { NodeCondition } from "../../src/host/node-condition.ts";
import { openStore } from "../../src/host/store/index.ts";
import { isDatabaseFailure, openWriteProbe } from "../../src/host/store/db.ts";
import { until } from "../helpers/until.ts";

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tss-db-health-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup() {
  const path = join(dir, `h${n++}.db`);
  const { db } = openStore({ path }, { busyTimeoutMs: 20 });
  const probe = openWriteProbe({ path });
  const published: string[] = [];
  const condition = new NodeCondition(async (s) => {
    published.push(s);
  });
  const health = new DatabaseHealth({
    probe: () => probe.probe(),
    onChange: (p) => condition.set("database", p),
    healthyIntervalMs: 100,
    failingIntervalMs: 50,
  });
  db.onWriteFailure = (e) => health.writeFailed(e);
  const close = () => {
    health.stop();
    probe.close();
    db.close();
  };
  return { path, db, probe, published, condition, health, close };
}

describe("database health", () => {
  it("the probe fails on a locked file and passes once the lock goes", () => {
    const s = setup();
    try {
      s.probe.probe();
      const release = lock(s.path);
      let caught: unknown;
      try {
        s.probe.probe();
      } catch (e) {
        caught = e;
      }
      release();
      expect(isDatabaseFailure(caught)).toBe(true);
      s.probe.probe();
    } finally {
      s.close();
    }
  });

  it("a locked database withdraws the node (degraded) and the probe brings it back online when the lock goes", async () => {
    const s = setup();
    try {
      const release = lock(s.path);
      await until(() => s.condition.status === "degraded", 5_000, "degraded by the probe");
      expect(s.published).toEqual(["degraded"]);
      expect(s.condition.reasons.database).toMatch(/database is locked/);
      release();
      await until(() => s.condition.status === "online", 5_000, "online after the lock");
      expect(s.published).toEqual(["degraded", "online"]);
    } finally {
      s.close();
    }
  });

  it("a failed write withdraws the node before any probe; a refused statement does not", () => {
    const s = setup();
    s.health.stop();
    try {
      s.db.exec("CREATE TABLE t (x INTEGER NOT NULL)");
      expect(() => s.db.run("INSERT INTO t (x) VALUES (NULL)")).toThrow();
      expect(s.condition.status).toBe("online");
      const release = lock(s.path);
      try {
        expect(() => s.db.transaction(() => s.db.run("INSERT INTO t (x) VALUES (1)"))).toThrow(
          /database is locked/,
        );
      } finally {
        release();
      }
      expect(s.condition.status).toBe("degraded");
      expect(s.health.check()).toBe(true);
      expect(s.condition.status).toBe("online");
    } finally {
      s.close();
    }
  });

  it("online only while neither the enclave nor the database withdraws the node", () => {
    const published: string[] = [];
    const c = new NodeCondition(async (s) => {
      published.push(s);
    });
    c.set("enclave", "its enclave channel is down");
    c.set("database", "locked");
    c.set("enclave", null);
    expect(c.status).toBe("degraded");
    c.set("database", null);
    expect(c.status).toBe("online");
    expect(published).toEqual(["degraded", "online"]);
  });
});
