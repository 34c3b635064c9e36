/**
 * Retiring a wallet end to end (issue 11 item 3), with real processes: three
 * nodes (separate host and enclave processes), Mosquitto, the KMS stand-in,
 * libsql files, the SDK and the CLI. A 2-of-3 wallet with a 2-of-3 approval
 * policy: retirement without a quorum of its approvers is refused by every
 * enclave and the wallet keeps signing; `tss wallet retire` approved by two
 * approvers makes every enclave wipe its share, every host overwrite and
 * delete the wallet's rows (the sealed bytes are nowhere in the database
 * files afterwards), the wallet answer not_found, and every audit log name
 * the approvers. Rows restored from a backup into every database are refused
 * by the enclaves; once the enclaves restart they would load again (their
 * memory is all they have), until the KMS key policy denies the wallet's
 * encryption context, after which every load fails at KMS.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetKeyPolicyCommand, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf, keyIdOf, writeKeyFile } from "../../src/client/signers.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import {
  openDatabase,
  openReadOnlyFile,
  readAudit,
  type Row,
  type SqlValue,
} from "../../src/host/store/index.ts";
import { retiredWalletsDenyStatement } from "../../src/host/wallet-retirement.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { rejected } from "../helpers/thrown.ts";
import { runTss } from "../helpers/run-cli.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const policy = { quorum: 2, approvers: [alice, bob, carol].map(approverKeyOf) };
const TABLES = ["wallets", "shares", "wallet_statements"] as const;

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
/** Every node's rows of the wallet before it was retired: the "backup". */
const backup = new Map<string, Record<(typeof TABLES)[number], Record<string, SqlValue>[]>>();

const dbPath = (nodeId: string) => join(dir, `${nodeId}.db`);
const sign = (signers: KeySigner[]) =>
  client.sign({ walletId: wallet.walletId, digest: randomBytes(32), signers });

function rowsOf(
  nodeId: string,
  walletId = wallet.walletId,
): Record<(typeof TABLES)[number], Record<string, SqlValue>[]> {
  const db = openReadOnlyFile(dbPath(nodeId));
  try {
    return Object.fromEntries(
      TABLES.map((t) => [
        t,
        db.all(`SELECT * FROM ${t} WHERE wallet_id = :w`, { w: walletId }).map(asParams),
      ]),
    ) as Record<(typeof TABLES)[number], Record<string, SqlValue>[]>;
  } finally {
    db.close();
  }
}

