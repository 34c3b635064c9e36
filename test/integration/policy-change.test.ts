/**
 * Changing a wallet's approval policy end to end (issue 9 item 1), with real
 * processes: three nodes (separate host and enclave processes), Mosquitto
 * with per-user credentials, the KMS stand-in, the SDK with trust in the
 * development root and the image. A 2-of-3 wallet is created with policy P1
 * (alice); alice approves replacing it with P2 (bob and carol, quorum 2).
 * Every holder's enclave checks the approval against its sealed P1, the
 * change runs as a refresh whose shares are sealed with P2, committed on all
 * three; all three enclaves' statements of the new generation name P2. After
 * it, alice's approvals are refused, bob's alone is below quorum, and bob's
 * and carol's sign. Refused too: a change approved by someone outside P1,
 * and one that names another current policy.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pemToDer } from "../../src/attestation/aws-root.ts";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf, writeKeyFile } from "../../src/client/signers.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy, policyHash } from "../../src/shared/wire/approval.ts";
import { runTss } from "../helpers/run-cli.ts";
import { rejected } from "../helpers/thrown.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const p1 = { quorum: 1, approvers: [approverKeyOf(alice)] };
const p2 = { quorum: 2, approvers: [approverKeyOf(bob), approverKeyOf(carol)] };

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-policy-change-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await TssClient.connect({
    ...cluster.client,
    timeoutMs: 120_000,
    trust: {
      roots: [
        {
          der: pemToDer(readFileSync(join(dir, "dev-attestation-root.pem"), "utf8")),
          development: true,
        },
      ],
      allowDevelopment: true,
      imageHashes: [cluster.image.pcr0Hex],
    },
  });
  wallet = await client.createWallet({ threshold: 2, parties: 3, policy: p1, admins: [admin] });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sign = (signers: KeySigner[]) =>
  client.sign({ walletId: wallet.walletId, digest: randomBytes(32), signers });

describe("a wallet's policy changed by its current policy's quorum", () => {
  it("is refused when approved by a key outside the current policy, or naming another current policy", async () => {
    const outsider = await rejected(
      TssError,
      client.changePolicy({ walletId: wallet.walletId, policy: p2, signers: [bob] }),
    );
    expect({ code: outsider.code, reason: outsider.reason }).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
    const otherCurrent = await rejected(
      TssError,
      client.changePolicy({
        walletId: wallet.walletId,
        policy: p2,
        signers: [alice],
        currentPolicyHash: policyHash(encodePolicy(p2)),
      }),
    );
    expect({ code: otherCurrent.code, reason: otherCurrent.reason }).toEqual({
      code: "unauthorised",
      reason: "wrong_policy",
    });
    // Nothing changed: alice still signs.
    expect((await sign([alice])).signers).toHaveLength(2);
  });

  it("applies on all holders: the statements name the new policy, old approvers are refused, new ones sign", async () => {
    const before = await client.verifiedWallet(wallet.walletId);
    expect(toHex(before.policyHash!)).toBe(toHex(policyHash(encodePolicy(p1))));
    const changed = await client.changePolicy({
      walletId: wallet.walletId,
      policy: p2,
      signers: [alice],
    });
    const p2Hash = toHex(policyHash(encodePolicy(p2)));
    expect(changed.policyHash).toBe(p2Hash);
    expect(changed.generation).toBe(before.generation + 1);
    // All three attested enclaves vouch for the new generation under the new policy.
    expect(changed.vouchedBy).toHaveLength(3);
    const after = await client.verifiedWallet(wallet.walletId);
    expect(toHex(after.policyHash!)).toBe(p2Hash);
    expect(after.publicKey).toEqual(before.publicKey);
    expect((await client.wallet(wallet.walletId)).policyHash).toBe(p2Hash);

    const old = await rejected(TssError, sign([alice]));
    expect({ code: old.code, reason: old.reason }).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
    const few = await rejected(TssError, sign([bob]));
    expect({ code: few.code, reason: few.reason }).toEqual({
      code: "unauthorised",
      reason: "below_quorum",
    });
    const ok = await sign([bob, carol]);
    expect(ok.signers).toHaveLength(2);
    // A refresh afterwards keeps the new policy (its shares are sealed with P2 again).
    const refreshed = await client.refresh({ walletId: wallet.walletId, signers: [bob, carol] });
    expect(refreshed.generation).toBe(changed.generation + 1);
    expect(toHex((await client.verifiedWallet(wallet.walletId)).policyHash!)).toBe(p2Hash);
    expect((await sign([carol, bob])).signers).toHaveLength(2);
  });

  it("tss wallet policy changes it from the command line, approved by key files", async () => {
    const keys = mkdtempSync(join(tmpdir(), "tss-policy-keys-"));
    try {
      writeKeyFile(join(keys, "bob.key"), bob);
      writeKeyFile(join(keys, "carol.key"), carol);
      const dave = KeySigner.generate("ed25519");
      const user = cluster.clients[1]!;
      const run = await runTss(
        [
          "wallet",
          "policy",
          "--wallet",
          wallet.walletId,
          "--approver",
          `ed25519:${toHex(dave.publicKey)}`,
          "--key",
          join(keys, "bob.key"),
          "--key",
          join(keys, "carol.key"),
          "--url",
          user.url,
          "--username",
          user.username,
          "--password",
          user.password,
          "--json",
        ],
        dir,
      );
      expect(run.status, run.stderr).toBe(0);
      const daveHash = toHex(
        policyHash(encodePolicy({ quorum: 1, approvers: [approverKeyOf(dave)] })),
      );
      expect(JSON.parse(run.stdout)).toMatchObject({
        walletId: wallet.walletId,
        policyHash: daveHash,
      });
      expect((await client.wallet(wallet.walletId)).policyHash).toBe(daveHash);
      expect((await sign([dave])).signers).toHaveLength(2);
      expect((await rejected(TssError, sign([bob, carol]))).reason).toBe("unknown_signer");
      // Every holder's audit log records each change, with the new policy's hash, and its chain holds.
      for (const n of cluster.nodes) {
        const audit = await runTss(
          ["audit", "--db", join(dir, `${n.nodeId}.db`), "--wallet", wallet.walletId, "--json"],
          dir,
        );
        expect(audit.status, audit.stderr).toBe(0);
        const changes = (
          JSON.parse(audit.stdout) as {
            entries: { event: string; detail: Record<string, unknown> }[];
          }
        ).entries.filter((e) => e.event === "policy_changed");
        expect(changes.map((e) => e.detail.toPolicyHash)).toEqual([
          toHex(policyHash(encodePolicy(p2))),
          daveHash,
        ]);
        expect(changes[1]!.detail.fromPolicyHash).toBe(toHex(policyHash(encodePolicy(p2))));
      }
    } finally {
      rmSync(keys, { recursive: true, force: true });
    }
  });
});
