/**
 * Generations a host cannot roll back (issue 9 item 3), with five real enclave
 * processes, their libsql files and the KMS stand-in: a 3-of-5 wallet, one
 * node's (X's) database file copied while its host is stopped, a refresh to
 * generation 1, X's host stopped again and its database file put back, so X
 * holds its pre-refresh row and the old KMS blob (which KMS still decrypts).
 *
 * - X's enclave verified generation 1's commit certificate: it refuses to
 *   load the old share, so every quorum with X fails, naming X.
 * - After X's enclave restarts (memory gone) it loads the old share again.
 *   X's host then claims generation 1 (as a compromised host would, so the
 *   coordinator's own checks pass): every quorum with X, and a refresh, is
 *   aborted by the enclaves' share-state statements at phase 2 with
 *   stale_share naming X; a coordinator that believes the old generation gets
 *   no current node blamed.
 * - Every quorum of current nodes still signs, and the signatures verify.
 *
 * Quorums are chosen by calling the coordinator with explicit participants
 * (the request handler's planning would leave X out, as X reports generation 0).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import type { Supervised } from "../../src/harness/supervise.ts";
import {
  CeremonyError,
  createWallet,
  refreshWallet,
  signDigest,
} from "../../src/host/coordinator.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import { staticCredentials } from "../../src/host/kms-credentials.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { Participant, PreparedShare, WalletRecord } from "../../src/host/participant.ts";
import { currentShare, generationOf, openStore } from "../../src/host/store/index.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { rejected } from "../helpers/thrown.ts";

/** The node whose database is rolled back: node-2, party 2. */
const X = 1;
const X_ID = "node-2";
const CURRENT = [0, 2, 3, 4];

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;

const enclaveOf = (h: NodeHost) => (h as unknown as { enclave: EnclaveClient }).enclave;
/** Each node's database file now (a restore opens the copy where it was put). */
let dbPaths: string[];

