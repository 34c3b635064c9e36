/**
 * Wallet statements (migration 6): what each holder's enclave signed at the
 * end of a DKG or refresh, relayed unchanged to clients, which verify it
 * (src/client/wallet-verification.ts). A statement is written when its share
 * is persisted; the one of the current generation is answered; a committed
 * refresh drops the older ones and a rolled-back one drops its own.
 */
import { col, type Db } from "./db.ts";
import { MAX_ATTESTATION_DOCUMENT_BYTES } from "../../shared/wire/node-rpc.ts";
import { MAX_SIGNED_WALLET_STATEMENT_BYTES } from "../../shared/wire/wallet-statement.ts";
import { checkBytes, checkGeneration, checkId, checkTimestamp } from "./validate.ts";

export function putWalletStatement(
  db: Db,
  s: StoredWalletStatement & { walletId: string; nodeId: string; generation: number },
  now: number = Date.now(),
): void {
  db.run(
    `INSERT INTO wallet_statements (wallet_id, node_id, generation, statement, attestation, updated_at)
     VALUES (:w, :n, :g, :s, :a, :now)
     ON CONFLICT (wallet_id, node_id, generation) DO UPDATE SET statement = :s, attestation = :a, updated_at = :now`,
    {
      w: checkId(s.walletId, "wallet id"),
      n: checkId(s.nodeId, "node id"),
      g: checkGeneration(s.generation),
      s: checkBytes(s.statement, "wallet statement", 1, MAX_SIGNED_WALLET_STATEMENT_BYTES),
      a: checkBytes(s.attestation, "attestation document", 1, MAX_ATTESTATION_DOCUMENT_BYTES),
      now: checkTimestamp(now),
    },
  );
}

/** A holder's signed statement and the attestation document binding the key that signed it. */
export interface StoredWalletStatement {
  statement: Uint8Array;
  attestation: Uint8Array;
}

/** The holder's signed statement for `generation`, or null (a wallet from before migration 6). */
export function getWalletStatement(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
): StoredWalletStatement | null {
  const r = db.get(
    "SELECT statement, attestation FROM wallet_statements WHERE wallet_id = :w AND node_id = :n AND generation = :g",
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      g: checkGeneration(generation),
    },
  );
  return r
    ? { statement: col.bytes(r, "statement"), attestation: col.bytes(r, "attestation") }
    : null;
}

/** Deletes a node's statements of a wallet older (`<`) or newer (`>`) than `generation`. */
function dropWalletStatements(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
  than: "<" | ">",
): void {
  db.run(
    `DELETE FROM wallet_statements WHERE wallet_id = :w AND node_id = :n AND generation ${than} :g`,
    {
      w: checkId(walletId, "wallet id"),
      n: checkId(nodeId, "node id"),
      g: checkGeneration(generation),
    },
  );
}

/** After a commit at `generation`: only that generation's statement stays. */
export function dropWalletStatementsBefore(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
): void {
  dropWalletStatements(db, walletId, nodeId, generation, "<");
}

/** After a rollback: the statements newer than the current generation were never committed. */
export function dropWalletStatementsAfter(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
): void {
  dropWalletStatements(db, walletId, nodeId, generation, ">");
}
