/**
 * A holder leaves a wallet's committee in a reshare (issue 11 item 4), with real processes:
 * six nodes (separate host and enclave processes), Mosquitto, the KMS stand-in, libsql files
 * and the SDK. A 3-of-6 wallet is reshared to 3-of-5 without the holder of party 6: the five
 * that stay deal, the address stays, and right after the commit the leaving node's own enclave
 * verifies the five statements of generation 1 and every new holder's active proof for its
 * fresh nonce (none on its machine), so its host deletes its rows, audits `left_committee` and
 * refuses the wallet from then on. Every 3-node quorum of the five signs. Last, the leaving
 * node's pre-reshare database (backup) is put back into a freshly started genuine enclave:
 * forced into a quorum of current holders (its host lying that it is current) the honest
 * enclaves refuse (party 6 is no seat of the new sharing), and once it is online again the next request finds it reporting the old
 * generation beyond the committee and it deletes its rows once more, as an offline leaver would.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import { listShares, readAudit } from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import {
  apiSignOutcomes,
  backupNodeDatabase,
  combinations,
  eventually as until,
  forceSignWithStale,
  fromNodeDb,
  restoreIntoFreshEnclave,
  signVerified,
  signWithEveryQuorum,
  untilOnline,
} from "../helpers/stale-share.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const policy = { quorum: 1, approvers: [approverKeyOf(alice)] };

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
/** The holder of party 6, which leaves; the five that stay, by party index. */
let leaver: string;
let stay: string[];

const backup = () => join(dir, "leaver.backup.db");
const fromDb = <T>(nodeId: string, f: Parameters<typeof fromNodeDb<T>>[2]) =>
  fromNodeDb(dir, nodeId, f);
const leftAudit = () =>
  fromDb(leaver, (db) => readAudit(db).filter((x) => x.event === "left_committee"));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-reshare-leave-"));
  cluster = await startCluster({
    nodes: 6,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await connectTrusting(cluster);
  wallet = await client.createWallet({ threshold: 3, parties: 6, policy, admins: [admin] });
  leaver = wallet.nodes[5]!;
  stay = wallet.nodes.slice(0, 5);
  await backupNodeDatabase(cluster, dir, leaver, backup());
  await untilOnline(client, wallet.nodes);
}, 240_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a holder leaves the committee", () => {
  it("3-of-6 to 3-of-5 without party 6: same address, the leaver deletes its rows on its enclave's verdict", async () => {
    const r = await client.reshareWallet({
      walletId: wallet.walletId,
      threshold: 3,
      nodes: stay,
      signers: [alice],
    });
    expect(r).toMatchObject({
      address: wallet.address,
      publicKey: wallet.publicKey,
      fromThreshold: 3,
      fromParties: 6,
      threshold: 3,
      parties: 5,
      generation: 1,
      added: [],
    });
    expect(r.nodes).toEqual(stay);
    expect(r.vouchedBy).toHaveLength(5);
    // The reply names the leaver and that it deleted (the coordinator asked it before replying).
    expect(r.leaving).toEqual([{ partyIndex: 6, nodeId: leaver, online: true, replaced: true }]);
    const reshared = stay.flatMap((n) =>
      fromDb(n, (db) => readAudit(db).filter((x) => x.event === "wallet_reshared")),
    );
    expect(reshared).toHaveLength(1);
    expect(reshared[0]!.detail).toMatchObject({ leaving: [leaver], leftReplaced: [leaver] });
    // The coordinator asked it right after the commit; it deleted on its own enclave's verdict.
    await until(() => leftAudit().length > 0);
    expect(leftAudit()[0]!.detail).toMatchObject({
      partyIndex: 6,
      generation: 1,
      replacedGeneration: 0,
      parties: 5,
    });
    expect([...(leftAudit()[0]!.detail.confirmedBy as string[])].sort()).toEqual([...stay].sort());
    expect(fromDb(leaver, (db) => listShares(db, wallet.walletId))).toEqual([]);
    // Refused for the wallet: no holder view names it, and signatures are made without it.
    const shown = await client.wallet(wallet.walletId);
    expect([shown.threshold, shown.parties, shown.generation]).toEqual([3, 5, 1]);
    expect(shown.nodes).toEqual(stay);
    const signers = await signVerified(client, {
      walletId: wallet.walletId,
      publicKey: wallet.publicKey,
      signers: [alice],
    });
    expect(signers).not.toContain(leaver);
  });

  it("every 3-node quorum of the five signs", async () => {
    const signed = await signWithEveryQuorum({
      cluster,
      dir,
      walletId: wallet.walletId,
      publicKey: wallet.publicKey,
      holders: stay.map((id) => cluster.nodes.find((n) => n.nodeId === id)!),
      size: 3,
      signers: [alice],
    });
    expect(signed.map((q) => q.join(","))).toEqual(combinations(stay, 3).map((q) => q.join(",")));
    await untilOnline(client, wallet.nodes);
  }, 120_000);

  it("its pre-reshare share, restored into a genuine enclave, makes no signature and is deleted again", async () => {
    const restored = cluster.nodes.find((n) => n.nodeId === leaver)!;
    await restoreIntoFreshEnclave(dir, restored, backup());
    const forced = await forceSignWithStale({
      cluster,
      dir,
      walletId: wallet.walletId,
      honest: [stay[0], stay[1]].map((id) => cluster.nodes.find((n) => n.nodeId === id)!),
      stale: restored,
      signers: [alice],
    });
    expect([forced.current, forced.restored]).toEqual([1, { generation: 0, partyIndex: 6 }]);
    // Party 6 is no seat of the 3-of-5: every honest enclave's core refuses the signing party
    // list before any message, so no signature (the math of old and new shares not combining
    // is test/enclave/reshare-session.test.ts's and crates/dkls23-wasm/tests/reshare.rs's).
    expect(forced.error.code).toBe("ceremony_failed");
    expect(forced.error.message).toMatch(/party list has an index outside 1\.\.=5/);
    // Back online with its old row: a request's planning round finds it reporting generation 0
    // of party 6, beyond the five seats, and it checks and deletes as an offline leaver would.
    await restored.restartHost();
    await untilOnline(client, wallet.nodes);
    expect(fromDb(leaver, (db) => listShares(db, wallet.walletId))).toHaveLength(1);
    const outcomes = await apiSignOutcomes(client, {
      walletId: wallet.walletId,
      publicKey: wallet.publicKey,
      signers: [alice],
      without: leaver,
      times: 3,
    });
    expect(outcomes).toContain("signed");
    await until(() => leftAudit().length > 0);
    expect(fromDb(leaver, (db) => listShares(db, wallet.walletId))).toEqual([]);
  }, 180_000);
});
