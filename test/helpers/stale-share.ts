/**
 * What the lifecycle acceptance tests (share repair, reshare) do with a node's
 * database: copy it while its host is stopped, read it, put a backup back into
 * a freshly started genuine enclave, and force a signature with the restored
 * share among current holders, every host in the quorum played in this
 * process (their host processes stopped; their enclaves the cluster's), the
 * restored node's lying that it is current (HostileNode), so only the
 * enclaves can refuse.
 */
import { copyFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ClusterNode, LocalCluster } from "../../src/cluster/local-cluster.ts";
import { expect } from "vitest";
import { TssClient, TssError } from "../../src/client/index.ts";
import type { KeySigner } from "../../src/client/signers.ts";
import { fromHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { CeremonyError, signDigest } from "../../src/host/coordinator.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import { staticCredentials } from "../../src/host/kms-credentials.ts";
import { startKmsRelay, type KmsRelay } from "../../src/host/kms-relay.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import {
  currentShare,
  generationOf,
  getWallet,
  openReadOnlyFile,
  openStore,
} from "../../src/host/store/index.ts";
import type { CeremonyStepRequest } from "../../src/shared/wire/enclave-ops.ts";
import { HostileNode } from "./hostile-node.ts";
import { signApproval } from "./raw-client.ts";
import { rejected } from "./thrown.ts";

const SIDE_FILES = ["", "-wal", "-shm"];

/** Copies a stopped host's database (the file and whatever WAL files lie beside it) to `to`. */
export function copyDatabase(from: string, to: string): void {
  for (const s of SIDE_FILES) {
    if (existsSync(`${from}${s}`)) copyFileSync(`${from}${s}`, `${to}${s}`);
    else rmSync(`${to}${s}`, { force: true });
  }
}

/** A consistent copy of node `nodeId`'s database in `dir` to `to`: its host stopped for the copy, then started again. */
export async function backupNodeDatabase(
  cluster: LocalCluster,
  dir: string,
  nodeId: string,
  to: string,
): Promise<void> {
  const node = cluster.nodes.find((n) => n.nodeId === nodeId)!;
  await node.host.stop();
  copyDatabase(join(dir, `${nodeId}.db`), to);
  await node.restartHost();
}

/** Waits until every node in `ids` is live in the client's view of presence. */
export async function untilOnline(client: TssClient, ids: readonly string[]): Promise<void> {
  await eventually(async () => {
    const live = (await client.nodes()).nodes.map((n) => n.nodeId);
    return ids.every((n) => live.includes(n));
  });
}

/** Runs `f` on node `nodeId`'s database in `dir`, opened read-only. */
export function fromNodeDb<T>(
  dir: string,
  nodeId: string,
  f: (db: ReturnType<typeof openReadOnlyFile>) => T,
): T {
  const db = openReadOnlyFile(join(dir, `${nodeId}.db`));
  try {
    return f(db);
  } finally {
    db.close();
  }
}

