/**
 * Peers' wallet statements kept by a holder (src/host/wallet-vouchers.ts) and
 * the SDK's unchanged rule on them: node-1 of a 2-of-3 wallet keeps the
 * commit certificate's statements of its peers, names them after the live
 * holders it sees answer them, and answers all n while node-3 is offline,
 * which the SDK verifies. A commit drops the older copies; a stale copy
 * (another generation) is never answered for the current holders; a copy
 * kept from the certificate is not replaced by what a peer relays; a node
 * that does not hold the wallet keeps nothing. And the attack the copies
 * open: a lying host that serves an offline holder's genuine statement of a
 * rolled-back generation beside the current ones is refused by the SDK.
 */
import { describe, expect, it } from "vitest";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { TssError } from "../../src/client/errors.ts";
import {
  parseVouchersUnverified,
  verifyWallet,
  type WalletTrust,
} from "../../src/client/wallet-verification.ts";
import {
  dropWalletStatementsBefore,
  insertWallet,
  listWalletStatements,
  migrate,
  openDatabase,
  putWalletStatement,
  type Db,
} from "../../src/host/store/index.ts";
import {
  keepCertificateStatements,
  keepPeerStatements,
  keptStatements,
  unnamedHolder,
  walletVouchers,
} from "../../src/host/wallet-vouchers.ts";
import { toHex } from "../../src/shared/hex.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";
import type { WalletStatement } from "../../src/shared/wire/wallet-statement.ts";
import { fakeEnclave, fakeVoucher } from "../client/fake-vouchers.ts";
import { thrown } from "../helpers/thrown.ts";

