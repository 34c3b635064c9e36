/**
 * At most once per approved request (issue 9: replay within the validity
 * window; issue 10 item 4: concurrent duplicates), with real processes: three
 * nodes (separate host and enclave processes), a real Mosquitto with
 * per-user credentials, a 2-of-3 wallet whose policy needs one approval.
 *
 * Two client users send the same sign request (same request id, same
 * approvals, byte for byte) at the same moment. The hosts cannot tell them
 * apart as one request (request ids are per client user), and the shared
 * subscription hands them to whichever nodes it picks; any two quorums of a
 * 2-of-3 wallet share an enclave, and each enclave starts one session per
 * approved request (src/enclave/approval-replay.ts): exactly one signature
 * comes back, the other request is answered approval_replayed. Sending the
 * same approved request once more afterwards, from a third user, is refused
 * the same way by the enclaves, however new the request is to the hosts, and
 * so is the same request approved anew (other validity, other bytes).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { rawClient, signApproval, signBody } from "../helpers/raw-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");

let cluster: LocalCluster;
let dir: string;
let wallet: CreateWalletResult;

const verifies = (r: SignResult, digest: Uint8Array) =>
  verifySignature(fromHex(r.publicKey), digest, {
    r: fromHex(r.signature.r),
    s: fromHex(r.signature.s),
    recoveryId: r.signature.recoveryId,
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-replay-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  // The first client user creates the wallet, then leaves its connection to a raw client.
  const client = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
  try {
    wallet = await client.createWallet({
      threshold: 2,
      parties: 3,
      policy: { quorum: 1, approvers: [approverKeyOf(alice)] },
      admins: [admin],
    });
  } finally {
    await client.close();
  }
});

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("one approved request, one signature", () => {
  it("the same approved request from two users at once: exactly one signs, the other is answered approval_replayed; a later replay too", async () => {
    const [first, second, third] = await Promise.all(
      [cluster.clients[0]!, cluster.clients[1]!, cluster.clients[2]!].map(rawClient),
    );
    /** Rounds whose two requests two different nodes coordinated. */
    let apart = 0;
    try {
      for (let round = 0; round < 3; round++) {
        const digest = randomBytes(32);
        const requestId = `replay-${round}-${randomBytes(4).toString("hex")}`;
        // One approval by alice, sent byte for byte by two users.
        const approval = await signApproval([alice], wallet.walletId, requestId, digest);
        const body = signBody(wallet.walletId, digest, approval);
        const answers = await Promise.all([
          first!.request("sign", body),
          second!.request("sign", body),
        ]);
        expect(answers.map((a) => a.finals)).toEqual([1, 1]);
        if (answers[0]!.coordinator !== answers[1]!.coordinator) apart++;
        const signed = answers.filter((a) => a.ok);
        const refused = answers.filter((a) => !a.ok);
        expect(signed, JSON.stringify(answers)).toHaveLength(1);
        expect(verifies(signed[0]!.result as unknown as SignResult, digest)).toBe(true);
        expect(refused[0]!.error).toMatchObject({ code: "approval_replayed", reason: "replayed" });
        // An enclave refused it: the answer names that enclave's node.
        expect(cluster.nodes.map((n) => n.nodeId)).toContain(refused[0]!.error!.node);

        // New to the hosts (a third user's request id), not to the enclaves: refused, nothing
        // signed; in the later rounds approved anew (other validity, other bytes): the same request.
        const late =
          round === 0
            ? body
            : signBody(
                wallet.walletId,
                digest,
                await signApproval([alice], wallet.walletId, requestId, digest, 600),
              );
        if (round > 0) expect(late.approval).not.toEqual(body.approval);
        const again = await third!.request("sign", late);
        expect(again.error).toMatchObject({ code: "approval_replayed", reason: "replayed" });
      }
      // The broker hands a shared subscription's messages round-robin: the duplicates met at two nodes.
      expect(apart).toBeGreaterThan(0);
    } finally {
      await Promise.all([first, second, third].map((c) => c?.close()));
    }
  });
});
