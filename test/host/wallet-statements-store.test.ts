/**
 * Migration 6 (src/host/store/migrations.ts) and statements-repo.ts: each
 * holder's signed wallet statement and attestation document are kept per
 * generation, read back byte for byte, the older ones dropped once a
 * refresh commits and the uncommitted one dropped on rollback; the schema
 * bounds both blobs.
 */
import { describe, expect, it } from "vitest";
import {
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

function store() {
  const db = openDatabase({ path: ":memory:" });
  expect(migrate(db).applied).toContain(6);
  insertWallet(db, {
    walletId: W,
    threshold: 2,
    parties: 3,
    publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(0x11)),
    publicPackage: Uint8Array.of(1, 2, 3),
    chainCode: new Uint8Array(32).fill(0x22),
  });
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
});
