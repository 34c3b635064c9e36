/**
 * Enclave-signed wallet statements with real processes (issue 9 item 2):
 * three development enclaves and their hosts run a DKG and a refresh; each
 * host keeps its enclave's statement and the document binding the signing
 * key, relays them as the `wallet` answer does, and the SDK verifier accepts
 * them against the development root and the bundled image, after DKG at
 * generation 0 and after refresh at generation 1; a signature verifies
 * against the verified key's child. A host that lies about the wallet's key
 * (rewrites its stored statement) or replays its pre-refresh statement is
 * detected and named. Each holder keeps its peers' statements from the commit
 * certificates, so with one holder offline the other two answer all three.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pemToDer } from "../../src/attestation/aws-root.ts";
import {
  parseVouchersUnverified,
  verifiedSigningKey,
  verifyWallet,
  type WalletTrust,
} from "../../src/client/wallet-verification.ts";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { createWallet, refreshWallet, signDigest } from "../../src/host/coordinator.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import { getWalletStatement, putWalletStatement } from "../../src/host/store/index.ts";
import { keptStatements, walletVouchers } from "../../src/host/wallet-vouchers.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";

let ln: LocalNodes;
let dir: string;
let trust: WalletTrust;
let wallet: WalletRecord;

/** What the `wallet` answer carries, as the SDK reads it back. */
const relayedVouchers = () =>
  parseVouchersUnverified(
    JSON.parse(
      JSON.stringify(
        walletVouchers(ln.hosts.map((h) => h.walletInfo(wallet.walletId)) as HeldWallet[]),
      ),
    ),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-statements-"));
  ln = await startLocalNodes({ nodes: 3, dataDir: dir });
  trust = {
    roots: [
      {
        der: pemToDer(readFileSync(join(dir, "dev-attestation-root.pem"), "utf8")),
        development: true,
      },
    ],
    allowDevelopment: true,
    imageHashes: [ln.image.pcr0Hex],
  };
  wallet = await createWallet(ln.hosts, 2);
}, 240_000);

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("wallet statements from real enclaves", () => {
  it("after DKG: all three attested enclaves vouch for the wallet's key at generation 0", () => {
    const v = verifyWallet(
      { walletId: wallet.walletId, publicKey: toHex(wallet.publicKey), generation: 0 },
      relayedVouchers(),
      trust,
    );
    expect(toHex(v.publicKey)).toBe(toHex(wallet.publicKey));
    expect(toHex(v.chainCode)).toBe(toHex(wallet.chainCode));
    expect(v.vouchedBy.map((x) => x.nodeId)).toEqual(ln.hosts.map((h) => h.nodeId));
    expect(v.vouchedBy.every((x) => x.imageHash === ln.image.pcr0Hex)).toBe(true);
  });

  it("with node 3 offline, node 1's and node 2's copies of its statement complete the n", () => {
    const online = ln.hosts.slice(0, 2).map((h) => h.walletInfo(wallet.walletId)!);
    for (const answering of ln.hosts.slice(0, 2)) {
      const vouchers = parseVouchersUnverified(
        JSON.parse(
          JSON.stringify(walletVouchers(online, keptStatements(answering.db, wallet.walletId))),
        ),
      );
      const v = verifyWallet({ walletId: wallet.walletId, generation: 0 }, vouchers, trust);
      expect(v.vouchedBy.map((x) => x.partyIndex)).toEqual([1, 2, 3]);
      // The very bytes node 3's enclave signed, kept from the DKG's commit certificate.
      const third = ln.hosts[2]!;
      expect(vouchers[2]!.statement).toEqual(
        getWalletStatement(third.db, wallet.walletId, third.nodeId, 0)!.statement,
      );
    }
    // Without the copies, the two live holders' statements are refused as before.
    expect(() =>
      verifyWallet(
        { walletId: wallet.walletId },
        parseVouchersUnverified(JSON.parse(JSON.stringify(walletVouchers(online)))),
        trust,
      ),
    ).toThrow(/2 of its 3 holders; missing party 3/);
  });

  it("a signature verifies against the child of the verified key", async () => {
    const v = verifyWallet({ walletId: wallet.walletId }, relayedVouchers(), trust);
    const digest = randomBytes(32);
    const sig = await signDigest(ln.hosts.slice(0, 2), wallet, 0, digest, { path: "m/3" });
    expect(verifySignature(fromHex(verifiedSigningKey(v, "m/3")), digest, sig)).toBe(true);
    expect(verifySignature(fromHex(verifiedSigningKey(v, null)), digest, sig)).toBe(false);
  }, 120_000);

  it("after refresh: they vouch for the same key at generation 1; a replayed old statement is named", async () => {
    const old = getWalletStatement(ln.hosts[1]!.db, wallet.walletId, ln.hosts[1]!.nodeId, 0)!;
    expect(await refreshWallet(ln.hosts, wallet, 0)).toBe(1);
    const v = verifyWallet(
      { walletId: wallet.walletId, publicKey: toHex(wallet.publicKey), generation: 1 },
      relayedVouchers(),
      trust,
    );
    expect(v.generation).toBe(1);
    expect(toHex(v.publicKey)).toBe(toHex(wallet.publicKey));
    // Only the committed generation's statement is kept, its own and its peers' copies.
    for (const h of ln.hosts) {
      expect(getWalletStatement(h.db, wallet.walletId, h.nodeId, 0)).toBeNull();
      const kept = keptStatements(h.db, wallet.walletId);
      expect(kept.map((k) => k.generation)).toEqual([1, 1, 1]);
    }
    // Node 2's host relays its genuine generation-0 statement as if it were current.
    const replayed = relayedVouchers().map((x, i) => (i === 1 ? { ...x, ...old } : x));
    expect(() => verifyWallet({ walletId: wallet.walletId }, replayed, trust)).toThrow(
      /disagree.*generation 0/,
    );
  }, 240_000);

  it("a host that rewrites its stored statement (another public key) is named", () => {
    const h = ln.hosts[2]!;
    const mine = getWalletStatement(h.db, wallet.walletId, h.nodeId, 1)!;
    const forged = mine.statement.slice();
    const at = 24 + wallet.walletId.length + 7 + 1; // a byte of the public key
    forged[at] = forged[at]! ^ 1;
    putWalletStatement(h.db, {
      walletId: wallet.walletId,
      nodeId: h.nodeId,
      generation: 1,
      statement: forged,
      attestation: mine.attestation,
    });
    try {
      let caught: unknown;
      try {
        verifyWallet({ walletId: wallet.walletId }, relayedVouchers(), trust);
      } catch (e) {
        caught = e;
      }
      expect((caught as { node?: string }).node).toBe(h.nodeId);
      expect((caught as Error).message).toMatch(/not signed by its attested enclave/);
    } finally {
      putWalletStatement(h.db, {
        walletId: wallet.walletId,
        nodeId: h.nodeId,
        generation: 1,
        ...mine,
      });
    }
  });
});