/** Polls an asynchronous condition every 250 ms; throws after `ms`. */
export async function eventually(ok: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Puts `backup` back as `node`'s database, its host stopped (and left stopped) and its enclave
 * restarted (no memory); `keep`: where to copy the database it replaces first.
 */
export async function restoreIntoFreshEnclave(
  dir: string,
  node: ClusterNode,
  backup: string,
  keep?: string,
): Promise<void> {
  await node.host.stop();
  if (keep !== undefined) copyDatabase(join(dir, `${node.nodeId}.db`), keep);
  const release = node.enclave.holdRestarts();
  const restarts = node.enclave.restarts;
  process.kill(node.enclave.proc.pid!, "SIGKILL");
  copyDatabase(backup, join(dir, `${node.nodeId}.db`));
  release();
  await node.enclave.restarted(restarts + 1);
}

/** One signature through the API, verified under `publicKey`; its signers. */
export async function signVerified(
  client: TssClient,
  o: { walletId: string; publicKey: string; signers: KeySigner[] },
): Promise<string[]> {
  const digest = randomBytes(32);
  const s = await client.sign({ walletId: o.walletId, digest, signers: o.signers });
  const sig = {
    r: fromHex(s.signature.r),
    s: fromHex(s.signature.s),
    recoveryId: s.signature.recoveryId,
  };
  expect(verifySignature(fromHex(o.publicKey), digest, sig)).toBe(true);
  return s.signers;
}

/**
 * `times` signatures asked through the API with a restored node online: each answer's outcome
 * ("signed" or the error code); every success must verify under `publicKey` and have been made
 * without `without`, and a failure carries no signature.
 */
export async function apiSignOutcomes(
  client: TssClient,
  o: { walletId: string; publicKey: string; signers: KeySigner[]; without: string; times: number },
): Promise<string[]> {
  const outcomes: string[] = [];
  for (let k = 0; k < o.times; k++) {
    const r = await signVerified(client, o).catch((e: unknown) => e);
    if (r instanceof TssError) {
      outcomes.push(r.code);
      continue;
    }
    if (!Array.isArray(r)) throw r;
    expect(r).not.toContain(o.without);
    outcomes.push("signed");
  }
  return outcomes;
}

/** An honest participant (relays as is) that keeps what its enclave refused, by phase. */
export class Watched extends HostileNode {
  refusals: { phase: number; error: unknown }[] = [];
  override async step(req: CeremonyStepRequest) {
    try {
      return await super.step(req);
    } catch (error) {
      this.refusals.push({ phase: req.phase, error });
      throw error;
    }
  }
}

export interface ForcedSign {
  error: CeremonyError;
  /** Each honest member's refusals, in `honest` order. */
  refusals: { phase: number; error: unknown }[][];
  /** The wallet's current generation and the restored share's, as the stores say. */
  current: number;
  restored: { generation: number; partyIndex: number };
}

/**
 * A coordinator in this process signs with `honest` (current holders) and `stale` (whose host
 * process is already stopped and whose store holds the restored share), `stale`'s host lying
 * that it is current. Expects the signature refused; the honest hosts are restarted after.
 */
export async function forceSignWithStale(o: {
  cluster: LocalCluster;
  dir: string;
  walletId: string;
  honest: ClusterNode[];
  stale: ClusterNode;
  signers: KeySigner[];
}): Promise<ForcedSign> {
  for (const n of o.honest) await n.host.stop();
  try {
    return await withInProcessHosts(o.cluster, o.dir, [...o.honest, o.stale], async (hosts) => {
      const record = getWallet(hosts[0]!.db, o.walletId)!;
      const current = generationOf(hosts[0]!.db, o.walletId);
      const old = currentShare(hosts.at(-1)!.db, o.walletId, o.stale.nodeId);
      const liar = new HostileNode(hosts.at(-1)!);
      liar.staleShare = old;
      liar.claimedGeneration = current;
      const honest = hosts.slice(0, -1).map((h) => new Watched(h));
      const digest = randomBytes(32);
      const requestId = `restored-${randomBytes(4).toString("hex")}`;
      const approval = await signApproval(o.signers, o.walletId, requestId, digest);
      const error = await rejected(
        CeremonyError,
        signDigest([...honest, liar], record, current, digest, {
          phaseTimeoutMs: 60_000,
          approval,
        }),
      );
      return {
        error,
        refusals: honest.map((h) => h.refusals),
        current,
        restored: { generation: old.generation, partyIndex: old.partyIndex },
      };
    });
  } finally {
    for (const n of o.honest) await n.restartHost();
  }
}

/**
 * Runs `f` with a NodeHost in this process for each of `nodes` (whose host processes are
 * stopped), on its database and its genuine enclave, each with its own KMS relay; closes them.
 */
async function withInProcessHosts<T>(
  cluster: LocalCluster,
  dir: string,
  nodes: ClusterNode[],
  f: (hosts: NodeHost[]) => Promise<T>,
): Promise<T> {
  const relays: KmsRelay[] = [];
  const hosts: NodeHost[] = [];
  try {
    for (const n of nodes) {
      relays.push(
        startKmsRelay({
          listen: { kind: "unix", path: join(dir, `${n.nodeId}.kms-relay.sock`) },
          target: { host: "127.0.0.1", port: cluster.kms.port },
        }),
      );
      hosts.push(
        new NodeHost({
          nodeId: n.nodeId,
          enclave: await EnclaveClient.connect({
            kind: "unix",
            path: join(dir, `${n.nodeId}.enclave.sock`),
          }),
          credentials: staticCredentials({
            accessKeyId: cluster.kms.accessKeyId,
            secretAccessKey: cluster.kms.secretAccessKey,
          }),
          db: openStore({ path: join(dir, `${n.nodeId}.db`) }).db,
        }),
      );
    }
    return await f(hosts);
  } finally {
    for (const h of hosts) {
      h.db.close();
      (h as unknown as { enclave: EnclaveClient }).enclave.close();
    }
    await Promise.allSettled(relays.map((r) => r.close()));
  }
}

/** Every `size`-element subset of `items`, in lexicographic order. */
export function combinations<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  return items.flatMap((x, i) =>
    combinations(items.slice(i + 1), size - 1).map((rest) => [x, ...rest]),
  );
}

/**
 * Signs once with every `size`-node quorum of `holders` (the API picks its own signers, so the
 * coordinator runs in this process: every holder's host process is stopped and played here,
 * honestly, on its own database and genuine enclave), each approved and verified under
 * `publicKey`; the host processes are restarted after. Returns the quorums that signed.
 */
export async function signWithEveryQuorum(o: {
  cluster: LocalCluster;
  dir: string;
  walletId: string;
  publicKey: string;
  holders: ClusterNode[];
  size: number;
  signers: KeySigner[];
}): Promise<string[][]> {
  for (const n of o.holders) await n.host.stop();
  try {
    return await withInProcessHosts(o.cluster, o.dir, o.holders, async (hosts) => {
      const record = getWallet(hosts[0]!.db, o.walletId)!;
      const current = generationOf(hosts[0]!.db, o.walletId);
      const signed: string[][] = [];
      for (const quorum of combinations(hosts, o.size)) {
        const digest = randomBytes(32);
        const requestId = `quorum-${randomBytes(4).toString("hex")}`;
        const approval = await signApproval(o.signers, o.walletId, requestId, digest);
        const sig = await signDigest(
          quorum.map((h) => new HostileNode(h)),
          record,
          current,
          digest,
          { phaseTimeoutMs: 60_000, approval },
        );
        expect(verifySignature(fromHex(o.publicKey), digest, sig)).toBe(true);
        signed.push(quorum.map((h) => h.nodeId));
      }
      return signed;
    });
  } finally {
    for (const n of o.holders) await n.restartHost();
  }
}
