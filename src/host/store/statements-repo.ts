/**
 * Wallet statements (migration 6): what each holder's enclave signed at the
 * end of a DKG or refresh, relayed unchanged to clients, which verify it
 * (src/client/wallet-verification.ts). A statement is written when its share
 * is persisted; the one of the current generation is answered; a committed
 * refresh drops the older ones and a rolled-back one drops its own.
 *
 * Beside its own, a holder keeps its peers' statements of the current
 * generation under their node ids (src/host/wallet-vouchers.ts), so that any
 * node can answer all n while a holder is offline; they are as unverifiable by
 * the host and as unforgeable by it as its own.
 *
 * The attestation document beside each statement is stored once per document
 * (migration 8: attestation_documents, keyed by its SHA-256), because one
 * document serves every wallet its enclave vouched for while the host reused
 * it; a document goes when the last statement naming it does.
 */
import { createHash } from "node:crypto";
import { col, type Db, type SqlParams } from "./db.ts";
import { MAX_ATTESTATION_DOCUMENT_BYTES } from "../../shared/wire/node-rpc.ts";
import { MAX_SIGNED_WALLET_STATEMENT_BYTES } from "../../shared/wire/wallet-statement.ts";
import { checkBytes, checkGeneration, checkId, checkTimestamp } from "./validate.ts";

const digestOf = (document: Uint8Array) =>
  new Uint8Array(createHash("sha256").update(document).digest());

export function putWalletStatement(
  db: Db,
  s: StoredWalletStatement & { walletId: string; nodeId: string; generation: number },
  now: number = Date.now(),
): void {
  const p = {
    w: checkId(s.walletId, "wallet id"),
    n: checkId(s.nodeId, "node id"),
    g: checkGeneration(s.generation),
    s: checkBytes(s.statement, "wallet statement", 1, MAX_SIGNED_WALLET_STATEMENT_BYTES),
    now: checkTimestamp(now),
  };
  const document = checkBytes(
    s.attestation,
    "attestation document",
    1,
    MAX_ATTESTATION_DOCUMENT_BYTES,
  );
  const digest = digestOf(document);
  db.transaction(() => {
    const replaced = digestsOf(db, p.w, p.n, "=", p.g);
    db.run(
      "INSERT INTO attestation_documents (digest, document) VALUES (:digest, :document) ON CONFLICT (digest) DO NOTHING",
      { digest, document },
    );
    db.run(
      `INSERT INTO wallet_statements (wallet_id, node_id, generation, statement, attestation_digest, updated_at)
       VALUES (:w, :n, :g, :s, :digest, :now)
       ON CONFLICT (wallet_id, node_id, generation) DO UPDATE SET statement = :s, attestation_digest = :digest, updated_at = :now`,
      { ...p, digest },
    );
    dropUnnamedDocuments(db, replaced);
  });
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
    `SELECT s.statement, d.document AS attestation FROM wallet_statements s
       JOIN attestation_documents d ON d.digest = s.attestation_digest
      WHERE s.wallet_id = :w AND s.node_id = :n AND s.generation = :g`,
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

/** A stored statement with whose it is: this node's own, or a peer's it keeps (wallet-vouchers.ts). */
export interface HeldWalletStatement extends StoredWalletStatement {
  nodeId: string;
  generation: number;
}

/** Every node's stored statements of a wallet (at `generation` when given), oldest generation first. */
export function listWalletStatements(
  db: Db,
  walletId: string,
  generation?: number,
): HeldWalletStatement[] {
  const w = checkId(walletId, "wallet id");
  const p: SqlParams = generation === undefined ? { w } : { w, g: checkGeneration(generation) };
  return db
    .all(
      `SELECT s.node_id, s.generation, s.statement, d.document AS attestation FROM wallet_statements s
         JOIN attestation_documents d ON d.digest = s.attestation_digest
        WHERE s.wallet_id = :w${generation === undefined ? "" : " AND s.generation = :g"}
        ORDER BY s.generation, s.node_id`,
      p,
    )
    .map((r) => ({
      nodeId: col.str(r, "node_id"),
      generation: col.int(r, "generation"),
      statement: col.bytes(r, "statement"),
      attestation: col.bytes(r, "attestation"),
    }));
}

/** Files a node's statement of `generation` under another node id (a peer's copy, named once known). */
export function renameWalletStatement(
  db: Db,
  walletId: string,
  generation: number,
  fromNode: string,
  toNode: string,
): void {
  db.run(
    `UPDATE wallet_statements SET node_id = :to WHERE wallet_id = :w AND node_id = :from AND generation = :g
       AND NOT EXISTS (SELECT 1 FROM wallet_statements WHERE wallet_id = :w AND node_id = :to AND generation = :g)`,
    {
      w: checkId(walletId, "wallet id"),
      g: checkGeneration(generation),
      from: checkId(fromNode, "node id"),
      to: checkId(toNode, "node id"),
    },
  );
}

/** Digests of the documents a node's statements of a wallet name, for generations `than` `generation`. */
function digestsOf(
  db: Db,
  walletId: string,
  nodeId: string,
  than: "<" | ">" | "=",
  generation: number,
): Uint8Array[] {
  return db
    .all(
      `SELECT DISTINCT attestation_digest FROM wallet_statements WHERE wallet_id = :w AND node_id = :n AND generation ${than} :g`,
      { w: walletId, n: nodeId, g: generation },
    )
    .map((r) => col.bytes(r, "attestation_digest"));
}

/** Deletes those of `digests` that no statement names any more (wallet_statements_attestation keeps it a look-up). */
function dropUnnamedDocuments(db: Db, digests: readonly Uint8Array[]): void {
  for (const digest of digests)
    db.run(
      "DELETE FROM attestation_documents WHERE digest = :digest AND NOT EXISTS (SELECT 1 FROM wallet_statements WHERE attestation_digest = :digest)",
      { digest },
    );
}

/** Deletes a node's statements of a wallet older (`<`) or newer (`>`) than `generation`, and documents left unnamed. */
function dropWalletStatements(
  db: Db,
  walletId: string,
  nodeId: string,
  generation: number,
  than: "<" | ">",
): void {
  const p = {
    w: checkId(walletId, "wallet id"),
    n: checkId(nodeId, "node id"),
    g: checkGeneration(generation),
  };
  db.transaction(() => {
    const digests = digestsOf(db, p.w, p.n, than, p.g);
    db.run(
      `DELETE FROM wallet_statements WHERE wallet_id = :w AND node_id = :n AND generation ${than} :g`,
      p,
    );
    dropUnnamedDocuments(db, digests);
  });
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

/**
 * Deletes a wallet's statements (one node's, or every node's) and the documents no statement
 * names any more; returns how many statements went. For deleting a wallet's rows: a plain
 * DELETE would leave its documents behind.
 */
export function deleteWalletStatements(db: Db, walletId: string, nodeId?: string): number {
  const w = checkId(walletId, "wallet id");
  const n = nodeId === undefined ? null : checkId(nodeId, "node id");
  return db.transaction(() => {
    const where = n === null ? "wallet_id = :w" : "wallet_id = :w AND node_id = :n";
    const p: SqlParams = n === null ? { w } : { w, n };
    const digests = db
      .all(`SELECT DISTINCT attestation_digest FROM wallet_statements WHERE ${where}`, p)
      .map((r) => col.bytes(r, "attestation_digest"));
    const deleted = db.run(`DELETE FROM wallet_statements WHERE ${where}`, p);
    dropUnnamedDocuments(db, digests);
    return deleted;
  });
}
