/**
 * Five signing nodes on this machine: enclave processes reached only through
 * their sockets (in empty network namespaces when root), the KMS stand-in
 * with an attestation-gated key policy, sealed shares in libsql files.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DecryptCommand, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import {
  createWallet,
  refreshWallet,
  signDigest,
  CeremonyError,
} from "../../src/host/coordinator.ts";
import { currentShare, listShares, generationOf } from "../../src/host/store/index.ts";
import { shareContext } from "../../src/host/kms-proxy.ts";
import { unsealShare } from "../../src/enclave/seal.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import { dialUnix } from "../../src/shared/channel/unix-transport.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { WalletRecord } from "../../src/host/participant.ts";

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;
const relayed: Uint8Array[] = [];
const onRelay = (b: Uint8Array) => relayed.push(b.slice());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-nodes-"));
  ln = await startLocalNodes({ nodes: 5, dataDir: dir });
  wallet = await createWallet(ln.hosts, 3, { onRelay });
});

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pick = (...i: number[]) => i.map((k) => ln.hosts[k - 1]!);

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return (
    Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(
      Buffer.from(needle),
    ) >= 0
  );
}

describe("five nodes, 3-of-5", () => {
  it("run their enclaves as separate processes, network-isolated when root", async () => {
    expect(ln.enclaves).toHaveLength(5);
    for (const e of ln.enclaves) expect(e.proc.pid).toBeGreaterThan(0);
    if (process.getuid?.() === 0) expect(ln.networkIsolated).toBe(true);
  });

  it("DKG stored one active sealed share per node at generation 0", () => {
    for (const [k, h] of ln.hosts.entries()) {
      const s = currentShare(h.db, wallet.walletId, h.nodeId);
      expect(s.generation).toBe(0);
      expect(s.partyIndex).toBe(k + 1);
      expect(s.status).toBe("active");
    }
  });

  it("several quorums sign; every signature verifies independently", async () => {
    for (const q of [
      [1, 2, 3],
      [3, 4, 5],
      [1, 3, 5],
      [2, 4, 5],
    ]) {
      const digest = randomBytes(32);
      const sig = await signDigest(pick(...q), wallet, 0, digest, { onRelay });
      expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
    }
  });

  it("refuses a quorum of the wrong size and a stale generation claim", async () => {
    await expect(signDigest(pick(1, 2), wallet, 0, randomBytes(32))).rejects.toThrow(
      /exactly 3 nodes/,
    );
    const err = await signDigest(pick(1, 2, 3), wallet, 7, randomBytes(32)).catch((e) => e);
    expect(err).toBeInstanceOf(CeremonyError);
    expect((err as CeremonyError).code).toBe("stale_share");
  });

  it("nothing on disk, in the host log or in relayed messages is a share or a data key", async () => {
    // As key administrator, allow a plain Decrypt once to learn the real secrets, then search for them.
    await ln.kms.send(
      new PutKeyPolicyCommand({
        KeyId: ln.kmsKeyId,
        PolicyName: "default",
        Policy: JSON.stringify({
          Statement: [{ Effect: "Allow", Principal: { AWS: "*" }, Action: "kms:*", Resource: "*" }],
        }),
      }),
    );
    const secrets: Uint8Array[] = [];
    try {
      for (const h of ln.hosts) {
        const s = currentShare(h.db, wallet.walletId, h.nodeId);
        const dk = await ln.kms.send(
          new DecryptCommand({
            KeyId: ln.kmsKeyId,
            CiphertextBlob: s.kmsCiphertextBlob,
            EncryptionContext: shareContext(wallet.walletId, h.nodeId, 0),
          }),
        );
        const dataKey = dk.Plaintext!;
        const share = unsealShare({
          dataKey,
          sealed: s.sealedShare,
          binding: {
            walletId: wallet.walletId,
            nodeId: h.nodeId,
            partyIndex: s.partyIndex,
            generation: 0,
            publicKey: wallet.publicKey,
          },
        });
        expect(share.length).toBeGreaterThan(1000);
        secrets.push(dataKey);
        for (let off = 0; off + 32 <= share.length; off += 997)
          secrets.push(share.slice(off, off + 32));
      }
    } finally {
      await ln.kms.send(
        new PutKeyPolicyCommand({
          KeyId: ln.kmsKeyId,
          PolicyName: "default",
          Policy: JSON.stringify({
            Statement: [
              {
                Effect: "Allow",
                Principal: { AWS: "*" },
                Action: ["kms:PutKeyPolicy", "kms:DescribeKey"],
                Resource: "*",
              },
              {
                Effect: "Allow",
                Principal: { AWS: "*" },
                Action: ["kms:Decrypt", "kms:GenerateDataKey"],
                Resource: "*",
                Condition: {
                  StringEqualsIgnoreCase: {
                    "kms:RecipientAttestation:ImageSha384": ln.image.pcr0Hex,
                  },
                },
              },
            ],
          }),
        }),
      );
    }
    for (const h of ln.hosts) h.db.checkpoint();
    const files = readdirSync(dir)
      .filter((f) => /\.db(-wal|-shm)?$/.test(f))
      .map((f) => new Uint8Array(readFileSync(join(dir, f))));
    expect(files.length).toBeGreaterThanOrEqual(5);
    const log = new TextEncoder().encode(
      ln.hostLog.join("\n") + ln.enclaves.map((e) => e.stderr()).join("\n"),
    );
    expect(relayed.length).toBeGreaterThan(50);
    for (const secret of secrets) {
      for (const f of files) expect(contains(f, secret)).toBe(false);
      expect(contains(log, secret)).toBe(false);
      expect(contains(log, new TextEncoder().encode(Buffer.from(secret).toString("hex")))).toBe(
        false,
      );
      for (const m of relayed) expect(contains(m, secret)).toBe(false);
    }
  });

  it("the enclave refuses a tampered sealed share, another node's share, and a swapped data key", async () => {
    const h = ln.hosts[0]!;
    const mine = currentShare(h.db, wallet.walletId, h.nodeId);
    const other = currentShare(ln.hosts[1]!.db, wallet.walletId, ln.hosts[1]!.nodeId);
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, "node-1.enclave.sock"),
    });
    try {
      const { document } = await enclave.attest({});
      const kms = (h as unknown as { kms: import("../../src/host/kms-proxy.ts").KmsProxy }).kms;
      const cfrMine = await kms.decryptForEnclave(
        mine.kmsCiphertextBlob,
        document,
        shareContext(wallet.walletId, h.nodeId, 0),
      );
      const cfrOther = await kms.decryptForEnclave(
        other.kmsCiphertextBlob,
        document,
        shareContext(wallet.walletId, "node-2", 0),
      );
      const base = {
        walletId: wallet.walletId,
        nodeId: h.nodeId,
        partyIndex: 1,
        generation: 0,
        publicKey: wallet.publicKey,
      };
      const tampered = mine.sealedShare.slice();
      tampered[100]! ^= 1;
      await expect(
        enclave.loadShare({ ...base, sealed: tampered, ciphertextForRecipient: cfrMine }),
      ).rejects.toMatchObject({ code: "unseal_failed" });
      // The host swaps in node-2's data key: the seal does not open.
      await expect(
        enclave.loadShare({ ...base, sealed: mine.sealedShare, ciphertextForRecipient: cfrOther }),
      ).rejects.toMatchObject({ code: "unseal_failed" });
      // The host presents node-2's sealed share with its matching key as if it were node-1's.
      await expect(
        enclave.loadShare({ ...base, sealed: other.sealedShare, ciphertextForRecipient: cfrOther }),
      ).rejects.toMatchObject({ code: "unseal_failed" });
      // ...or claims node-2's id for it: the party index in the seal's binding still differs.
      await expect(
        enclave.loadShare({
          ...base,
          nodeId: "node-2",
          sealed: other.sealedShare,
          ciphertextForRecipient: cfrOther,
        }),
      ).rejects.toMatchObject({ code: "unseal_failed" });
      // A document from this enclave is bound to its RSA key; garbage is not a data key.
      await expect(
        enclave.loadShare({
          ...base,
          sealed: mine.sealedShare,
          ciphertextForRecipient: randomBytes(300),
        }),
      ).rejects.toMatchObject({ code: "kms_key_rejected" });
      // The genuine one still loads.
      await expect(
        enclave.loadShare({ ...base, sealed: mine.sealedShare, ciphertextForRecipient: cfrMine }),
      ).resolves.toMatchObject({ generation: 0, partyIndex: 1 });
    } finally {
      enclave.close();
    }
  });

  it("random and malformed frames get error frames or a closed connection; the enclave keeps serving", async () => {
    const sock = join(dir, "node-3.enclave.sock");
    for (let round = 0; round < 30; round++) {
      const conn = await dialUnix(sock);
      const replies: Uint8Array[] = [];
      conn.onData((d) => replies.push(d));
      const junk =
        round % 3 === 0
          ? randomBytes(1 + ((round * 37) % 3000))
          : Uint8Array.from([
              0x54,
              0x53,
              1,
              round % 2 ? 0x77 : 0x11,
              0,
              0,
              0,
              0,
              0,
              1,
              0,
              0,
              0,
              4,
              1,
              2,
              3,
              4,
            ]);
      conn.write(junk);
      await new Promise((r) => setTimeout(r, 30));
      conn.close();
      if (replies.length) expect(replies[0]![0]).toBe(0x54); // an ERROR frame, magic "TS"
    }
    const enclave = await EnclaveClient.connect({ kind: "unix", path: sock });
    await expect(enclave.health()).resolves.toMatchObject({ status: "ok", pcr0: ln.image.pcr0Hex });
    // A well-formed frame with a malformed body is answered with an error, not a crash.
    await expect(
      enclave.startCeremony({
        kind: "sign",
        sessionId: randomBytes(5),
        walletId: wallet.walletId,
        peerDocuments: [],
        peerParties: [],
      }),
    ).rejects.toMatchObject({ code: "bad_request" });
    await expect(
      enclave.stepCeremony({ sessionId: randomBytes(32), phase: 2, messages: [] }),
    ).rejects.toMatchObject({ code: "unknown_session" });
    await expect(enclave.health()).resolves.toMatchObject({ status: "ok" });
    enclave.close();
  });

  it("refresh keeps the key, deletes old shares only after commit, and the new shares sign; old generation is refused", async () => {
    const before = ln.hosts.map((h) => currentShare(h.db, wallet.walletId, h.nodeId));
    const gen = await refreshWallet(ln.hosts, wallet, 0, { onRelay });
    expect(gen).toBe(1);
    for (const [k, h] of ln.hosts.entries()) {
      expect(generationOf(h.db, wallet.walletId)).toBe(1);
      const rows = listShares(h.db, wallet.walletId, h.nodeId);
      expect(rows.map((r) => [r.generation, r.status])).toEqual([[1, "active"]]);
      expect(Buffer.from(rows[0]!.sealedShare).equals(Buffer.from(before[k]!.sealedShare))).toBe(
        false,
      );
    }
    for (const q of [
      [1, 2, 3],
      [2, 4, 5],
    ]) {
      const digest = randomBytes(32);
      expect(
        verifySignature(wallet.publicKey, digest, await signDigest(pick(...q), wallet, 1, digest)),
      ).toBe(true);
    }
    // A host that slips the old generation-0 share back in: the enclave will
    // load it only as generation 0, and then refuses to sign for generation 1.
    const h = ln.hosts[0]!;
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, "node-1.enclave.sock"),
    });
    try {
      const { document } = await enclave.attest({});
      const kms = (h as unknown as { kms: import("../../src/host/kms-proxy.ts").KmsProxy }).kms;
      const cfrOld = await kms.decryptForEnclave(
        before[0]!.kmsCiphertextBlob,
        document,
        shareContext(wallet.walletId, h.nodeId, 0),
      );
      const base = {
        walletId: wallet.walletId,
        nodeId: h.nodeId,
        partyIndex: 1,
        publicKey: wallet.publicKey,
        sealed: before[0]!.sealedShare,
        ciphertextForRecipient: cfrOld,
      };
      await expect(enclave.loadShare({ ...base, generation: 1 })).rejects.toMatchObject({
        code: "unseal_failed",
      });
      await expect(enclave.loadShare({ ...base, generation: 0 })).resolves.toMatchObject({
        generation: 0,
      });
      await expect(
        enclave.startCeremony({
          kind: "sign",
          sessionId: randomBytes(32),
          walletId: wallet.walletId,
          signers: [1, 2, 3],
          digest: randomBytes(32),
          expectedGeneration: 1,
          peerDocuments: [],
          peerParties: [],
        }),
      ).rejects.toMatchObject({ code: "generation_mismatch" });
    } finally {
      enclave.close();
    }
  });
});
