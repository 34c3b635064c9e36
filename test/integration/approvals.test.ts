/**
 * Approvals with real processes (issue 9 item 1): three development enclaves
 * started with an administrators' policy, hosts with libsql stores, the KMS
 * stand-in. The test holds the hosts' node RPC (what one compromised host, or
 * anyone with node credentials, can call) and acts as coordinator: it cannot
 * create a wallet without an administrator's approval, and it cannot get any
 * digest signed, or a wallet refreshed, without a quorum of the wallet's
 * approvers' approvals of exactly that request: every enclave refuses before
 * phase 1 (no protocol message is ever relayed), naming the reason. A host
 * that swaps the stored policy cannot open its share.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeySigner, approve, approverKeyOf, validity } from "../../src/client/signers.ts";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import {
  CeremonyError,
  createWallet,
  refreshWallet,
  signDigest,
  type ApprovalRelay,
} from "../../src/host/coordinator.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import { currentShare, getWallet, readAudit } from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import {
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const policy = encodePolicy({ quorum: 2, approvers: [alice, bob, carol].map(approverKeyOf) });

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;
const relayed: Uint8Array[] = [];
const onRelay = (b: Uint8Array) => relayed.push(b);

async function relay(
  req: Omit<ApprovableRequest, "issuedAt" | "expiresAt">,
  signers: KeySigner[],
  over: Partial<ApprovableRequest> = {},
): Promise<ApprovalRelay> {
  const a = await approve({ ...req, ...validity(300), ...over }, signers);
  return {
    requestId: req.requestId,
    approvalRequest: a.request,
    approvals: a.approvals.map(encodeApproval),
  };
}

/** The refusal a ceremony ended with: the contract code, the reason, and that nothing was relayed. */
async function refused(run: () => Promise<unknown>): Promise<{ code: string; reason?: string }> {
  const before = relayed.length;
  const e = await run().then(
    () => {
      throw new Error("expected the enclaves to refuse");
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CeremonyError);
  // Refused before phase 1: not one protocol message left any enclave.
  expect(relayed.length).toBe(before);
  return { code: (e as CeremonyError).code, reason: (e as CeremonyError).reason };
}

const signRequest = (requestId: string, digest: Uint8Array) => ({
  operation: "sign" as const,
  walletId: wallet.walletId,
  requestId,
  digest,
  path: "m",
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-approvals-"));
  ln = await startLocalNodes({
    nodes: 3,
    dataDir: dir,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
});

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("approvals enforced by every enclave", () => {
  it("a DKG needs an administrator's approval of the wallet's policy", async () => {
    const walletId = `w_${randomBytes(8).toString("hex")}`;
    const dkg = {
      operation: "dkg" as const,
      walletId,
      requestId: "dkg-1",
      policyHash: policyHash(policy),
      threshold: 2,
      parties: 3,
    };
    const opts = { onRelay, walletId, policy };
    expect(
      await refused(() => createWallet(ln.hosts, 2, { ...opts, approval: { requestId: "dkg-1" } })),
    ).toEqual({
      code: "unauthorised",
      reason: "missing",
    });
    // A wallet approver is no administrator.
    const byAlice = await relay(dkg, [alice]);
    expect(await refused(() => createWallet(ln.hosts, 2, { ...opts, approval: byAlice }))).toEqual({
      code: "unauthorised",
      reason: "unknown_signer",
    });
    wallet = await createWallet(ln.hosts, 2, { ...opts, approval: await relay(dkg, [admin]) });
    expect(wallet.walletId).toBe(walletId);
    // Every host stores the policy with the wallet; the enclave sealed its hash with each share.
    for (const h of ln.hosts) {
      expect(toHex(getWallet(h.db, walletId)!.policy!)).toBe(toHex(policy));
      expect(currentShare(h.db, walletId, h.nodeId).sealedShare[0]).toBe(2);
    }
  });

  it("no digest is signed without a quorum of approvals of exactly that digest", async () => {
    const nodes = ln.hosts.slice(0, 2);
    const digest = randomBytes(32);
    const sign = (approval: ApprovalRelay) =>
      signDigest(nodes, wallet, 0, digest, { onRelay, approval });
    expect(await refused(() => sign({ requestId: "s-1" }))).toEqual({
      code: "unauthorised",
      reason: "missing",
    });
    // Each participant's own audit log holds the refusal, whoever coordinated.
    for (const h of nodes)
      expect(
        readAudit(h.db, { limit: 1000 }).filter((a) => a.event === "approval_decided"),
      ).toContainEqual(
        expect.objectContaining({
          walletId: wallet.walletId,
          detail: expect.objectContaining({
            requestId: "s-1",
            operation: "sign",
            decision: "refused",
            decidedBy: h.nodeId,
            refusal: "missing",
          }),
        }),
      );
    const other = await relay(signRequest("s-1", randomBytes(32)), [alice, bob]);
    expect(await refused(() => sign(other))).toEqual({
      code: "unauthorised",
      reason: "wrong_digest",
    });
    const one = await relay(signRequest("s-1", digest), [alice]);
    expect(await refused(() => sign(one))).toEqual({
      code: "unauthorised",
      reason: "below_quorum",
    });
    const twice = { ...one, approvals: [one.approvals![0]!, one.approvals![0]!] };
    expect(await refused(() => sign(twice))).toEqual({
      code: "unauthorised",
      reason: "duplicate_signer",
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = await relay(signRequest("s-1", digest), [alice, bob], {
      issuedAt: now - 600,
      expiresAt: now - 1,
    });
    expect(await refused(() => sign(expired))).toEqual({
      code: "approval_expired",
      reason: "expired",
    });
    const good = await relay(signRequest("s-1", digest), [alice, bob]);
    const tampered = { ...good, approvals: [good.approvals![0]!, good.approvals![1]!.slice()] };
    tampered.approvals[1]![40]! ^= 1;
    expect(await refused(() => sign(tampered))).toEqual({
      code: "unauthorised",
      reason: "bad_signature",
    });
    // The same approvals relayed under another request id, or for another wallet's start.
    expect(await refused(() => sign({ ...good, requestId: "s-2" }))).toEqual({
      code: "unauthorised",
      reason: "wrong_request_id",
    });
    const sig = await sign(good);
    expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
  });

  it("a refresh needs approvals too, and the policy survives it", async () => {
    const refresh = { operation: "refresh" as const, walletId: wallet.walletId, requestId: "r-1" };
    expect(
      await refused(() =>
        refreshWallet(ln.hosts, wallet, 0, { onRelay, approval: { requestId: "r-1" } }),
      ),
    ).toEqual({ code: "unauthorised", reason: "missing" });
    const generation = await refreshWallet(ln.hosts, wallet, 0, {
      onRelay,
      approval: await relay(refresh, [bob, carol]),
    });
    expect(generation).toBe(1);
    const digest = randomBytes(32);
    const nodes = [ln.hosts[0]!, ln.hosts[2]!];
    expect(
      await refused(() =>
        signDigest(nodes, wallet, 1, digest, { onRelay, approval: { requestId: "s-3" } }),
      ),
    ).toEqual({ code: "unauthorised", reason: "missing" });
    const sig = await signDigest(nodes, wallet, 1, digest, {
      onRelay,
      approval: await relay(signRequest("s-3", digest), [carol, alice]),
    });
    expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
  });

  it("a host that swaps or drops the stored policy cannot open its share", async () => {
    const h = ln.hosts[0]!;
    const stored = currentShare(h.db, wallet.walletId, h.nodeId);
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, `${h.nodeId}.enclave.sock`),
    });
    try {
      const base = {
        walletId: wallet.walletId,
        partyIndex: stored.partyIndex,
        generation: stored.generation,
        publicKey: wallet.publicKey,
        sealed: stored.sealedShare,
        ciphertextBlob: stored.kmsCiphertextBlob,
        ...ln.kmsCredentials,
      };
      const lenient = encodePolicy({ quorum: 1, approvers: [approverKeyOf(alice)] });
      for (const p of [lenient, undefined])
        await expect(enclave.loadShare({ ...base, policy: p })).rejects.toMatchObject({
          code: "unseal_failed",
        });
      await expect(enclave.loadShare({ ...base, policy })).resolves.toMatchObject({
        generation: stored.generation,
      });
    } finally {
      await enclave.close();
    }
  });
});
