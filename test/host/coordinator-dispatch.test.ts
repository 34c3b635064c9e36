/**
 * The order in which a coordinator sends each phase's calls (coordinator.ts `call`): members
 * reached through the broker first, its own (local) participant once those are written out,
 * so the local enclave does not take a core before the longer remote path has started. The
 * participants here record when each call starts, as in supervision.test.ts; the cluster
 * tests (test/integration/cluster.test.ts) run the same code over Mosquitto with enclaves.
 */
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import {
  CeremonyError,
  runCeremony,
  type CoordinatorOptions,
  type Member,
} from "../../src/host/coordinator.ts";
import type { Participant } from "../../src/host/participant.ts";
import type { CeremonyReply } from "../../src/shared/wire/enclave-ops.ts";

type Log = string[];

function participant(
  nodeId: string,
  remote: boolean,
  log: Log,
  fail?: { phase: number; at: "once" | "later" },
): Participant {
  const reply = { messages: [], generation: 0, signature: undefined } as unknown as CeremonyReply;
  const answer = (phase: number) => {
    log.push(`${nodeId}:${phase}`);
    if (fail?.phase === phase) {
      const e = Object.assign(new Error(`${nodeId} refused phase ${phase}`), {
        code: "ceremony_failed",
      });
      return fail.at === "once"
        ? Promise.reject(e)
        : new Promise<never>((_, r) => setTimeout(() => r(e), 20));
    }
    return Promise.resolve({ ...reply, from: nodeId } as CeremonyReply);
  };
  return {
    nodeId,
    ...(remote ? { remote: true } : {}),
    attestation: async () => new Uint8Array([1]),
    start: () => answer(1),
    step: (req) => answer(req.phase),
    abort: async () => {
      log.push(`${nodeId}:abort`);
    },
    prepare: async () => ({ walletId: "w", generation: 0, partyIndex: 1 }),
    persist: async () => Uint8Array.of(1),
    commit: async () => {},
    rollback: async () => {},
  } as Participant;
}

/** A sign ceremony over `ps` (party indices in order, documents already gathered). */
const sign = (ps: Participant[], opts: CoordinatorOptions = {}) =>
  runCeremony(
    "sign",
    ps.map((participant, k): Member => ({ participant, partyIndex: k + 1 })),
    randomBytes(32),
    () => ({}) as never,
    opts,
    ps.map(() => new Uint8Array([1])),
  );

describe("a coordinator's dispatch of each phase", () => {
  it("calls the remote members before its own, in every phase, and keeps the replies in members' order", async () => {
    const log: Log = [];
    // The coordinator first among the members, as planSign puts it.
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log),
      participant("node-3", true, log),
    ];
    const finals = await sign(ms);
    expect(finals.map((f) => (f as unknown as { from: string }).from)).toEqual([
      "node-1",
      "node-2",
      "node-3",
    ]);
    const phases = [1, 2, 3, 4].map((p) => log.filter((l) => l.endsWith(`:${p}`)));
    for (const [k, calls] of phases.entries())
      expect(calls, `phase ${k + 1}`).toEqual([
        `node-2:${k + 1}`,
        `node-3:${k + 1}`,
        `node-1:${k + 1}`,
      ]);
  });

  it("does not start its own member once a remote call failed, aborts everyone and blames the remote", async () => {
    const log: Log = [];
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log, { phase: 2, at: "once" }),
      participant("node-3", true, log),
    ];
    const err = await sign(ms).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CeremonyError);
    expect((err as CeremonyError).node).toBe("node-2");
    // Phase 2 reached node-2 and node-3 only; the local member was never called after the abort.
    expect(log.filter((l) => l.endsWith(":2"))).toEqual(["node-2:2", "node-3:2"]);
    expect(log.filter((l) => l.endsWith(":abort")).sort()).toEqual([
      "node-1:abort",
      "node-2:abort",
      "node-3:abort",
    ]);
    await new Promise((r) => setTimeout(r, 10));
    expect(log.indexOf("node-1:2")).toBe(-1);
  });

  it("still calls its own member when a remote call fails later, and the failure names the remote", async () => {
    const log: Log = [];
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log, { phase: 3, at: "later" }),
      participant("node-3", true, log),
    ];
    const err = await sign(ms).catch((e: unknown) => e);
    expect((err as CeremonyError).node).toBe("node-2");
    expect(log.filter((l) => l.endsWith(":3"))).toEqual(["node-2:3", "node-3:3", "node-1:3"]);
  });

  it("runs onDispatched once every member's start is sent and before any phase 2", async () => {
    const log: Log = [];
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log),
      participant("node-3", true, log),
    ];
    await sign(ms, { onDispatched: () => log.push("record") });
    expect(log.slice(0, 5)).toEqual(["node-2:1", "node-3:1", "node-1:1", "record", "node-2:2"]);
    expect(log.filter((l) => l === "record")).toHaveLength(1);
  });

  it("fails the ceremony with onDispatched's error, aborts every member, and sends no phase 2", async () => {
    const log: Log = [];
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log),
      participant("node-3", true, log),
    ];
    const err = await sign(ms, {
      onDispatched: () => {
        throw new Error("database is locked");
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("database is locked");
    expect(log.filter((l) => l.endsWith(":2"))).toEqual([]);
    expect(log.filter((l) => l.endsWith(":abort")).sort()).toEqual([
      "node-1:abort",
      "node-2:abort",
      "node-3:abort",
    ]);
  });

  it("does not run onDispatched when a remote start failed at once", async () => {
    const log: Log = [];
    const ms = [
      participant("node-1", false, log),
      participant("node-2", true, log, { phase: 1, at: "once" }),
      participant("node-3", true, log),
    ];
    const err = await sign(ms, { onDispatched: () => log.push("record") }).catch((e: unknown) => e);
    expect((err as CeremonyError).node).toBe("node-2");
    await new Promise((r) => setTimeout(r, 10));
    expect(log).not.toContain("record");
    expect(log).not.toContain("node-1:1");
  });

  it("runs onDispatched before any call when no member is remote", async () => {
    const log: Log = [];
    const ms = [participant("node-1", false, log), participant("node-2", false, log)];
    await sign(ms, { onDispatched: () => log.push("record") });
    expect(log.slice(0, 3)).toEqual(["record", "node-1:1", "node-2:1"]);
  });

  it("calls members in their order when none is remote (one process, the in-process harness)", async () => {
    const log: Log = [];
    const ms = [
      participant("node-3", false, log),
      participant("node-1", false, log),
      participant("node-2", false, log),
    ];
    await sign(ms);
    expect(log.filter((l) => l.endsWith(":2"))).toEqual(["node-3:2", "node-1:2", "node-2:2"]);
  });
});
