/**
 * Generations a host cannot roll back (issue 9 item 3, acceptance (d)) over
 * the real bus: the local cluster (separate host and enclave processes, a
 * real Mosquitto with one broker user per node and per client, the KMS
 * stand-in, libsql files) and the SDK with approvals and trust configured.
 *
 * A 3-of-5 wallet under a 2-of-3 approval policy; node X's database file is
 * copied while X's host is stopped; the wallet is refreshed to generation 1;
 * X's host and enclave are stopped, the old file is put back (its KMS blob
 * still decrypts) and X starts again: a fresh enclave, no memory of
 * generation 1, its host honestly reporting generation 0.
 *
 * Then signature requests through the SDK, which the broker's shared
 * subscription spreads over the five nodes, so X coordinates some of them:
 * every request is answered; every success verifies under the wallet's
 * vouched key and was signed by current nodes only; a failure (if any) is
 * stale_share naming X. What happens here: the planning round reads X's
 * generation 0 and leaves X out of every quorum (X coordinating included),
 * so no quorum with X is ever tried over MQTT and nothing fails. A fresh
 * trusting client verifies the wallet at generation 1 meanwhile whenever a
 * current node answers (it relays its copy of X's generation-1 statement,
 * kept from the refresh's commit certificate: src/host/wallet-vouchers.ts);
 * X, answering, has only generation-0 copies and the answer lacks its party,
 * which the SDK refuses; generation 0 is never believed. The client that saw
 * the refresh keeps generation 1.
 *
 * Then the restored row relabelled generation 1 in X's database (what the
 * attacker might add): the planning round takes X, X's enclave cannot open a
 * generation-0 seal as generation 1, and every request with X fails naming
 * X while the others sign. The quorums with X that reach the enclaves'
 * phase-2 share-state check (a host lying over RPC, not through its store)
 * are test/integration/rollback.test.ts's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startCluster,
  type ClusterNode,
  type LocalCluster,
} from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { generationOf, openDatabase, openReadOnlyFile } from "../../src/host/store/index.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const policy = { quorum: 2, approvers: [alice, bob, carol].map(approverKeyOf) };

/** The node whose database is rolled back. */
const X = "node-2";
/** Requests sent in all (more only if the broker never handed X one). */
const REQUESTS = 30;
/** Requests in flight at once: below the client user's in-flight cap (rate-limits.ts, 8). */
const BATCH = 6;

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
let vouchedKey: string;

const node = (nodeId: string): ClusterNode => cluster.nodes.find((n) => n.nodeId === nodeId)!;
const dbPath = (nodeId: string) => join(dir, `${nodeId}.db`);
const SIDE_FILES = ["", "-wal", "-shm"];

/** Copies a stopped host's database (the file and whatever WAL files lie beside it) to `to`. */
function copyDatabase(from: string, to: string): void {
  for (const s of SIDE_FILES) {
    if (existsSync(`${from}${s}`)) copyFileSync(`${from}${s}`, `${to}${s}`);
    else rmSync(`${to}${s}`, { force: true });
  }
}

/** The wallet's generation in a node's database file, read-only. */
function storedGeneration(nodeId: string): number {
  const db = openReadOnlyFile(dbPath(nodeId));
  try {
    return generationOf(db, wallet.walletId);
  } finally {
    db.close();
  }
}

