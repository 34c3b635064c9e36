/**
 * Migration 6 (src/host/store/migrations.ts) and statements-repo.ts: each
 * holder's signed wallet statement and attestation document are kept per
 * generation, read back byte for byte, the older ones dropped once a
 * refresh commits and the uncommitted one dropped on rollback; the schema
 * bounds both blobs. Migration 8: a document is stored once however many
 * statements name it, goes with the last of them, and a version-7 database's
 * statements move over unchanged.
 */
import { describe, expect, it } from "vitest";
import {
  MIGRATIONS,
  deleteWalletStatements,
  dropWalletStatementsAfter,
  dropWalletStatementsBefore,
  getWalletStatement,
  insertWallet,
  migrate,
  openDatabase,
  putWalletStatement,
} from "../../src/host/store/index.ts";
import { toHex } from "../../src/shared/hex.ts";
import { MAX_ATTESTATION_DOCUMENT_BYTES } from "../../src/shared/wire/node-rpc.ts";
import { MAX_SIGNED_WALLET_STATEMENT_BYTES } from "../../src/shared/wire/wallet-statement.ts";

const W = "w-statements";
const N = "node-1";
const row = (generation: number, fill: number) => ({
  walletId: W,
  nodeId: N,
  generation,
  statement: new Uint8Array(200).fill(fill),
  attestation: new Uint8Array(300).fill(fill + 1),
});

const walletRow = (walletId: string) => ({
  walletId,
  threshold: 2,
  parties: 3,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(0x11)),
  publicPackage: Uint8Array.of(1, 2, 3),
  chainCode: new Uint8Array(32).fill(0x22),
});

function store() {
  const db = openDatabase({ path: ":memory:" });
  expect(migrate(db).applied).toContain(6);
  insertWallet(db, walletRow(W));
  return db;
}

describe("wallet statements in the store (migration 6)", () => {
  it("keeps one statement per holder and generation and reads it back", () => {
    const db = store();
    putWalletStatement(db, row(0, 1));
    const got = getWalletStatement(db, W, N, 0)!;
    expect(toHex(got.statement)).toBe(toHex(row(0, 1).statement));
    expect(toHex(got.attestation)).toBe(toHex(row(0, 1).attestation));
    expect(getWalletStatement(db, W, N, 1)).toBeNull();
    expect(getWalletStatement(db, W, "node-2", 0)).toBeNull();
    // The same generation again (a retried persist) replaces it.
    putWalletStatement(db, row(0, 5));
    expect(getWalletStatement(db, W, N, 0)!.statement[0]).toBe(5);
    db.close();
  });

  it("keeps only the committed generation after a refresh, and drops an uncommitted one", () => {
    const db = store();
    putWalletStatement(db, row(0, 1));
    putWalletStatement(db, row(1, 3));
    dropWalletStatementsAfter(db, W, N, 0);
    expect(getWalletStatement(db, W, N, 1)).toBeNull();
    expect(getWalletStatement(db, W, N, 0)).not.toBeNull();
    putWalletStatement(db, row(1, 3));
    dropWalletStatementsBefore(db, W, N, 1);
    expect(getWalletStatement(db, W, N, 0)).toBeNull();
    expect(getWalletStatement(db, W, N, 1)!.statement[0]).toBe(3);
    db.close();
  });

  it("bounds the statement and the document, and refuses a statement for an unknown wallet", () => {
    const db = store();
    expect(() =>
      putWalletStatement(db, {
        ...row(0, 1),
        statement: new Uint8Array(MAX_SIGNED_WALLET_STATEMENT_BYTES + 1),
      }),
    ).toThrow();
    expect(() =>
      putWalletStatement(db, {
        ...row(0, 1),
        attestation: new Uint8Array(MAX_ATTESTATION_DOCUMENT_BYTES + 1),
      }),
    ).toThrow();
    expect(() => putWalletStatement(db, { ...row(0, 1), statement: new Uint8Array() })).toThrow();
    expect(() => putWalletStatement(db, { ...row(0, 1), walletId: "w-none" })).toThrow();
    db.close();
  });

  it("stores a document once for every statement that names it, and drops it with the last", () => {
    const db = store();
    const wallets = ["w-a", "w-b", "w-c"];
    for (const walletId of wallets) {
      insertWallet(db, walletRow(walletId));
      putWalletStatement(db, { ...row(0, 1), walletId });
    }
    const documents = () => db.get("SELECT count(*) AS n FROM attestation_documents")!.n;
    expect(documents()).toBe(1);
    for (const walletId of wallets)
      expect(toHex(getWalletStatement(db, walletId, N, 0)!.attestation)).toBe(
        toHex(row(0, 1).attestation),
      );
    // A refresh of one wallet under another document: both kept while both are named.
    putWalletStatement(db, { ...row(1, 7), walletId: "w-a" });
    expect(documents()).toBe(2);
    dropWalletStatementsBefore(db, "w-a", N, 1);
    expect(documents()).toBe(2);
    dropWalletStatementsAfter(db, "w-a", N, 0);
    expect(documents()).toBe(1);
    // Replacing a statement's document drops the old one once nothing names it.
    putWalletStatement(db, { ...row(0, 9), walletId: "w-b" });
    putWalletStatement(db, { ...row(0, 9), walletId: "w-c" });
    expect(documents()).toBe(1);
    expect(getWalletStatement(db, "w-c", N, 0)!.attestation[0]).toBe(10);
    // Deleting wallets' statements takes their documents along once unnamed.
    expect(deleteWalletStatements(db, "w-b", N)).toBe(1);
    expect(documents()).toBe(1);
    expect(deleteWalletStatements(db, "w-c")).toBe(1);
    expect(documents()).toBe(0);
    db.close();
  });

  it("moves a version-7 database's statements into the shared documents unchanged", () => {
    const db = openDatabase({ path: ":memory:" });
    migrate(db, MIGRATIONS.slice(0, 7));
    const now = 1_700_000_000_000;
    for (const walletId of ["w-1", "w-2"]) {
      db.run(
        "INSERT INTO wallets (wallet_id, threshold, parties, public_key, public_package, chain_code, current_generation, created_at, updated_at) VALUES (:w, 2, 3, :pk, X'01', :cc, 0, :now, :now)",
        { w: walletId, pk: walletRow(walletId).publicKey, cc: walletRow(walletId).chainCode, now },
      );
      for (const [node, fill] of [
        ["node-1", 1],
        ["node-2", 4],
      ] as const)
        db.run(
          "INSERT INTO wallet_statements (wallet_id, node_id, generation, statement, attestation, updated_at) VALUES (:w, :n, 0, :s, :a, :now)",
          {
            w: walletId,
            n: node,
            s: new Uint8Array(200).fill(fill),
            a: new Uint8Array(300).fill(fill + 1),
            now,
          },
        );
    }
    expect(migrate(db).applied).toContain(8);
    expect(db.get("SELECT count(*) AS n FROM attestation_documents")!.n).toBe(2);
    for (const walletId of ["w-1", "w-2"]) {
      const got = getWalletStatement(db, walletId, "node-2", 0)!;
      expect(toHex(got.statement)).toBe(toHex(new Uint8Array(200).fill(4)));
      expect(toHex(got.attestation)).toBe(toHex(new Uint8Array(300).fill(5)));
    }
    db.close();
  });
});
