/**
 * Five signing nodes on this machine: enclave processes reached only through
 * their sockets (in empty network namespaces when root), the KMS stand-in
 * over HTTPS with the per-node key policy, reached by each enclave itself
 * over TLS through its host's KMS relay, sealed shares in libsql files.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DecryptCommand,
  InvalidCiphertextException,
  KMSServiceException,
  PutKeyPolicyCommand,
} from "@aws-sdk/client-kms";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { devKmsClient, nodeBoundPolicy } from "../../src/harness/dev-kms.ts";
import {
  createWallet,
  refreshWallet,
  signDigest,
  CeremonyError,
} from "../../src/host/coordinator.ts";
import { currentShare, listShares, generationOf } from "../../src/host/store/index.ts";
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
  ln = await startLocalNodes({ nodes: 5, dataDir: dir, recordRelayTraffic: true });
  wallet = await createWallet(ln.hosts, 3, { onRelay });
});

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pick = (...i: number[]) => i.map((k) => ln.hosts[k - 1]!);

/** The encryption context node k's enclave builds for its share (contract item 7). */
const shareContext = (k: number, partyIndex: number, generation: number) => ({
  purpose: "tss-share",
  wallet: wallet.walletId,
  party: String(partyIndex),
  generation: String(generation),
  node: ln.pcr4Hex[k - 1]!,
});

