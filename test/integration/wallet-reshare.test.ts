/**
 * Resharing a wallet to a new committee end to end (issue 11 item 4), with
 * real processes: six nodes (separate host and enclave processes), Mosquitto,
 * the KMS stand-in, libsql files and the SDK. A 3-of-5 wallet on nodes 1-5
 * is reshared to 3-of-6 with node 6 added (`tss wallet reshare`), then to
 * 4-of-6 (SDK): the address stays, every new quorum (all 20 of three nodes,
 * all 15 of four) signs a signature that verifies under the wallet's key,
 * every member's enclave statement vouches for the new generation, the
 * coordinator audits `wallet_reshared` with the approver and every member
 * records its own index. Refused before anything runs: approvals from
 * outside the policy and a new member whose machine is not the PCR4 the
 * approval names (every enclave refuses: wrong_digest), and a holder left
 * out whose index a staying holder would have to take (leaving is
 * test/integration/reshare-leave.test.ts's). Last, a node's pre-reshare
 * database, put back after both reshares into a freshly started genuine
 * enclave, makes no signature: no request gets one out of it.
 *
 * Fewer dealers than the old threshold cannot be asked for through the API
 * (the planner refuses fewer than t_old staying holders:
 * test/host/wallet-reshare-plan.test.ts); the enclave's and the core's
 * refusal of it is test/enclave/reshare-session.test.ts's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { devNodePcr4Hex } from "../../src/harness/dev-kms.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf, writeKeyFile } from "../../src/client/signers.ts";
import type { CreateWalletResult, ReshareWalletResult } from "../../src/client/types.ts";
import { readAudit } from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { runTss } from "../helpers/run-cli.ts";
import {
  apiSignOutcomes,
  backupNodeDatabase,
  combinations,
  copyDatabase,
  forceSignWithStale,
  fromNodeDb,
  restoreIntoFreshEnclave,
  signVerified,
  signWithEveryQuorum,
  untilOnline,
} from "../helpers/stale-share.ts";
import { rejected } from "../helpers/thrown.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const policy = { quorum: 1, approvers: [approverKeyOf(alice)] };
const FIRST = ["node-1", "node-2", "node-3", "node-4", "node-5"];
const ALL = [...FIRST, "node-6"];
/** The node whose pre-reshare database is put back at the end. */
const RESTORED = "node-2";

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;

const backup = () => join(dir, "pre-reshare.backup.db");
const fromDb = <T>(nodeId: string, f: Parameters<typeof fromNodeDb<T>>[2]) =>
  fromNodeDb(dir, nodeId, f);

/** One signature through the API, verified under the wallet's key; its signers. */
const signs = () =>
  signVerified(client, {
    walletId: wallet.walletId,
    publicKey: wallet.publicKey,
    signers: [alice],
  });

/**
 * Acceptance: every new quorum signs. One signature through the API (it picks its signers),
 * then one with each of the C(6, size) quorums, the coordinator in this process.
 */