/** Copies a closed database (the file and any WAL left beside it) to `to`. */
function copyDatabase(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

/** Stops host `i` (closes its store), runs `f` on its files, starts it again on the same enclave with the store at `dbPaths[i]`. */
function withHostStopped(i: number, f: () => void): void {
  const old = ln.hosts[i]!;
  old.db.close();
  f();
  ln.hosts[i] = new NodeHost({
    nodeId: old.nodeId,
    enclave: enclaveOf(old),
    credentials: staticCredentials(ln.kmsCredentials),
    db: openStore({ path: dbPaths[i]! }).db,
  });
}

/** A host whose word on its generation is `claimed` (X's compromised host claims the current one), so the coordinator's host-side check passes. */
class ClaimsGeneration implements Participant {
  constructor(
    readonly inner: NodeHost,
    private readonly claimed: number,
  ) {}
  get nodeId(): string {
    return this.inner.nodeId;
  }
  async prepare(walletId: string): Promise<PreparedShare> {
    return { ...(await this.inner.prepare(walletId)), generation: this.claimed };
  }
  attestation = () => this.inner.attestation();
  start: Participant["start"] = (r) => this.inner.start(r);
  step: Participant["step"] = (r) => this.inner.step(r);
  abort: Participant["abort"] = (s) => this.inner.abort(s);
  persist: Participant["persist"] = (...a) => this.inner.persist(...a);
  commit: Participant["commit"] = (...a) => this.inner.commit(...a);
  rollback: Participant["rollback"] = (...a) => this.inner.rollback(...a);
}

/** Every way to pick `k` of `xs`. */
function choose<T>(xs: T[], k: number): T[][] {
  if (k === 0) return [[]];
  return xs.flatMap((x, i) => choose(xs.slice(i + 1), k - 1).map((rest) => [x, ...rest]));
}

/** Quorums of three with X: X and two of the current nodes, X in every position. */
const quorumsWithX = choose(CURRENT, 2).map(([a, b], k) => {
  const q = [a!, b!];
  q.splice(k % 3, 0, X);
  return q;
});

async function signsAndVerifies(nodes: Participant[], generation = 1): Promise<void> {
  const digest = randomBytes(32);
  const sig = await signDigest(nodes, wallet, generation, digest, { phaseTimeoutMs: 60_000 });
  expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
}

function expectBlamesX(e: CeremonyError): void {
  expect(e.code).toBe("stale_share");
  expect(e.blame.node).toBe(X_ID);
  if (e.blame.party !== undefined) expect(e.blame.party).toBe(X + 1);
}

/** Signs with quorum `q`, X's host claiming generation 1; returns the refusal, checked to name X. */
async function signRefusedWithX(q: number[]): Promise<CeremonyError> {
  const liar = new ClaimsGeneration(ln.hosts[X]!, 1);
  const e = await rejected(
    CeremonyError,
    signDigest(
      q.map((i) => (i === X ? liar : ln.hosts[i]!)),
      wallet,
      1,
      randomBytes(32),
      { phaseTimeoutMs: 60_000 },
    ),
  );
  expectBlamesX(e);
  return e;
}

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-rollback-"));
  dbPaths = Array.from({ length: 5 }, (_, i) => join(dir, `node-${i + 1}.db`));
  ln = await startLocalNodes({ nodes: 5, dataDir: dir, phaseTimeoutMs: 60_000 });
  wallet = await createWallet(ln.hosts, 3);
  await signsAndVerifies([ln.hosts[0]!, ln.hosts[X]!, ln.hosts[2]!], 0);
  const snapshot = join(dir, "node-2.before-refresh.db");
  withHostStopped(X, () => copyDatabase(dbPaths[X]!, snapshot));
  expect(await refreshWallet(ln.hosts, wallet, 0)).toBe(1);
  // The backup put back: a copy of the pre-refresh files becomes node-2's database.
  withHostStopped(X, () => {
    const restored = join(dir, "node-2.restored.db");
    copyDatabase(snapshot, restored);
    dbPaths[X] = restored;
  });
}, 600_000);

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a node whose database was rolled back to before a refresh", () => {
  it("holds its pre-refresh row: generation 0, while every other node is at generation 1", () => {
    expect(generationOf(ln.hosts[X]!.db, wallet.walletId)).toBe(0);
    expect(currentShare(ln.hosts[X]!.db, wallet.walletId, X_ID).generation).toBe(0);
    for (const i of CURRENT) expect(generationOf(ln.hosts[i]!.db, wallet.walletId)).toBe(1);
  });

  it("its running enclave, which verified generation 1's commit certificate, refuses the old share: every quorum with it fails naming it", async () => {
    await expect(ln.hosts[X]!.prepare(wallet.walletId)).rejects.toMatchObject({
      code: "stale_share",
    });
    for (const q of quorumsWithX) {
      const e = await signRefusedWithX(q);
      expect(e.message).toMatch(/commit certificate for generation 1/);
    }
  }, 300_000);

  it("after its enclave restarts (no memory) it loads the old share, and the enclaves abort every quorum with it at phase 2, naming it", async () => {
    const supervised = ln.enclaves[X] as Supervised;
    const before = supervised.restarts;
    process.kill(supervised.proc.pid!, "SIGKILL");
    await supervised.restarted(before + 1);
    await until(() => enclaveOf(ln.hosts[X]!).available, "node-2's enclave channel");
    // The old share opens again: nothing in a fresh enclave knows generation 1 exists.
    await expect(ln.hosts[X]!.prepare(wallet.walletId)).resolves.toMatchObject({ generation: 0 });
    for (const q of quorumsWithX) {
      const e = await signRefusedWithX(q);
      // Decided by enclaves at phase 2: the refusal quotes the generations their statements signed.
      expect(e.message).toMatch(/party 2\) loaded generation 0|party 2 loaded generation 0/);
      expect(e.message).toMatch(/holds generation 1/);
    }
  }, 600_000);

  it("a coordinator that believes the old generation (its hosts agreeing) gets no current node blamed: the enclaves still name X", async () => {
    const current = CURRENT.slice(0, 2).map((i) => new ClaimsGeneration(ln.hosts[i]!, 0));
    const e = await rejected(
      CeremonyError,
      signDigest([ln.hosts[X]!, ...current], wallet, 0, randomBytes(32), {
        phaseTimeoutMs: 60_000,
      }),
    );
    expectBlamesX(e);
  }, 300_000);

  it("a refresh that includes it is aborted, naming it, and changes no generation", async () => {
    const liar = new ClaimsGeneration(ln.hosts[X]!, 1);
    const e = await rejected(
      CeremonyError,
      refreshWallet(
        ln.hosts.map((h, i) => (i === X ? liar : h)),
        wallet,
        1,
        { phaseTimeoutMs: 60_000 },
      ),
    );
    expectBlamesX(e);
    for (const i of CURRENT) expect(generationOf(ln.hosts[i]!.db, wallet.walletId)).toBe(1);
  }, 300_000);

  it("every quorum of current nodes still signs, and the signatures verify", async () => {
    for (const q of choose(CURRENT, 3)) await signsAndVerifies(q.map((i) => ln.hosts[i]!));
  }, 300_000);
});