/** A row as named parameters: blobs (read back as ArrayBuffer) as bytes. */
function asParams(row: Row): Record<string, SqlValue> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v instanceof ArrayBuffer ? new Uint8Array(v) : (v as SqlValue),
    ]),
  );
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).indexOf(Buffer.from(needle)) !== -1;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-retire-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await connectTrusting(cluster);
  wallet = await client.createWallet({ threshold: 2, parties: 3, policy, admins: [admin] });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("wallet retirement", () => {
  it("is refused by every enclave without a quorum of the wallet's approvers; the wallet keeps signing", async () => {
    const few = await rejected(
      TssError,
      client.retireWallet({ walletId: wallet.walletId, signers: [bob] }),
    );
    expect({ code: few.code, reason: few.reason }).toEqual({
      code: "unauthorised",
      reason: "below_quorum",
    });
    const outsiders = await rejected(
      TssError,
      client.retireWallet({ walletId: wallet.walletId, signers: [admin, alice] }),
    );
    expect({ code: outsiders.code, reason: outsiders.reason }).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
    const none = await rejected(TssError, client.retireWallet({ walletId: wallet.walletId }));
    expect(none.code).toBe("unauthorised");
    expect((await sign([alice, bob])).signers).toHaveLength(2);
    for (const n of cluster.nodes) expect(rowsOf(n.nodeId).shares).toHaveLength(1);
  });

  it("tss wallet retire: every enclave wipes its share, every host deletes the rows, the audit log names the approvers", async () => {
    for (const n of cluster.nodes) backup.set(n.nodeId, rowsOf(n.nodeId));
    const keys = mkdtempSync(join(tmpdir(), "tss-retire-keys-"));
    let run;
    try {
      writeKeyFile(join(keys, "alice.key"), alice);
      writeKeyFile(join(keys, "carol.key"), carol);
      const user = cluster.clients[1]!;
      run = await runTss(
        [
          "wallet",
          "retire",
          "--wallet",
          wallet.walletId,
          "--key",
          join(keys, "alice.key"),
          "--key",
          join(keys, "carol.key"),
          "--url",
          user.url,
          "--username",
          user.username,
          "--password",
          user.password,
          "--request-id",
          "retire-1",
          "--json",
        ],
        dir,
      );
    } finally {
      rmSync(keys, { recursive: true, force: true });
    }
    expect(run.status, run.stderr).toBe(0);
    const approvers = [keyIdOf(alice), keyIdOf(carol)].sort();
    const out = JSON.parse(run.stdout) as {
      walletId: string;
      address: string;
      retired: { nodeId: string; partyIndex: number }[];
      remaining: number[];
      approverKeyIds: string[];
    };
    expect(out.walletId).toBe(wallet.walletId);
    expect(out.address).toBe(wallet.address);
    expect(out.retired.map((r) => r.partyIndex)).toEqual([1, 2, 3]);
    expect(out.remaining).toEqual([]);
    expect([...out.approverKeyIds].sort()).toEqual(approvers);

    // The wallet is gone: not found, and nothing signs for it.
    expect((await rejected(TssError, client.wallet(wallet.walletId))).code).toBe("not_found");
    expect((await rejected(TssError, sign([alice, bob]))).code).toBe("not_found");

    for (const n of cluster.nodes) {
      const rows = rowsOf(n.nodeId);
      for (const t of TABLES) expect(rows[t], `${n.nodeId} ${t}`).toHaveLength(0);
      // Secure delete: no trace of the sealed share or its KMS blob in the database files.
      const old = backup.get(n.nodeId)!.shares[0]!;
      const sealed = old.sealed_share as Uint8Array;
      const blob = old.kms_ciphertext_blob as Uint8Array;
      for (const file of [dbPath(n.nodeId), `${dbPath(n.nodeId)}-wal`].filter(existsSync)) {
        const bytes = readFileSync(file);
        expect(contains(bytes, sealed.subarray(20, 84)), file).toBe(false);
        expect(contains(bytes, blob.subarray(blob.length - 64)), file).toBe(false);
      }
      // The audit log (its chain intact) records who approved.
      const audit = await runTss(
        ["audit", "--db", dbPath(n.nodeId), "--wallet", wallet.walletId, "--json"],
        dir,
      );
      expect(audit.status, audit.stderr).toBe(0);
      const retired = (
        JSON.parse(audit.stdout) as {
          entries: { event: string; detail: Record<string, unknown> }[];
        }
      ).entries.filter((e) => e.event === "wallet_retired");
      expect(retired).toHaveLength(1);
      expect(retired[0]!.detail.requestId).toBe("retire-1");
      expect([...(retired[0]!.detail.approverKeyIds as string[])].sort()).toEqual(approvers);
    }
  });

  it("rows restored from a backup into every database are refused by the enclaves", async () => {
    // The wallet and share rows: what loading needs (statements only vouch, for clients with trust).
    for (const n of cluster.nodes) {
      const db = openDatabase({ path: dbPath(n.nodeId) });
      try {
        db.transaction(() => {
          for (const t of ["wallets", "shares"] as const)
            for (const row of backup.get(n.nodeId)![t]) {
              const cols = Object.keys(row);
              db.run(
                `INSERT INTO ${t} (${cols.join(", ")}) VALUES (${cols.map((c) => `:${c}`).join(", ")})`,
                row,
              );
            }
        });
      } finally {
        db.close();
      }
    }
    // The hosts see the wallet again, but no enclave loads a share of it.
    const plain = await TssClient.connect({ ...cluster.clients[2]!, timeoutMs: 120_000 });
    try {
      expect((await plain.wallet(wallet.walletId)).walletId).toBe(wallet.walletId);
      const e = await rejected(
        TssError,
        plain.sign({ walletId: wallet.walletId, digest: randomBytes(32), signers: [alice, bob] }),
      );
      expect(e.code).toBe("not_found");
      expect(e.message).toMatch(/retired/);
    } finally {
      await plain.close();
    }
  });

  it("a restarted enclave forgets the retirement; the KMS Deny on the wallet's encryption context does not", async () => {
    const plain = await TssClient.connect({ ...cluster.clients[2]!, timeoutMs: 120_000 });
    const signPlain = () =>
      plain.sign({ walletId: wallet.walletId, digest: randomBytes(32), signers: [alice, bob] });
    try {
      // The gap: an enclave keeps its retired list in memory only, and the restored rows are
      // still decryptable by KMS for a fresh enclave of the same node.
      await restartEnclaves(plain);
      expect((await signPlain()).signers).toHaveLength(2);

      // The operator's step after a retirement: Deny the wallet's encryption context.
      const policy = JSON.parse(
        (
          await cluster.kms.client.send(
            new GetKeyPolicyCommand({ KeyId: cluster.kms.keyId, PolicyName: "default" }),
          )
        ).Policy!,
      ) as { Statement: unknown[] };
      policy.Statement.push(retiredWalletsDenyStatement([wallet.walletId]));
      await cluster.kms.client.send(
        new PutKeyPolicyCommand({
          KeyId: cluster.kms.keyId,
          PolicyName: "default",
          Policy: JSON.stringify(policy),
        }),
      );
      await restartEnclaves(plain);
      const e = await rejected(TssError, signPlain());
      expect(e.message).toMatch(/could not be opened/);
      // The holders asked to load failed at KMS, and their audit logs say so.
      const failedLoads = cluster.nodes.filter((n) => {
        const db = openReadOnlyFile(dbPath(n.nodeId));
        try {
          return readAudit(db, { walletId: wallet.walletId }).some(
            (x) => x.event === "unseal_failed",
          );
        } finally {
          db.close();
        }
      });
      expect(failedLoads.length).toBeGreaterThanOrEqual(1);
    } finally {
      await plain.close();
    }
  });

  it("with holders offline: refused below n - t + 1 parties, then completed by repeats as they return", async () => {
    const w2 = await client.createWallet({ threshold: 2, parties: 3, policy, admins: [admin] });
    const byParty = (k: number) => cluster.nodes.find((n) => n.nodeId === w2.nodes[k - 1])!;
    const retire = () => client.retireWallet({ walletId: w2.walletId, signers: [alice, bob] });
    await byParty(2).host.stop();
    await byParty(3).host.stop();
    await onlineAre(client, [byParty(1).nodeId]);
    // One party of three online: retiring it would leave two, enough to sign.
    expect((await rejected(TssError, retire())).code).toBe("not_enough_nodes");
    expect(rowsOf(byParty(1).nodeId, w2.walletId).shares).toHaveLength(1);

    await byParty(2).restartHost();
    await onlineAre(client, [byParty(1).nodeId, byParty(2).nodeId]);
    const first = await retire();
    expect(first.retired.map((r) => [r.partyIndex, r.earlier ?? false])).toEqual([
      [1, false],
      [2, false],
    ]);
    expect(first.remaining).toEqual([3]);

    // Party 3's holder returns with its rows; a repeat retires it and counts the others as done.
    await byParty(3).restartHost();
    await onlineAre(
      client,
      cluster.nodes.map((n) => n.nodeId),
    );
    expect(rowsOf(byParty(3).nodeId, w2.walletId).shares).toHaveLength(1);
    const second = await retire();
    expect(second.retired.map((r) => [r.partyIndex, r.earlier ?? false])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(second.remaining).toEqual([]);
    for (const n of cluster.nodes) expect(rowsOf(n.nodeId, w2.walletId).shares).toHaveLength(0);
    expect((await rejected(TssError, client.wallet(w2.walletId))).code).toBe("not_found");
  });
});

/** Waits until the client sees exactly `online` among the cluster's nodes as online. */
async function onlineAre(c: TssClient, online: string[]): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const nodes = await nodesOrNone(c);
    const up = nodes.filter((x) => x.status === "online").map((x) => x.nodeId);
    if (up.length === online.length && online.every((id) => up.includes(id))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the nodes online never became ${online.join(", ")}`);
}

/** Kills every enclave; the harness restarts them; resolves once every node is online again. */
async function restartEnclaves(c: TssClient): Promise<void> {
  await Promise.all(
    cluster.nodes.map(async (n) => {
      const restarts = n.enclave.restarts;
      process.kill(n.enclave.proc.pid!, "SIGKILL");
      await n.enclave.restarted(restarts + 1);
    }),
  );
  for (let i = 0; i < 200; i++) {
    const nodes = await nodesOrNone(c);
    if (nodes.length === cluster.nodes.length && nodes.every((x) => x.status === "online")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the nodes did not come back online");
}

/**
 * The cluster's nodes as the client sees them; none while every node is
 * degraded: degraded nodes leave the request subscription, so the broker has
 * no one to hand the request to and the client fails it with not_enough_nodes.
 */
async function nodesOrNone(c: TssClient): Promise<{ nodeId: string; status: string }[]> {
  try {
    return (await c.nodes()).nodes;
  } catch (e) {
    if (e instanceof TssError && e.code === "not_enough_nodes") return [];
    throw e;
  }
}