async function online(nodeId: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const shown = await client.nodes();
    if (shown.nodes.find((n) => n.nodeId === nodeId)?.status === "online") return;
    if (Date.now() > end) throw new Error(`${nodeId} did not come back online`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function verified(r: SignResult, digest: Uint8Array): boolean {
  return verifySignature(fromHex(r.publicKey), digest, {
    r: fromHex(r.signature.r),
    s: fromHex(r.signature.s),
    recoveryId: r.signature.recoveryId,
  });
}

interface Outcome {
  digest: Uint8Array;
  coordinator: string | null;
  result?: SignResult;
  error?: unknown;
}

async function signOnce(): Promise<Outcome> {
  const digest = randomBytes(32);
  const o: Outcome = { digest, coordinator: null };
  try {
    o.result = await client.sign({
      walletId: wallet.walletId,
      digest,
      signers: [alice, bob],
      onProgress: (p) => {
        o.coordinator ??= p.coordinator ?? null;
      },
    });
    o.coordinator = o.result.coordinator;
  } catch (e) {
    o.error = e;
  }
  return o;
}

/**
 * Sends REQUESTS signature requests, BATCH at a time (more, up to twice as many, until the
 * broker's shared subscription has handed X at least one to coordinate).
 */
async function signMany(): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  while (
    outcomes.length < REQUESTS ||
    (outcomes.length < 2 * REQUESTS && !outcomes.some((o) => o.coordinator === X))
  )
    outcomes.push(...(await Promise.all(Array.from({ length: BATCH }, signOnce))));
  const byCoordinator: Record<string, number> = {};
  for (const o of outcomes)
    byCoordinator[o.coordinator ?? "?"] = (byCoordinator[o.coordinator ?? "?"] ?? 0) + 1;
  // X coordinated some requests.
  expect(byCoordinator[X] ?? 0, JSON.stringify(byCoordinator)).toBeGreaterThan(0);
  return outcomes;
}

/**
 * Every request answered (signOnce settles each); every success by the vouched key, verifying,
 * by three distinct current nodes (never X); every failure one of `codes`, naming X. Returns the failures.
 */
function checkOutcomes(outcomes: Outcome[], codes: string[]): Outcome[] {
  const failures = outcomes.filter((o) => o.error !== undefined);
  for (const o of failures) {
    expect(o.error).toBeInstanceOf(TssError);
    const e = o.error as TssError;
    expect(codes, e.message).toContain(e.code);
    expect(e.node, e.message).toBe(X);
  }
  for (const o of outcomes.filter((o) => o.result)) {
    const r = o.result!;
    expect(r.publicKey).toBe(vouchedKey);
    expect(verified(r, o.digest)).toBe(true);
    expect(r.signers).toHaveLength(3);
    expect(new Set(r.signers).size).toBe(3);
    expect(r.signers).not.toContain(X);
  }
  return failures;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-rollback-mqtt-"));
  cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await connectTrusting(cluster);
  wallet = await client.createWallet({ threshold: 3, parties: 5, policy, admins: [admin] });
  vouchedKey = toHex((await client.verifiedWallet(wallet.walletId)).publicKey);
  expect(vouchedKey).toBe(wallet.publicKey);

  // The backup: X's database copied while its host is stopped.
  const snapshot = join(dir, `${X}.before-refresh.db`);
  await node(X).host.stop();
  copyDatabase(dbPath(X), snapshot);
  await node(X).restartHost();
  await online(X);
  const refreshed = await client.refresh({ walletId: wallet.walletId, signers: [alice, carol] });
  expect(refreshed.generation).toBe(1);
  expect(refreshed.vouchedBy).toHaveLength(5);

  // The backup put back: X's host and enclave stopped, the old file restored, X started again.
  const x = node(X);
  await x.host.stop();
  const release = x.enclave.holdRestarts();
  const restarts = x.enclave.restarts;
  process.kill(x.enclave.proc.pid!, "SIGKILL");
  copyDatabase(snapshot, dbPath(X));
  release();
  await x.enclave.restarted(restarts + 1);
  await x.restartHost();
  await online(X);
}, 300_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a node whose database was rolled back, over MQTT", () => {
  it("holds its pre-refresh row (generation 0) while every other node is at generation 1", () => {
    expect(storedGeneration(X)).toBe(0);
    for (const n of cluster.nodes) if (n.nodeId !== X) expect(storedGeneration(n.nodeId)).toBe(1);
  });

  it("every sign request is answered; successes verify under the vouched key and are signed by current nodes only; X coordinates some", async () => {
    const outcomes = await signMany();
    const failures = checkOutcomes(outcomes, ["stale_share"]);
    const byX = outcomes.filter((o) => o.coordinator === X);
    // The planning round reads X's generation 0 and never puts X in a quorum, so no request
    // fails: X-coordinated ones are signed by three current nodes.
    expect(failures.map((o) => (o.error as Error).message)).toEqual([]);
    for (const o of byX) expect(o.result?.signers).not.toContain(X);
  }, 240_000);

  it("the SDK's verified generation stays 1: the client that saw the refresh keeps it; a fresh client verifies generation 1 from a current node's copy of X's statement, and never generation 0", async () => {
    expect((await client.verifiedWallet(wallet.walletId)).generation).toBe(1);
    // Another client user (a broker user has one connection at a time), the same trust.
    const fresh = await connectTrusting({ ...cluster, client: cluster.clients[1]! });
    try {
      // The broker hands each answer to any of the five nodes: a current one relays its copy
      // of X's generation-1 statement (all five vouch); X has only generation-0 copies (four).
      let verified = 0;
      for (let i = 0; i < 10; i++) {
        const shown = await fresh.wallet(wallet.walletId).catch((e: unknown) => e);
        if (shown instanceof TssError) {
          expect(shown.code).toBe("unverified_wallet");
          expect(shown.message).toMatch(/vouched for by 4 of its 5 holders; missing party/);
        } else {
          expect((shown as { generation: number }).generation).toBe(1);
          expect((shown as { vouchedBy?: unknown[] }).vouchedBy).toHaveLength(5);
          verified++;
        }
      }
      expect(verified).toBeGreaterThan(0);
      expect((await fresh.verifiedWallet(wallet.walletId)).generation).toBe(1);
    } finally {
      await fresh.close();
    }
    // Never generation 0: the client's cached verification is untouched by any failed one.
    expect((await client.verifiedWallet(wallet.walletId)).generation).toBe(1);
  }, 60_000);

  it("with the old row relabelled generation 1 in X's database, X enters quorums: each such request fails naming X, the others sign", async () => {
    // What an attacker who restores the backup might add: X's store now claims the current
    // generation, so the planning round takes X as a holder of generation 1.
    await node(X).host.stop();
    const db = openDatabase({ path: dbPath(X) });
    try {
      db.run("UPDATE shares SET generation = 1 WHERE wallet_id = :w AND node_id = :n", {
        w: wallet.walletId,
        n: X,
      });
      db.run("UPDATE wallets SET current_generation = 1 WHERE wallet_id = :w", {
        w: wallet.walletId,
      });
    } finally {
      db.close();
    }
    await node(X).restartHost();
    await online(X);
    expect(storedGeneration(X)).toBe(1);
    const outcomes = await signMany();
    // The share sealed for generation 0 does not open as generation 1 (seal.ts binds the
    // generation): X's prepare fails and the coordinator names X. (An enclave that loaded it as
    // generation 0 under a host claiming 1 is refused at phase 2: rollback.test.ts.)
    const failures = checkOutcomes(outcomes, ["ceremony_failed"]);
    for (const o of failures)
      expect((o.error as Error).message).toMatch(/node-2 could not load its share: unseal_failed/);
    expect(failures.length).toBeGreaterThan(0);
    expect(outcomes.length - failures.length).toBeGreaterThan(0);
    // Every request X coordinated includes X (the coordinator signs when it holds a share): all fail.
    for (const o of outcomes.filter((o) => o.coordinator === X)) expect(o.error).toBeDefined();
  }, 240_000);
});