async function everyQuorumSigns(size: number): Promise<void> {
  expect(await signs()).toHaveLength(size);
  const signed = await signWithEveryQuorum({
    cluster,
    dir,
    walletId: wallet.walletId,
    publicKey: wallet.publicKey,
    holders: cluster.nodes.filter((n) => ALL.includes(n.nodeId)),
    size,
    signers: [alice],
  });
  expect(signed.map((q) => q.join(","))).toEqual(combinations(ALL, size).map((q) => q.join(",")));
  await untilOnline(client, ALL);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-reshare-"));
  cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await connectTrusting(cluster);
  wallet = await client.createWallet({ threshold: 3, parties: 5, policy, admins: [admin] });
  // The backup the last test restores: a consistent copy, its host stopped.
  await backupNodeDatabase(cluster, dir, RESTORED, backup());
  await cluster.addNode("node-6");
  await untilOnline(client, ALL);
}, 240_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("wallet reshare", () => {
  it("refuses approvals outside the policy, a member on another machine than approved, and a holder left out below a staying one's index", async () => {
    const reshare = (c: TssClient, over: Partial<Parameters<TssClient["reshareWallet"]>[0]>) =>
      rejected(
        TssError,
        c.reshareWallet({
          walletId: wallet.walletId,
          threshold: 3,
          nodes: ALL,
          signers: [alice],
          // The added node's machine from the operator's inventory (current holders': their statements).
          targetPcr4: { "node-6": devNodePcr4Hex("node-6") },
          ...over,
        }),
      );
    // Without it a verifying client refuses before anything is sent: a node that holds no share
    // yet is tied to a machine only by the operator's inventory, never by whoever answers for it.
    const unpinned = await reshare(client, { targetPcr4: {} });
    expect(unpinned.code).toBe("bad_request");
    expect(unpinned.message).toContain("node-6 holds no share of the wallet yet");
    const outsider = await reshare(client, { signers: [KeySigner.generate("ed25519")] });
    expect({ code: outsider.code, reason: outsider.reason }).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
    // A client that verifies nothing and approves node 6 on a machine of the operator's
    // inventory that is not node 6's: the enclaves see node 6's real PCR4 in its attestation
    // document, so the approved digest is not theirs.
    const blind = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
    try {
      const pcr4 = Object.fromEntries(ALL.map((n) => [n, devNodePcr4Hex(n)]));
      const wrong = await reshare(blind, {
        targetPcr4: { ...pcr4, "node-6": devNodePcr4Hex("node-9") },
      });
      expect({ code: wrong.code, reason: wrong.reason }).toEqual({
        code: "unauthorised",
        reason: "wrong_digest",
      });
    } finally {
      await blind.close();
    }
    // The holder of party 3 (the DKG seats nodes in random order: never a fixed node id, which
    // may hold party 5 and then leave legitimately).
    const low = wallet.nodes[2]!;
    const left = await reshare(client, { nodes: ALL.filter((n) => n !== low) });
    // Holders that stay keep their index: only holders of the highest indices can leave.
    expect(left.code).toBe("bad_request");
    expect(left.message).toMatch(
      new RegExp(`leaving holder must hold one of the highest.*${low} holds party 3`),
    );
    // Nothing changed.
    const shown = await client.wallet(wallet.walletId);
    expect([shown.threshold, shown.parties, shown.generation]).toEqual([3, 5, 0]);
  });

  it("reshares 3-of-5 to 3-of-6 with node 6 added: same address, every 3-node quorum signs", async () => {
    // Through the CLI, as an operator would.
    writeKeyFile(join(dir, "alice.key"), alice);
    const user = cluster.clients[1]!;
    const run = await runTss(
      [
        ...["wallet", "reshare", "--wallet", wallet.walletId, "--threshold", "3"],
        ...["--nodes", ALL.join(","), "--target-pcr4", `node-6=${devNodePcr4Hex("node-6")}`],
        ...["--key", join(dir, "alice.key")],
        ...["--dev-root", join(dir, "dev-attestation-root.pem"), "--allow-development"],
        ...["--image", cluster.image.pcr0Hex, "--url", user.url],
        ...["--username", user.username, "--password", user.password, "--json"],
      ],
      dir,
    );
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as ReshareWalletResult;
    expect(r).toMatchObject({
      walletId: wallet.walletId,
      keyType: "secp256k1-ecdsa",
      publicKey: wallet.publicKey,
      address: wallet.address,
      fromThreshold: 3,
      fromParties: 5,
      threshold: 3,
      parties: 6,
      generation: 1,
      added: ["node-6"],
    });
    expect(r.nodes).toEqual([...wallet.nodes, "node-6"]);
    expect(r.committeePcr4["node-6"]).toBe(devNodePcr4Hex("node-6"));
    // Verified against the attested enclaves: six statements of generation 1.
    expect(r.vouchedBy).toHaveLength(6);
    const audited = ALL.flatMap((n) =>
      fromDb(n, (db) => readAudit(db).filter((x) => x.event === "wallet_reshared")),
    );
    expect(audited).toHaveLength(1);
    expect(audited[0]!.detail).toMatchObject({ threshold: 3, parties: 6, added: ["node-6"] });
    expect((audited[0]!.detail.approverKeyIds as string[]).length).toBe(1);
    const members = fromDb("node-6", (db) =>
      db.all("SELECT party_index, node_id FROM wallet_members WHERE wallet_id = :w", {
        w: wallet.walletId,
      }),
    );
    expect(members).toEqual([{ party_index: 6, node_id: "node-6" }]);
    await everyQuorumSigns(3);
  }, 180_000);

  /*
   * A pre-reshare share (3-of-5, generation 0) put back on node 2 with a fresh genuine enclave
   * (no memory of any commit certificate; KMS still admits node 2, so the old share unseals),
   * forced by a coordinator with two current holders into a quorum of the 3-of-6 (generation
   * 1), its host lying that it is current, so every host-side check passes: each honest
   * enclave compares the signed share-state statements at phase 2 and refuses, naming node 2.
   * Then node 2 gets its current database back for the next reshare.
   */
  it("a pre-reshare share, restored from a backup into a genuine enclave, is refused as stale", async () => {
    const restored = cluster.nodes.find((n) => n.nodeId === RESTORED)!;
    const current = join(dir, "post-reshare.db");
    await restoreIntoFreshEnclave(dir, restored, backup(), current);
    // Holders of indices the old 3-of-5 share knows, so its own enclave starts the session too.
    const honest = ["node-1", "node-3"].map((id) => cluster.nodes.find((n) => n.nodeId === id)!);
    const forced = await forceSignWithStale({
      cluster,
      dir,
      walletId: wallet.walletId,
      honest,
      stale: restored,
      signers: [alice],
    });
    expect([forced.current, forced.restored.generation]).toEqual([1, 0]);
    expect(
      { code: forced.error.code, node: forced.error.blame.node },
      forced.error.message,
    ).toEqual({ code: "stale_share", node: RESTORED });
    for (const r of forced.refusals) {
      expect(r.map((x) => x.phase)).toEqual([2]);
      expect((r[0]!.error as { code: string }).code).toBe("stale_share");
    }
    copyDatabase(current, join(dir, `${RESTORED}.db`));
    await restored.restartHost();
    await untilOnline(client, [RESTORED]);
  }, 180_000);

  it("then reshares to 4-of-6: same address, every 4-node quorum signs", async () => {
    const r = await client.reshareWallet({
      walletId: wallet.walletId,
      threshold: 4,
      nodes: ALL,
      signers: [alice],
    });
    expect(r).toMatchObject({
      address: wallet.address,
      fromThreshold: 3,
      fromParties: 6,
      threshold: 4,
      parties: 6,
      generation: 2,
      added: [],
    });
    expect(r.vouchedBy).toHaveLength(6);
    const shown = await client.wallet(wallet.walletId);
    expect([shown.threshold, shown.parties, shown.generation]).toEqual([4, 6, 2]);
    await everyQuorumSigns(4);
  }, 180_000);

  /*
   * The same pre-reshare share put back once more, after the 4-of-6 reshare (generation 2),
   * into a fresh enclave: node 2 reports generation 0 of a 3-of-5 wallet beside five holders of
   * generation 2; every request is answered, a success verifies and was made without node 2.
   * That the old share would not combine even if some check let it in is the core's
   * (test/enclave/reshare-session.test.ts, crates/dkls23-wasm/tests/reshare.rs).
   */
  it("after the 4-of-6 reshare, no request gets a signature out of the restored share", async () => {
    const restored = cluster.nodes.find((n) => n.nodeId === RESTORED)!;
    await restoreIntoFreshEnclave(dir, restored, backup());
    await restored.restartHost();
    await untilOnline(client, [RESTORED]);
    const outcomes = await apiSignOutcomes(client, {
      walletId: wallet.walletId,
      publicKey: wallet.publicKey,
      signers: [alice],
      without: RESTORED,
      times: 5,
    });
    expect(outcomes).toContain("signed");
  }, 180_000);
});
