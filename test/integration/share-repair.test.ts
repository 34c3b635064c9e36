/**
 * Node replacement by share repair end to end (issue 11 item 1), with real
 * processes: six nodes (separate host and enclave processes), Mosquitto, the
 * KMS stand-in, libsql files and the SDK. A 3-of-5 wallet lives on nodes 1-5;
 * node 5 is lost (its host stopped); party 5's index moves to node 6, approved
 * under the wallet's policy and naming node 6's machine (`tss wallet repair`;
 * the SDK's refusals first). Afterwards quorums
 * with node 6 sign, the enclaves' statements name node 6, and the same
 * request id sent again is answered with the stored result. Node 5's own
 * genuine enclave refuses altered evidence (a statement's signature, active
 * proofs not made by the holders' enclaves) and its host asks nothing while
 * proofs are withheld or it holds a pending share: nothing is deleted.
 * Brought back, node 5 gathers its peers' real statements and every holder's
 * active proof for its enclave's nonce, its enclave verifies them (party 5 on
 * node 6's machine at generation 1, live on all five), and only then it deletes its rows; it is no
 * holder any more, and a refresh of all five works. Refused before anything runs: a party out
 * of range, a target that already holds a share, a target whose attested
 * machine is not the PCR4 the operator named, approvals from outside the
 * policy (every helper's enclave refuses).
 *
 * Last, acceptance (b): the lost node's database, copied while its host was
 * stopped before the repair, is put back after the repair and its refresh,
 * into a freshly started genuine enclave (no memory; KMS still admits that
 * node, so the old share unseals). No signature comes out of it, neither
 * forced (a hostile coordinator with it in a quorum of current holders: every
 * honest enclave refuses at phase 2) nor through the API.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { devNodePcr4Hex } from "../../src/harness/dev-kms.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf, writeKeyFile } from "../../src/client/signers.ts";
import type { CreateWalletResult, RepairShareResult } from "../../src/client/types.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import { staticCredentials } from "../../src/host/kms-credentials.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import type { ActiveProofSource, AskedHolder } from "../../src/host/share-repair.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { encodeActiveProof, encodeSignedActiveProof } from "../../src/shared/wire/active-proof.ts";
import {
  currentShare,
  getWallet,
  getWalletStatement,
  listShares,
  openReadOnlyFile,
  openStore,
  readAudit,
  stagePendingShare,
} from "../../src/host/store/index.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";
import { runTss } from "../helpers/run-cli.ts";
import {
  apiSignOutcomes,
  copyDatabase,
  eventually as until,
  forceSignWithStale,
  fromNodeDb,
  restoreIntoFreshEnclave,
  signVerified,
  untilOnline,
} from "../helpers/stale-share.ts";
import { rejected } from "../helpers/thrown.ts";
import { connectTrusting } from "../helpers/trusting-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const policy = { quorum: 1, approvers: [approverKeyOf(alice)] };

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
/** The lost node and the party index it held. */
let lost: string;
let party: number;

/** The lost node's database as it was before the repair (its host stopped). */
const backup = () => join(dir, "lost-node.backup.db");
const fromDb = <T>(nodeId: string, f: Parameters<typeof fromNodeDb<T>>[2]) =>
  fromNodeDb(dir, nodeId, f);