/** Every byte one node's KMS relay carried in one direction, in order. */
const relayedBytes = (nodeId: string, direction: "to-kms" | "to-enclave") =>
  new Uint8Array(
    Buffer.concat(
      ln.relayTraffic
        .filter((c) => c.nodeId === nodeId && c.direction === direction)
        .map((c) => c.bytes),
    ),
  );

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

  it("nothing on disk, in the host log, in relayed messages or in the KMS relay traffic is a share or a data key", async () => {
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
      for (const [i, h] of ln.hosts.entries()) {
        const s = currentShare(h.db, wallet.walletId, h.nodeId);
        expect(s.kmsKeyId).toBe(ln.kmsKeyArn);
        const dk = await ln.kms.send(
          new DecryptCommand({
            KeyId: ln.kmsKeyId,
            CiphertextBlob: s.kmsCiphertextBlob,
            EncryptionContext: shareContext(i + 1, s.partyIndex, 0),
          }),
        );
        const dataKey = dk.Plaintext!;
        const share = unsealShare({
          dataKey,
          sealed: s.sealedShare,
          binding: {
            walletId: wallet.walletId,
            nodeId: ln.pcr4Hex[i]!,
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
          Policy: nodeBoundPolicy(
            ln.image.pcr0Hex,
            ln.hosts.map((h, i) => ({ name: h.nodeId, pcr4Hex: ln.pcr4Hex[i]! })),
          ),
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
    // The KMS relays carried each node's GenerateDataKey (DKG) and Decrypts, as TLS records only.
    const kmsTraffic = ln.hosts.flatMap((h) => [
      relayedBytes(h.nodeId, "to-kms"),
      relayedBytes(h.nodeId, "to-enclave"),
    ]);
    for (const t of kmsTraffic) {
      expect(t.length).toBeGreaterThan(1000);
      expect(t[0]).toBe(0x16); // a TLS handshake record opens every direction
    }
    for (const [i, r] of ln.relays.entries()) {
      expect(r.stats().bytesToKms).toBe(kmsTraffic[2 * i]!.length);
      expect(r.stats().bytesToEnclave).toBe(kmsTraffic[2 * i + 1]!.length);
    }
    const b64 = (b: Uint8Array) => new TextEncoder().encode(Buffer.from(b).toString("base64"));
    for (const secret of secrets) {
      for (const f of files) expect(contains(f, secret)).toBe(false);
      expect(contains(log, secret)).toBe(false);
      expect(contains(log, new TextEncoder().encode(Buffer.from(secret).toString("hex")))).toBe(
        false,
      );
      for (const m of relayed) expect(contains(m, secret)).toBe(false);
      for (const t of kmsTraffic) {
        expect(contains(t, secret)).toBe(false);
        expect(contains(t, b64(secret))).toBe(false);
      }
    }
  });

  it("node 2's sealed share and CiphertextBlob are refused to node 1's enclave, by KMS and by the enclave", async () => {
    const h = ln.hosts[0]!;
    const mine = currentShare(h.db, wallet.walletId, h.nodeId);
    const other = currentShare(ln.hosts[1]!.db, wallet.walletId, ln.hosts[1]!.nodeId);
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, "node-1.enclave.sock"),
    });
    // A compromised node-1 host calling KMS itself with its enclave's genuine attestation
    // (and the credentials it holds anyway).
    const asHost = devKmsClient(ln.kmsUrl, ln.kmsCaPem, ln.kmsCredentials);
    try {
      const { document } = await enclave.attest({});
      const ask = (blob: Uint8Array, contextOf: number, party: number) =>
        asHost.send(
          new DecryptCommand({
            KeyId: ln.kmsKeyArn,
            CiphertextBlob: blob,
            EncryptionContext: shareContext(contextOf, party, 0),
            Recipient: {
              AttestationDocument: document,
              KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
            },
          }),
        );
      // KMS: node 1's attestation with node 2's context fails the PCR4 condition...
      const denied = await ask(other.kmsCiphertextBlob, 2, 2).catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(KMSServiceException);
      expect((denied as KMSServiceException).name).toBe("AccessDeniedException");
      // ...and with its own context, node 2's blob does not open (its context names node 2).
      await expect(ask(other.kmsCiphertextBlob, 1, 2)).rejects.toBeInstanceOf(
        InvalidCiphertextException,
      );
      // Its own blob it may ask for, but only ever as CiphertextForRecipient (to the enclave's key).
      const own = await ask(mine.kmsCiphertextBlob, 1, 1);
      expect(own.Plaintext).toBeUndefined();
      expect(own.CiphertextForRecipient!.length).toBeGreaterThan(100);

      const credentials = ln.kmsCredentials;
      const base = {
        walletId: wallet.walletId,
        partyIndex: 1,
        generation: 0,
        publicKey: wallet.publicKey,
        ...credentials,
      };
      const tampered = mine.sealedShare.slice();
      tampered[100]! ^= 1;
      const refusals = [
        // a modified seal
        { ...base, sealed: tampered, ciphertextBlob: mine.kmsCiphertextBlob },
        // node 2's row, as node 1's
        { ...base, sealed: other.sealedShare, ciphertextBlob: other.kmsCiphertextBlob },
        // node 2's row under node 2's party index
        {
          ...base,
          partyIndex: 2,
          sealed: other.sealedShare,
          ciphertextBlob: other.kmsCiphertextBlob,
        },
        // node 1's seal with node 2's data key, and node 2's seal with node 1's
        { ...base, sealed: mine.sealedShare, ciphertextBlob: other.kmsCiphertextBlob },
        { ...base, sealed: other.sealedShare, ciphertextBlob: mine.kmsCiphertextBlob },
        // a blob that is not KMS's
        { ...base, sealed: mine.sealedShare, ciphertextBlob: randomBytes(200) },
      ];
      const errors = [];
      for (const req of refusals)
        errors.push(
          await enclave.loadShare(req).catch((e: { code?: string; message?: string }) => e),
        );
      // One code and one sentence for every cause: nothing tells the host which check failed.
      for (const e of errors) {
        expect(e).toMatchObject({ code: "unseal_failed" });
        expect((e as Error).message).toBe((errors[0] as Error).message);
      }
      // The host cannot slip a data key or a node id into the request.
      for (const extra of [{ ciphertextForRecipient: randomBytes(300) }, { nodeId: "node-2" }])
        await expect(
          enclave.loadShare({
            ...base,
            sealed: mine.sealedShare,
            ciphertextBlob: mine.kmsCiphertextBlob,
            ...extra,
          } as never),
        ).rejects.toMatchObject({ code: "bad_request" });
      // The genuine row still loads.
      await expect(
        enclave.loadShare({
          ...base,
          sealed: mine.sealedShare,
          ciphertextBlob: mine.kmsCiphertextBlob,
        }),
      ).resolves.toMatchObject({ generation: 0, partyIndex: 1 });
    } finally {
      asHost.destroy();
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
    // A host that slips the old generation-0 share back in: it opens only as
    // generation 0 (the generation is in the associated data), and the enclave,
    // which verified generation 1's commit certificate, refuses generation 0.
    const enclave = await EnclaveClient.connect({
      kind: "unix",
      path: join(dir, "node-1.enclave.sock"),
    });
    try {
      const base = {
        walletId: wallet.walletId,
        partyIndex: 1,
        publicKey: wallet.publicKey,
        sealed: before[0]!.sealedShare,
        ciphertextBlob: before[0]!.kmsCiphertextBlob,
        ...ln.kmsCredentials,
      };
      await expect(enclave.loadShare({ ...base, generation: 1 })).rejects.toMatchObject({
        code: "unseal_failed",
      });
      await expect(enclave.loadShare({ ...base, generation: 0 })).rejects.toMatchObject({
        code: "stale_share",
      });
    } finally {
      enclave.close();
    }
  });
});