const IMAGE = new Uint8Array(48).fill(0xab);
const pki = createDevelopmentPki();
const trust: WalletTrust = {
  roots: [{ der: pki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
/** The secp256k1 generator, compressed. */
const PUBLIC_KEY = Uint8Array.from(
  Buffer.from("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", "hex"),
);
const W = "w_kept";
const SELF = "node-1";
const enclaves = [1, 2, 3].map(() => fakeEnclave(pki, IMAGE));

const statement = (partyIndex: number, generation: number): WalletStatement => ({
  walletId: W,
  threshold: 2,
  parties: 3,
  partyIndex,
  generation,
  publicKey: PUBLIC_KEY,
  chainCode: new Uint8Array(32).fill(7),
  publicPackageHash: new Uint8Array(32).fill(generation + 1),
  policyHash: null,
});
/** Party p's enclave-signed statement of `generation`, relayed by node-p. */
const signed = (p: number, generation: number) =>
  fakeVoucher(enclaves[p - 1]!, statement(p, generation));
const certificate = (generation: number) => {
  const vs = [1, 2, 3].map((p) => signed(p, generation));
  return { statements: vs.map((v) => v.statement), documents: vs.map((v) => v.attestation) };
};

/** Node-p's walletInfo answer at `generation`, with its statement. */
const live = (p: number, generation: number): HeldWallet => {
  const v = signed(p, generation);
  return {
    walletId: W,
    nodeId: v.nodeId,
    threshold: 2,
    parties: 3,
    publicKey: PUBLIC_KEY,
    publicPackage: Uint8Array.of(1),
    chainCode: new Uint8Array(32).fill(7),
    generation,
    partyIndex: p,
    statement: v.statement,
    attestation: v.attestation,
  };
};

/** Node-1's store after it committed `generation` (its own statement stored at persist). */
function holder(generation = 0): Db {
  const db = openDatabase({ path: ":memory:" });
  migrate(db);
  insertWallet(db, {
    walletId: W,
    threshold: 2,
    parties: 3,
    publicKey: PUBLIC_KEY,
    publicPackage: Uint8Array.of(1),
    chainCode: new Uint8Array(32).fill(7),
  });
  setGeneration(db, generation);
  return db;
}

function setGeneration(db: Db, generation: number): void {
  db.run("UPDATE wallets SET current_generation = :g WHERE wallet_id = :w", {
    g: generation,
    w: W,
  });
  const { statement, attestation } = signed(1, generation);
  putWalletStatement(db, { walletId: W, nodeId: SELF, generation, statement, attestation });
  // As NodeHost.commitLocally does for its own.
  dropWalletStatementsBefore(db, W, SELF, generation);
}

/** The answer's vouchers as the SDK reads them back (hex over JSON). */
const answered = (holders: HeldWallet[], db: Db) =>
  parseVouchersUnverified(
    JSON.parse(JSON.stringify(walletVouchers(holders, keptStatements(db, W)))),
  );

/** The SDK's refusal of what `f` verifies. */
function refusal(f: () => unknown): TssError {
  const e = thrown(TssError, f);
  expect(e.code).toBe("unverified_wallet");
  return e;
}

describe("peers' statements kept by a holder", () => {
  it("answers all n from the certificate's copies while a holder is offline; the SDK verifies them", () => {
    const db = holder(0);
    // Without copies, two live holders vouch: the SDK refuses, as it always did.
    expect(
      refusal(() => verifyWallet({ walletId: W }, answered([live(1, 0), live(2, 0)], db), trust))
        .message,
    ).toMatch(/2 of its 3 holders; missing party 3/);
    keepCertificateStatements(db, SELF, W, 0, certificate(0));
    // The DKG's certificate names no nodes: unnamed until a live holder is seen with the bytes.
    expect(
      listWalletStatements(db, W)
        .map((k) => k.nodeId)
        .sort(),
    ).toEqual([SELF, unnamedHolder(2), unnamedHolder(3)].sort());
    keepPeerStatements(
      db,
      SELF,
      W,
      [2, 3].map((p) => ({ ...signed(p, 0) })),
    );
    expect(listWalletStatements(db, W).map((k) => k.nodeId)).toEqual([SELF, "node-2", "node-3"]);

    // Node-3 offline: the answer carries node-1's copy of its statement.
    const vouchers = answered([live(1, 0), live(2, 0)], db);
    expect(vouchers.map((v) => [v.nodeId, v.partyIndex])).toEqual([
      ["node-1", 1],
      ["node-2", 2],
      ["node-3", 3],
    ]);
    const v = verifyWallet(
      { walletId: W, generation: 0, publicKey: toHex(PUBLIC_KEY) },
      vouchers,
      trust,
    );
    expect(v.vouchedBy.map((x) => x.partyIndex)).toEqual([1, 2, 3]);
    db.close();
  });

  it("keeps only the current generation: a commit drops older copies and a stale copy is never answered", () => {
    const db = holder(0);
    keepCertificateStatements(db, SELF, W, 0, certificate(0));
    keepPeerStatements(db, SELF, W, [signed(2, 0), signed(3, 0)]);
    // A refresh commits generation 1 here; the certificate's copies replace the old ones,
    // named after the nodes last seen at those parties.
    setGeneration(db, 1);
    keepCertificateStatements(db, SELF, W, 1, certificate(1));
    const rows = listWalletStatements(db, W).filter((k) => k.nodeId !== SELF);
    expect(rows.map((k) => [k.nodeId, k.generation])).toEqual([
      ["node-2", 1],
      ["node-3", 1],
    ]);
    // A peer relaying a generation-0 statement (rolled back) is not kept.
    keepPeerStatements(db, SELF, W, [{ ...signed(3, 0), nodeId: "node-9" }]);
    expect(listWalletStatements(db, W).filter((k) => k.generation === 0)).toEqual([]);
    db.close();
  });

  it("does not replace a certificate's copy with different bytes a peer relays, and keeps nothing for a wallet it does not hold", () => {
    const db = holder(1);
    keepCertificateStatements(db, SELF, W, 1, certificate(1));
    const before = listWalletStatements(db, W).map((k) => toHex(k.statement));
    // Node-9's host claims party 3 with another (here: forged) statement of generation 1.
    const forged = signed(3, 1).statement.slice();
    forged[forged.length - 1]! ^= 1;
    keepPeerStatements(db, SELF, W, [
      { nodeId: "node-9", statement: forged, attestation: signed(3, 1).attestation },
    ]);
    expect(listWalletStatements(db, W).map((k) => toHex(k.statement))).toEqual(before);
    expect(listWalletStatements(db, W).some((k) => k.nodeId === "node-9")).toBe(false);
    db.close();

    const other = openDatabase({ path: ":memory:" });
    migrate(other);
    keepPeerStatements(other, "node-4", W, [signed(2, 1)]);
    keepCertificateStatements(other, "node-4", W, 1, certificate(1));
    expect(keptStatements(other, W)).toEqual([]);
    other.close();
  });

  it("a lying host serving the offline holder's statement of a rolled-back generation is refused", () => {
    // Node-3 is offline at generation 1; node-1's host, lying, serves node-3's genuine
    // generation-0 statement (kept from before the refresh) beside the current ones.
    const db = holder(1);
    const vouchers = parseVouchersUnverified(
      JSON.parse(
        JSON.stringify(
          walletVouchers([live(1, 1), live(2, 1)], [{ ...signed(3, 0), generation: 1 }]),
        ),
      ),
    );
    // walletVouchers itself answers no copy whose statement names another generation.
    expect(vouchers.map((v) => v.partyIndex)).toEqual([1, 2]);
    const stale = [...vouchers, signed(3, 0)];
    const e = refusal(() => verifyWallet({ walletId: W }, stale, trust));
    expect(e.node).toBe("node-3");
    expect(e.message).toMatch(/disagree.*generation 0/);
    db.close();
  });
});
