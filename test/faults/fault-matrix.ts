/**
 * The fault matrix of issue 10 item 5 for the faults that are not process
 * kills (those are test/integration/faults.test.ts): the broker restarted
 * mid-ceremony, one node's database made unavailable, and one node's MQTT
 * traffic delayed or dropped by a relay (src/harness/mqtt-fault-relay.ts).
 *
 * One local cluster for the file: 3 nodes as separate host and enclave
 * processes, a real Mosquitto, the KMS stand-in; node-3 reaches the broker
 * only through the relay (transparent unless a cell turns a fault on). A
 * 3-of-3 wallet makes every ceremony cross the relay; a 2-of-3 wallet can
 * sign without any one node.
 *
 * After each cell: every request was answered within its bound (a result, or
 * a clear error), no enclave keeps a session open, the wallets still sign
 * with a current-generation quorum and every signature verifies.
 *
 * `describeFaultMatrix({ sample: true })` (npm test, test/integration/fault-matrix.test.ts)
 * registers one cell per fault; the full matrix (npm run test:faults) runs each
 * for signing, DKG and refresh. Every cell's assertions are here; the files
 * that register the matrix check which cells they got (`cells()`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { startFaultRelay, type FaultRelay } from "../../src/harness/mqtt-fault-relay.ts";
import { watchPresence, type PresenceWatch } from "../../src/harness/presence-watch.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { decodeNodePayload } from "../../src/shared/wire/rpc-payload.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { sleep, until } from "../helpers/until.ts";
import { lockDatabaseFile } from "../helpers/lock-database.ts";

/** Every phase's deadline (nodes and enclaves): the bound a dropped message is answered within. */
const PHASE_TIMEOUT_MS = 20_000;
/** One way, per packet, for the delay cells: 8 crossings per 4-phase ceremony stay far inside a phase deadline. */
const DELAY_MS = 400;
const RELAYED = "node-3";
/**
 * Each request's own bound (its client deadline) where a cell expects an answer: a failure
 * then names the step well inside the cell's timeout instead of the cell timing out. On a
 * loaded 2-core machine a sign or query takes seconds; a ceremony a node fails is answered
 * at a phase deadline, its aborts within another.
 */
const QUERY_MS = 20_000;
const CEREMONY_MS = 2 * PHASE_TIMEOUT_MS + 10_000;
/** The broker restart cell's bound on the in-flight requests' answers, counted from the kill. */
const RESTART_ANSWER_MS = 4 * PHASE_TIMEOUT_MS;
/** Every node back online on the restarted broker (reconnects every second). */
const REANNOUNCE_MS = 30_000;
/**
 * The broker restart cell's timeout: the sum of its bounded waits (the in-flight answers, the
 * broker's start, re-announcing, sessions closing, two queries, three ceremonies) and a margin.
 */
const RESTART_CELL_MS =
  RESTART_ANSWER_MS + 10_000 + REANNOUNCE_MS + 15_000 + 2 * QUERY_MS + 3 * CEREMONY_MS + 30_000;

/** Awaits `p`, naming the step in its failure (the client's own messages name the request). */
async function step<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

type Kind = "sign" | "dkg" | "refresh";

/** A node RPC call's op, phase and session, when the PUBLISH is one (inbox topics carry {op, args, from}, binary or JSON). */
function rpcCall(
  topic: string,
  payload: Buffer,
): { op: string; phase?: number; session?: string } | null {
  if (!/^tss\/v1\/nodes\/[^/]+\/inbox$/.test(topic)) return null;
  try {
    const v = decodeNodePayload(payload).value as {
      op?: unknown;
      args?: { phase?: unknown; sessionId?: unknown };
    };
    if (typeof v?.op !== "string") return null;
    const session = v.args?.sessionId;
    return {
      op: v.op,
      ...(typeof v.args?.phase === "number" ? { phase: v.args.phase } : {}),
      ...(session instanceof Uint8Array ? { session: toHex(session) } : {}),
    };
  } catch {
    return null;
  }
}