/** One signature through the API, verified under the wallet's key; its signers. */
const signs = () =>
  signVerified(client, {
    walletId: wallet.walletId,
    publicKey: wallet.publicKey,
    signers: [alice],
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-repair-"));
  cluster = await startCluster({
    nodes: 5,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await connectTrusting(cluster);
  wallet = await client.createWallet({ threshold: 3, parties: 5, policy, admins: [admin] });
  await cluster.addNode("node-6");
  await untilOnline(client, ["node-6"]);
  party = 5;
  lost = wallet.nodes[party - 1]!;
}, 240_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("share repair", () => {
  it("refuses a party out of range, a target that holds a share, another machine, and approvals outside the policy", async () => {
    const repair = (over: Partial<Parameters<TssClient["repairShare"]>[0]>) =>
      rejected(
        TssError,
        client.repairShare({
          walletId: wallet.walletId,
          party,
          toNode: "node-6",
          signers: [alice],
          // The target's machine from the operator's inventory: required, trust or not.
          targetPcr4: devNodePcr4Hex("node-6"),
          ...over,
        }),
      );
    expect((await repair({ targetPcr4: undefined })).message).toContain(
      "node-6 holds no share of the wallet yet",
    );
    expect((await repair({ party: 6 })).code).toBe("bad_request");
    const holder = wallet.nodes[0]!;
    expect((await repair({ toNode: holder, targetPcr4: devNodePcr4Hex(holder) })).code).toBe(
      "bad_request",
    );
    // The operator named node 1's machine; the enclave answering for node 6 is another.
    const machine = await repair({ targetPcr4: devNodePcr4Hex("node-1") });
    expect({ code: machine.code, node: machine.blame.node }).toEqual({
      code: "unverified_wallet",
      node: "node-6",
    });
    const outsider = await repair({ signers: [KeySigner.generate("ed25519")] });
    expect({ code: outsider.code, reason: outsider.reason }).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
  });

  it("moves the lost node's party to node 6: quorums with node 6 sign and the statements name it", async () => {
    const node = cluster.nodes.find((n) => n.nodeId === lost)!;
    await node.host.stop();
    // The backup the last test restores (a consistent copy: the host is stopped).
    copyDatabase(join(dir, `${lost}.db`), backup());
    await until(async () => (await client.nodes()).nodes.every((n) => n.nodeId !== lost));
    // Through the CLI, as an operator would: tss wallet repair --wallet ID --party 5 --to node-6.
    writeKeyFile(join(dir, "alice.key"), alice);
    const user = cluster.clients[1]!;
    const repair = () =>
      runTss(
        [
          ...["wallet", "repair", "--wallet", wallet.walletId, "--party", String(party)],
          ...["--to", "node-6", "--target-pcr4", devNodePcr4Hex("node-6")],
          ...["--key", join(dir, "alice.key"), "--request-id", "repair-party-5"],
          ...["--dev-root", join(dir, "dev-attestation-root.pem"), "--allow-development"],
          ...["--image", cluster.image.pcr0Hex, "--url", user.url],
          ...["--username", user.username, "--password", user.password, "--json"],
        ],
        dir,
      );
    const run = await repair();
    expect(run.status, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as RepairShareResult;
    // The same request id again (a reply lost, say): its stored result, nothing run again
    // (the audit below still counts one repair; node 6 already holding party 5 would refuse one).
    const again = await repair();
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(r);
    expect(r.partyIndex).toBe(party);
    expect(r.toNode).toBe("node-6");
    expect(r.targetPcr4).toBe(devNodePcr4Hex("node-6"));
    expect(r.fromNode).toBeNull();
    expect(r.generation).toBe(1);
    expect(r.publicKey).toBe(wallet.publicKey);
    expect(r.nodes[party - 1]).toBe("node-6");
    expect(r.nodes).not.toContain(lost);
    expect(r.helpers).toHaveLength(3);
    // Verified against the attested enclaves: five statements of generation 1.
    expect(r.vouchedBy).toHaveLength(5);
    const shown = await client.wallet(wallet.walletId);
    expect(shown.nodes[party - 1]).toBe("node-6");
    // Who approved, which party, from which node to which: in the coordinator's audit log.
    const audited = ["node-1", "node-2", "node-3", "node-4", "node-6"].flatMap((n) =>
      fromDb(n, (db) => readAudit(db).filter((x) => x.event === "share_repaired")),
    );
    expect(audited).toHaveLength(1);
    expect(audited[0]!.detail).toMatchObject({ partyIndex: party, toNode: "node-6" });
    expect((audited[0]!.detail.approverKeyIds as string[]).length).toBe(1);
    // Every holder recorded the new membership.
    const members = fromDb("node-6", (db) =>
      db.all("SELECT party_index, node_id FROM wallet_members WHERE wallet_id = :w", {
        w: wallet.walletId,
      }),
    );
    expect(members.find((m) => m.party_index === party)?.node_id).toBe("node-6");
    let withNode6 = false;
    for (let k = 0; k < 10 && !withNode6; k++) withNode6 = (await signs()).includes("node-6");
    expect(withNode6).toBe(true);
  });

  /*
   * Evidence its own enclave must verify before anything is deleted. First, in this process,
   * the lost node's host (its host process still stopped; its genuine enclave running) is
   * handed its peers' real statements, once altered, and active proofs forged or withheld:
   * nothing is deleted or recorded. Then its real host process comes back and, asked by a coordinator,
   * gathers the real evidence itself: its enclave's verdict deletes its rows.
   */
  it("the lost node refuses forged or unproven evidence and a pending share, then on the real evidence deletes its rows", async () => {
    const id = wallet.walletId;
    const holderNodes = cluster.nodes.map((n) => n.nodeId).filter((n) => n !== lost);
    const answers = (): AskedHolder[] =>
      holderNodes.map((n) =>
        fromDb(n, (db) => {
          const w = getWallet(db, id)!;
          const s = listShares(db, id, n).find((x) => x.status === "active")!;
          const answer: HeldWallet = {
            ...w,
            nodeId: n,
            partyIndex: s.partyIndex,
            generation: w.currentGeneration,
            ...getWalletStatement(db, id, n, w.currentGeneration),
          };
          return { asked: n, answer };
        }),
      );
    // Every holder's own row and statement at generation 1 (what walletInfo answers).
    const seen = answers().map(({ asked, answer: a }) => ({
      asked,
      generation: a!.generation,
      partyIndex: a!.partyIndex,
      statement: a!.statement !== undefined,
    }));
    expect(seen).toEqual(
      holderNodes.map((n, k) => ({
        asked: n,
        generation: 1,
        partyIndex: n === "node-6" ? party : seen[k]!.partyIndex,
        statement: true,
      })),
    );
    // Proofs for the nonce this node's enclave issued, in each holder's name, but not made by
    // the holders' enclaves (a host or the broker answering for a holder rolled back, say).
    const forger = new PeerKeys();
    const forgedProof: ActiveProofSource = async (nodeId, walletId, nonce) => {
      const e = encodeActiveProof({
        nonce,
        walletId,
        partyIndex: nodeId === "node-6" ? party : Number(nodeId.slice(5)),
        generation: 1,
        publicKey: fromHex(wallet.publicKey),
        parties: 5,
        publicPackageHash: new Uint8Array(32),
      });
      return encodeSignedActiveProof(e, forger.sign(e));
    };
    const rowsOf = (path: string) => {
      const db = openReadOnlyFile(path);
      try {
        return Number(
          db.get("SELECT count(*) AS c FROM shares WHERE wallet_id = :w", { w: id })?.c ?? 0,
        );
      } finally {
        db.close();
      }
    };
    const lostDb = join(dir, `${lost}.db`);
    // The same database with a refresh staged and its commit withheld (a copy: the real one stays).
    const pendingDb = join(dir, "lost-node.pending.db");
    copyDatabase(lostDb, pendingDb);
    const pendingStore = openStore({ path: pendingDb }).db;
    const old = currentShare(pendingStore, id, lost);
    const { status: _s, createdAt: _c, policy, ...row } = old;
    stagePendingShare(pendingStore, {
      ...row,
      ...(policy === null ? {} : { policy }),
      generation: 1,
      sealedShare: new Uint8Array(old.sealedShare.length).fill(1),
      sessionId: "cd".repeat(32),
    });
    pendingStore.close();
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, `${lost}.enclave.sock`),
    });
    const verdicts: string[] = [];
    const hostOn = (path: string, holders: () => AskedHolder[], proofs: ActiveProofSource) => {
      const h = new NodeHost({
        nodeId: lost,
        enclave,
        credentials: staticCredentials({ accessKeyId: "unused", secretAccessKey: "unused" }),
        db: openStore({ path }).db,
        log: (event, f) => {
          if (event === "share_replacement_unproven") verdicts.push(String(f.reason));
        },
      });
      h.holderSource = async () => holders();
      h.proofSource = proofs;
      return h;
    };
    try {
      // A statement whose signature was altered in transit.
      const forged = () => {
        const a = answers();
        const s = Uint8Array.from(a[2]!.answer!.statement!);
        s[s.length - 1]! ^= 1;
        a[2]!.answer!.statement = s;
        return a;
      };
      // The real statements of generation 1, without its holders' enclaves saying it is live.
      const attempts: [string, () => AskedHolder[], ActiveProofSource][] = [
        [lostDb, forged, forgedProof],
        [lostDb, answers, forgedProof],
        [lostDb, answers, async () => null],
        [pendingDb, answers, forgedProof],
      ];
      for (const [path, holders, proofs] of attempts) {
        const h = hostOn(path, holders, proofs);
        try {
          expect(await h.checkReplaced(id)).toEqual({ replaced: false });
          expect(readAudit(h.db).filter((x) => x.event === "share_replaced")).toEqual([]);
        } finally {
          h.db.close();
        }
      }
      // The enclave refused the first two itself; the withheld proofs and the pending share never reached it.
      expect(verdicts).toHaveLength(3);
      expect(verdicts[0]).toMatch(
        /supersession refused: .*not signed by its document's channel key/,
      );
      expect(verdicts[1]).toMatch(
        /supersession refused: party 1's active proof is not signed by its statement's channel key/,
      );
      expect(verdicts[2]).toMatch(/no active proof from/);
      expect(rowsOf(lostDb)).toBe(1);
      expect(rowsOf(pendingDb)).toBe(2);
    } finally {
      enclave.close();
    }

    const node = cluster.nodes.find((n) => n.nodeId === lost)!;
    await node.restartHost();
    await untilOnline(client, [lost]);
    // Any request of the wallet shows the coordinator a holder of an old generation.
    await signs();
    const replacedAudit = () =>
      fromDb(lost, (db) => readAudit(db).filter((x) => x.event === "share_replaced"));
    await until(() => replacedAudit().length > 0);
    const replaced = replacedAudit();
    expect(replaced).toHaveLength(1);
    // The evidence's generation, and the machine the enclave saw holding party 5.
    expect(replaced[0]!.detail).toMatchObject({
      partyIndex: party,
      generation: 1,
      replacedGeneration: 0,
      byNode: "node-6",
      byPcr4: devNodePcr4Hex("node-6"),
    });
    // Its sealed rows are gone (secure delete), so it no longer reports the wallet.
    expect(rowsOf(lostDb)).toBe(0);
    const shown = await client.wallet(wallet.walletId);
    expect(shown.nodes).not.toContain(lost);
    expect(shown.nodes).toHaveLength(5);
  });

  it("a refresh of all five works after the repair", async () => {
    const r = await client.refresh({ walletId: wallet.walletId, signers: [alice] });
    expect(r.generation).toBe(2);
    await signs();
  });

  /*
   * Acceptance (b). The wallet is at generation 2 (repair, then refresh); the lost node (which
   * held party 5) gets back its generation-0 database and a fresh genuine enclave, which
   * unseals the old share (KMS still admits that node). (1) Forced: a coordinator puts it with
   * two current holders into a quorum, its host lying that it holds the current generation
   * (HostileNode), so every host-side check passes; each honest enclave compares the signed
   * share-state statements at phase 2 and refuses, naming party 5 at generation 0. (2) Through
   * the API: no request gets a signature out of it. Together with
   * test/enclave/repair-ceremony.test.ts and dkls23-lifecycle.test.ts, which show that an old
   * share does not combine with current ones even when no check refuses it (the math), this is
   * acceptance (b): with real processes no path lets the restored share into a signature, and
   * were one found, its output would not be a signature under the wallet key.
   */
  it("the lost node's old share, restored from a backup into a genuine enclave, makes no signature", async () => {
    const restored = cluster.nodes.find((n) => n.nodeId === lost)!;
    await restoreIntoFreshEnclave(dir, restored, backup());

    // (1) Forced: two current holders and the lost node played in this process (their host
    // processes stopped; their enclaves are the genuine ones the cluster started).
    const holders = cluster.nodes.filter((n) => n !== restored && n.nodeId !== "node-6");
    const forced = await forceSignWithStale({
      cluster,
      dir,
      walletId: wallet.walletId,
      honest: [holders[0]!, holders[1]!],
      stale: restored,
      signers: [alice],
    });
    expect(forced.current).toBe(2);
    expect(forced.restored).toEqual({ generation: 0, partyIndex: party });
    expect(
      { code: forced.error.code, node: forced.error.blame.node },
      forced.error.message,
    ).toEqual({ code: "stale_share", node: lost });
    // Each honest enclave refused at phase 2, quoting node 5's signed share-state statement.
    for (const r of forced.refusals) {
      expect(r.map((x) => x.phase)).toEqual([2]);
      const refusal = r[0]!.error as { code: string; message: string };
      expect(refusal.code).toBe("stale_share");
      expect(refusal.message).toMatch(
        new RegExp(
          `party ${party} loaded generation 0, this enclave \\(party \\d\\) holds generation 2`,
        ),
      );
    }

    // (2) Through the API, node 5 online with its generation-0 row: every request is answered;
    // a success verifies and was made without node 5; a failure carries no signature.
    await restored.restartHost();
    await untilOnline(client, [lost]);
    const outcomes = await apiSignOutcomes(client, {
      walletId: wallet.walletId,
      publicKey: wallet.publicKey,
      signers: [alice],
      without: lost,
      times: 6,
    });
    expect(outcomes).toContain("signed");
  }, 120_000);
});