/** Registers the matrix's vitest suites; `cells()` lists the cells registered (known once the file is collected). */
export function describeFaultMatrix(o: { sample: boolean }): { cells(): readonly string[] } {
  const registered: string[] = [];
  /** `it`, remembering the cell's title. */
  const cell = (title: string, fn: () => Promise<void>, timeoutMs?: number) => {
    registered.push(title);
    return it(title, fn, timeoutMs);
  };
  let cluster: LocalCluster;
  let dir: string;
  let client: TssClient;
  let relay: FaultRelay;
  let presence: PresenceWatch;
  let w3: CreateWalletResult;
  let w2: CreateWalletResult;
  const kinds: Kind[] = o.sample ? ["sign"] : ["sign", "dkg", "refresh"];

  const keyOf = (w: CreateWalletResult) => fromHex(w.publicKey);
  const verified = (w: CreateWalletResult, r: SignResult) =>
    verifySignature(keyOf(w), fromHex(r.digest), {
      r: fromHex(r.signature.r),
      s: fromHex(r.signature.s),
      recoveryId: r.signature.recoveryId,
    });
  const lastStatus = (id: string) => presence.last(id);
  /** What each cell saw, printed at the end (docs/RELIABILITY.md quotes it). */
  const seenOutcomes: string[] = [];
  const report = (line: string) => seenOutcomes.push(line);

  /** Sessions open in each enclave, asked over a second channel to its socket. */
  async function openSessions(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const n of cluster.nodes) {
      const c = await EnclaveClient.connect(
        { kind: "unix", path: join(dir, `${n.nodeId}.enclave.sock`) },
        { reconnect: false },
      );
      try {
        out[n.nodeId] = (await c.health()).openSessions;
      } finally {
        c.close();
      }
    }
    return out;
  }

  /** No enclave keeps a session once every request is answered (aborts are sent at once; allow them to land). */
  async function noOpenSessions(): Promise<void> {
    let open: Record<string, number> = {};
    const end = Date.now() + 10_000;
    do {
      open = await openSessions();
      if (Object.values(open).every((v) => v === 0)) return;
      await sleep(200);
    } while (Date.now() < end);
    expect(open).toEqual(Object.fromEntries(cluster.nodes.map((n) => [n.nodeId, 0])));
  }

  /** Both wallets sign at their current generation, every node among the signers of the 3-of-3. */
  async function stillSigns(): Promise<void> {
    const a = await step(
      "the 3-of-3 signing afterwards",
      client.sign({ walletId: w3.walletId, digest: randomBytes(32), timeoutMs: CEREMONY_MS }),
    );
    expect(a.signers.sort()).toEqual(["node-1", "node-2", "node-3"]);
    expect(verified(w3, a)).toBe(true);
    const b = await step(
      "the 2-of-3 signing afterwards",
      client.sign({ walletId: w2.walletId, digest: randomBytes(32), timeoutMs: CEREMONY_MS }),
    );
    expect(verified(w2, b)).toBe(true);
  }

  /** Starts one ceremony of `kind` against the 3-of-3 wallet (or a new 3-of-3 for DKG). */
  function run(
    kind: Kind,
    onProgress?: (p: { stage: string; phase?: number; coordinator?: string }) => void,
    timeoutMs?: number,
  ) {
    if (kind === "sign")
      return client.sign({ walletId: w3.walletId, digest: randomBytes(32), onProgress, timeoutMs });
    if (kind === "dkg")
      return client.createWallet({ threshold: 3, parties: 3, onProgress, timeoutMs });
    return client.refresh({ walletId: w3.walletId, onProgress, timeoutMs });
  }

  async function generation(): Promise<number> {
    return (await step("the wallet query", client.wallet(w3.walletId, { timeoutMs: QUERY_MS })))
      .generation;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tss-fault-matrix-"));
    cluster = await startCluster({ nodes: 3, dataDir: dir, phaseTimeoutMs: PHASE_TIMEOUT_MS });
    // node-3 reaches the broker through the relay from now on.
    relay = await startFaultRelay({ brokerPort: cluster.broker.port });
    const n3 = cluster.nodes.find((n) => n.nodeId === RELAYED)!;
    const cfg = JSON.parse(readFileSync(n3.config, "utf8")) as { mqtt: { url: string } };
    cfg.mqtt.url = relay.url;
    writeFileSync(n3.config, JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
    await n3.restartHost();
    presence = await watchPresence(cluster.observer);
    await until(() => lastStatus(RELAYED) === "online", 20_000, "node-3 online through the relay");
    client = await TssClient.connect({ ...cluster.client, timeoutMs: 180_000 });
    w3 = await client.createWallet({ threshold: 3, parties: 3 });
    w2 = await client.createWallet({ threshold: 2, parties: 3 });
  });

  afterAll(async () => {
    if (seenOutcomes.length) console.info(`fault matrix outcomes:\n  ${seenOutcomes.join("\n  ")}`);
    await client?.close().catch(() => {});
    await presence?.close();
    const pids = cluster
      ? [
          cluster.broker.proc.pid,
          ...cluster.nodes.flatMap((n) => [n.host.proc.pid, n.enclave.proc.pid]),
        ]
      : [];
    await cluster?.stop();
    await relay?.close();
    // No process outlives the cluster, the restarted broker included.
    for (const pid of pids) expect(() => process.kill(pid!, 0)).toThrow();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("message delay and drop between node-3 and the broker", () => {
    for (const kind of kinds)
      cell(
        `${kind}: every packet delayed ${DELAY_MS} ms each way, well inside the phase deadline: it completes`,
        async () => {
          const before = relay.delayed;
          relay.setDelay(DELAY_MS);
          const t = Date.now();
          try {
            const r = await run(kind);
            if (kind === "sign") expect(verified(w3, r as SignResult)).toBe(true);
          } finally {
            relay.setDelay(0);
          }
          // Four phases, each a call and its reply crossing the relay: the delay was really paid.
          expect(Date.now() - t).toBeGreaterThanOrEqual(8 * DELAY_MS);
          expect(relay.delayed - before).toBeGreaterThan(8);
          await noOpenSessions();
          await stillSigns();
        },
      );

    for (const kind of kinds)
      cell(
        `${kind}: one phase-2 message dropped: the whole session is aborted with an answer within the phase deadline, never retried`,
        async () => {
          const gen0 = await generation();
          const walletsBefore = (await client.wallets()).wallets.length;
          let victim: { op: string; phase?: number; session?: string; topic: string } | null = null;
          relay.dropWhere((p) => {
            if (victim) return false;
            const c = rpcCall(p.topic, p.payload);
            if (c?.op !== "step" || c.phase !== 2) return false;
            victim = { ...c, topic: p.topic };
            return true;
          });
          const from = relay.seen.length;
          const t = Date.now();
          let err: TssError | null = null;
          try {
            await run(kind);
          } catch (e) {
            err = e as TssError;
          } finally {
            relay.dropWhere(null);
          }
          const took = Date.now() - t;
          expect(victim).not.toBeNull();
          expect(err).toBeInstanceOf(TssError);
          // The call that never arrived is answered by the coordinator's phase deadline, not the client's.
          expect(err!.code).toBe("deadline_exceeded");
          expect(took).toBeLessThan(PHASE_TIMEOUT_MS + 60_000);
          expect(took).toBeGreaterThanOrEqual(PHASE_TIMEOUT_MS - 1_000);
          // Never a retry: no second phase-2 step of that session to that inbox crossed the relay.
          const again = relay.seen.slice(from).filter((p) => {
            const c = rpcCall(p.topic, p.payload);
            return (
              c?.op === "step" &&
              c.phase === 2 &&
              c.session === victim!.session &&
              p.topic === victim!.topic
            );
          });
          expect(again).toHaveLength(1);
          expect(again[0]!.dropped).toBe(true);
          await noOpenSessions();
          // Nothing half-made: no new wallet, no new generation.
          if (kind === "dkg") expect((await client.wallets()).wallets).toHaveLength(walletsBefore);
          if (kind === "refresh") expect(await generation()).toBe(gen0);
          await stillSigns();
        },
      );

    if (!o.sample)
      cell(
        "sign: node-3's traffic delayed beyond the phase deadline from phase 2 on: aborted at the deadline, the late messages revive nothing",
        async () => {
          const late = PHASE_TIMEOUT_MS + 2_000;
          let delayedAt = 0;
          const err = await run("sign", (p) => {
            if (delayedAt || p.stage !== "sign" || p.phase !== 2) return;
            delayedAt = Date.now();
            relay.setDelay(late);
          }).then(
            () => null,
            (e: unknown) => e as TssError,
          );
          const answeredAfter = Date.now() - delayedAt;
          relay.setDelay(0);
          // Let what was held drain first (later cells need node-3's link clear): replies to calls
          // already given up on are dropped as late.
          await sleep(late + 2_000);
          expect(delayedAt).toBeGreaterThan(0);
          expect(err).toBeInstanceOf(TssError);
          expect(err!.code).toBe("deadline_exceeded");
          // The phase deadline, then the aborts (each waits up to a phase deadline for its answer,
          // which node-3's link holds back), then, when node-3 coordinates, its own held answer.
          expect(answeredAfter).toBeLessThan(2 * PHASE_TIMEOUT_MS + late + 10_000);
          expect(answeredAfter).toBeGreaterThanOrEqual(PHASE_TIMEOUT_MS - 1_000);
          report(
            `delay beyond the deadline mid-sign: ${err!.code} ${answeredAfter} ms after the delay began`,
          );
          await noOpenSessions();
          await stillSigns();
        },
      );
  });

  describe("broker restart", () => {
    for (const kind of kinds)
      cell(
        `${kind}: Mosquitto killed (SIGKILL) mid-ceremony and restarted: in-flight requests are answered, nodes reconnect and re-announce, later requests sign`,
        async () => {
          const gen0 = await generation();
          const restartedAt = { t: 0 };
          let restarting: Promise<void> | null = null;
          /** Each in-flight request's coordinator, as its progress names it. */
          const coordinators: (string | undefined)[] = [];
          const onProgress =
            (k: number) => (p: { stage: string; phase?: number; coordinator?: string }) => {
              coordinators[k] ??= p.coordinator;
              if (restarting || p.stage !== kind || p.phase !== 2) return;
              restartedAt.t = Date.now();
              restarting = cluster.broker.restart(1_000);
            };
          // Signatures run several at once; a wallet has one DKG or refresh at a time.
          // Each request's own deadline is the bound its answer must beat: the answer that
          // settles it must come from a node, not from that deadline (checked below).
          const inFlight = Array.from({ length: kind === "sign" ? 3 : 1 }, (_, k) =>
            run(kind, onProgress(k), RESTART_ANSWER_MS).then(
              () => Date.now(),
              (e: unknown) => e,
            ),
          );
          const settled = await Promise.all(inFlight);
          expect(restarting).not.toBeNull();
          await step("restarting the broker", restarting!);
          settled.forEach((s, k) => {
            const who = `in-flight request ${k} (coordinator ${coordinators[k] ?? "unknown"})`;
            // An answer (a result, or an error that says what happened), well before the client's own deadline.
            if (typeof s === "number")
              expect(s - restartedAt.t, `${who}: answered late`).toBeLessThan(RESTART_ANSWER_MS);
            else {
              expect(s, who).toBeInstanceOf(TssError);
              const e = s as TssError;
              expect(e.message, `${who}: no node answered it, its own deadline did`).not.toMatch(
                /^No final answer/,
              );
              expect(["deadline_exceeded", "ceremony_failed"], `${who}: ${e.message}`).toContain(
                e.code,
              );
            }
          });
          expect(Date.now() - restartedAt.t).toBeLessThan(RESTART_ANSWER_MS);
          report(
            `broker restart mid-${kind}: ${settled.map((s) => (typeof s === "number" ? "completed" : (s as TssError).code)).join(", ")}`,
          );
          // Every node announced itself again on the new broker (it kept no retained presence).
          const back = (id: string) =>
            presence.history(id).some((p) => p.at > restartedAt.t && p.status === "online");
          await until(
            () => cluster.nodes.every((n) => back(n.nodeId)),
            REANNOUNCE_MS,
            "every node online on the restarted broker",
          ).catch((e: Error) => {
            const missing = cluster.nodes.filter((n) => !back(n.nodeId)).map((n) => n.nodeId);
            throw new Error(`${e.message} (not back: ${missing.join(", ")})`);
          });
          await noOpenSessions();
          const gen1 = await generation();
          if (kind === "refresh" && typeof settled[0] === "number") expect(gen1).toBe(gen0 + 1);
          else if (kind === "refresh") expect([gen0, gen0 + 1]).toContain(gen1);
          else expect(gen1).toBe(gen0);
          // Every holder on that one generation (no mixed generations left behind).
          expect(
            (await step("the wallet query", client.wallet(w3.walletId, { timeoutMs: QUERY_MS })))
              .nodes,
          ).toHaveLength(3);
          await stillSigns();
          // A new ceremony of the same kind runs on the restarted broker.
          await step<unknown>(`a new ${kind} after the restart`, run(kind, undefined, CEREMONY_MS));
        },
        RESTART_CELL_MS,
      );
  });

  describe(`${RELAYED}'s database unavailable (another process holds its write lock)`, () => {
    /** An operator's tool (a backup, a sqlite3 shell) holding the write lock of node-3's file. */
    const lockDatabase = () => lockDatabaseFile(join(dir, `${RELAYED}.db`));
    /** A failure caused by node-3's database: names node-3 and says why. */
    const blamesLockedDb = (e: unknown) => {
      expect(e).toBeInstanceOf(TssError);
      expect((e as TssError).node).toBe(RELAYED);
      expect((e as TssError).message).toMatch(/database is locked/);
      expect(["internal", "ceremony_failed"]).toContain((e as TssError).code);
    };

    /** node-3's presence turns `status` after `from` (its database probe runs every 5 s while healthy, every 1 s while not). */
    const presenceTurns = (status: string, from: number, within: number) =>
      until(
        () => presence.history(RELAYED).some((p) => p.at >= from && p.status === status),
        within,
        `node-3 ${status}`,
      );

    cell(
      "its writes fail closed with an error naming it, it withdraws (degraded) while locked, nothing is lost, the others keep signing, it comes back online when the lock goes",
      async () => {
        const gen0 = await generation();
        const walletsBefore = (await client.wallets()).wallets.map((w) => w.walletId);
        const lockedAt = Date.now();
        const release = lockDatabase();
        try {
          // Withdrawn by its write probe, at most one healthy period (5 s) after the lock, or at its first failed write.
          await presenceTurns("degraded", lockedAt, 15_000);
          report(`database locked: node-3 degraded after ${Date.now() - lockedAt} ms`);
          const outcomes = await Promise.allSettled(
            Array.from({ length: 6 }, () =>
              client.sign({ walletId: w2.walletId, digest: randomBytes(32) }),
            ),
          );
          // Degraded, node-3 left the shared request subscription (bus.ts setStatus): it takes no
          // request it would fail at its first write, so every sign is coordinated elsewhere.
          const signed = outcomes.filter((x) => x.status === "fulfilled");
          for (const x of outcomes)
            if (x.status === "rejected") blamesLockedDb(x.reason);
            else {
              expect(verified(w2, x.value)).toBe(true);
              // Degraded: no coordinator selects node-3 as a signer, and it coordinates none.
              expect(x.value.signers).not.toContain(RELAYED);
              expect(x.value.coordinator).not.toBe(RELAYED);
            }
          report(
            `database locked, 6 signs of the 2-of-3: ${signed.length} signed, ${6 - signed.length} refused`,
          );
          expect(signed.length).toBe(6);
          if (!o.sample) {
            // A refresh needs node-3, which is withdrawn (or, coordinating, cannot record it): refused, generation unchanged.
            const err = await client.refresh({ walletId: w3.walletId }).then(
              () => null,
              (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(TssError);
            report(
              `database locked, refresh: ${(err as TssError).code}: ${(err as TssError).message.slice(0, 120)}`,
            );
            // A 3-of-3 DKG needs it too: refused, no wallet made.
            const dkgErr = await client.createWallet({ threshold: 3, parties: 3 }).then(
              () => null,
              (e: unknown) => e,
            );
            expect(dkgErr).toBeInstanceOf(TssError);
            report(
              `database locked, DKG: ${(dkgErr as TssError).code}: ${(dkgErr as TssError).message.slice(0, 120)}`,
            );
          }
        } finally {
          release();
        }
        const releasedAt = Date.now();
        // Back online once its probe (every 1 s while failing) takes the lock again.
        await presenceTurns("online", releasedAt, 10_000);
        report(`database released: node-3 online after ${Date.now() - releasedAt} ms`);
        await noOpenSessions();
        expect(await generation()).toBe(gen0);
        expect((await client.wallet(w3.walletId)).nodes).toHaveLength(3);
        // No wallet was made, half or whole.
        expect(
          (await client.wallets()).wallets.filter((w) => !walletsBefore.includes(w.walletId)),
        ).toEqual([]);
        // Back: node-3 signs as a participant and, once it takes a request, as a coordinator.
        let coordinated = false;
        for (let i = 0; i < 12 && !coordinated; i++) {
          const r = await client.sign({ walletId: w3.walletId, digest: randomBytes(32) });
          expect(verified(w3, r)).toBe(true);
          coordinated = r.coordinator === RELAYED;
        }
        expect(coordinated).toBe(true);
        if (!o.sample)
          expect((await client.refresh({ walletId: w3.walletId })).generation).toBe(gen0 + 1);
        await stillSigns();
      },
    );

    if (!o.sample)
      cell(
        "locked mid-DKG: node-3 cannot store its share, every holder rolls back, no half wallet remains, the error names node-3",
        async () => {
          const walletsBefore = (await client.wallets()).wallets.map((w) => w.walletId);
          const walletId = `w_fm_${randomBytes(6).toString("hex")}`;
          let release: (() => void) | null = null;
          const err = await client
            .createWallet({
              threshold: 3,
              parties: 3,
              walletId,
              onProgress: (p) => {
                // node-3 is already in the ceremony: degraded does not end it; its persist meets the lock.
                if (!release && p.stage === "dkg" && p.phase === 2) release = lockDatabase();
              },
            })
            .then(
              () => null,
              (e: unknown) => e,
            );
          expect(release).not.toBeNull();
          release!();
          blamesLockedDb(err);
          report(
            `database locked mid-DKG: ${(err as TssError).code}: ${(err as TssError).message.slice(0, 120)}`,
          );
          await presenceTurns("online", Date.now() - 1_000, 10_000);
          await noOpenSessions();
          // No holder kept its share: the wallet is not found, and not listed, anywhere.
          const lookup = await client.wallet(walletId).then(
            () => null,
            (e: unknown) => e as TssError,
          );
          expect(lookup?.code).toBe("not_found");
          expect(
            (await client.wallets()).wallets.filter((w) => !walletsBefore.includes(w.walletId)),
          ).toEqual([]);
          await stillSigns();
        },
      );

    if (!o.sample)
      cell(
        "locked mid-ceremony: every request is answered; one node-3 coordinated is refused on resubmission until node-3 restarts, then failed, never signed twice",
        async () => {
          let release: (() => void) | null = null;
          const ids = Array.from({ length: 4 }, () => `fm-${randomBytes(6).toString("hex")}`);
          const digests = ids.map(() => randomBytes(32));
          const outcomes = await Promise.allSettled(
            ids.map((requestId, k) =>
              client.sign({
                walletId: w3.walletId,
                digest: digests[k]!,
                requestId,
                onProgress: (p) => {
                  if (!release && p.stage === "sign" && p.phase === 2) release = lockDatabase();
                },
              }),
            ),
          );
          expect(release).not.toBeNull();
          // Held a while, then the database is back.
          await sleep(2_000);
          release!();
          for (const x of outcomes)
            if (x.status === "rejected") {
              // A locked write blocks node-3's host for its busy timeout (250 ms while running; the
              // driver is synchronous), so a call to it may also reach its deadline: node-3 is named either way.
              expect(x.reason).toBeInstanceOf(TssError);
              expect((x.reason as TssError).node).toBe(RELAYED);
              expect((x.reason as TssError).message).toMatch(/database is locked|did not answer/);
            } else expect(verified(w3, x.value)).toBe(true);
          // Resubmitting each id: a success comes back as it was; a failure is never run again.
          const again = await Promise.allSettled(
            ids.map((requestId, k) =>
              client.sign({ walletId: w3.walletId, digest: digests[k]!, requestId }),
            ),
          );
          const lines: string[] = [];
          /** The signature each id has released, if any: never a second one. */
          const released: (SignResult["signature"] | null)[] = [];
          for (let k = 0; k < ids.length; k++) {
            const first = outcomes[k]!;
            const second = again[k]!;
            if (first.status === "fulfilled") {
              expect(second.status).toBe("fulfilled");
              expect((second as PromiseFulfilledResult<SignResult>).value.signature).toEqual(
                first.value.signature,
              );
              released.push(first.value.signature);
              lines.push("signed; resubmission: the same signature");
            } else if (second.status === "fulfilled") {
              // Refused before node-3 recorded anything: nothing ran, so the resubmission runs once.
              expect(verified(w3, second.value)).toBe(true);
              released.push(second.value.signature);
              lines.push("refused before it started; resubmission signed");
            } else {
              // node-3's row of a ceremony it could not finish recording is "running" (bad_request) while
              // the lock holds, then written failed when its database is back (src/host/ceremony-ends.ts).
              const code = (second.reason as TssError).code;
              expect(["bad_request", "ceremony_failed"]).toContain(code);
              released.push(null);
              lines.push(
                `refused mid-ceremony; resubmission ${code}: ${(second.reason as TssError).message.slice(0, 60)}`,
              );
            }
          }
          report(`database locked mid-sign: ${lines.join("; ")}`);
          // After a restart too (its start-up recovery or the kept ends), those ids answer
          // ceremony_failed, never a signature.
          const n3 = cluster.nodes.find((n) => n.nodeId === RELAYED)!;
          await n3.restartHost();
          await until(
            () => lastStatus(RELAYED) === "online",
            30_000,
            "node-3 online after restart",
          );
          // Its start-up recovery runs 5 s after start.
          await sleep(7_000);
          for (let k = 0; k < ids.length; k++) {
            const r = await client
              .sign({ walletId: w3.walletId, digest: digests[k]!, requestId: ids[k] })
              .then(
                (v) => v,
                (e: unknown) => e as TssError,
              );
            if (released[k]) expect((r as SignResult).signature).toEqual(released[k]);
            else expect((r as TssError).code).toBe("ceremony_failed");
          }
          await noOpenSessions();
          await stillSigns();
        },
      );
  });
  return { cells: () => registered };
}
