/**
 * Schema migrations: an ordered list, applied together in one transaction and recorded in
 * `schema_migrations`. Re-running is a no-op; a database written by newer code is refused rather
 * than used with a schema this code does not understand.
 *
 * Migrations are append-only: never edit one that has shipped, add the next version instead.
 * Timestamps throughout the schema are Unix milliseconds (INTEGER). Tables are STRICT so a value
 * of the wrong type (e.g. TEXT into a BLOB column) is an error, not a silent conversion.
 */
import { MAX_POLICY_BYTES } from "../../shared/wire/approval.ts";
import {
  MAX_ATTESTATION_DOCUMENT_BYTES,
  MAX_PUBLIC_PACKAGE_BYTES,
} from "../../shared/wire/node-rpc.ts";
import { MAX_SIGNED_WALLET_STATEMENT_BYTES } from "../../shared/wire/wallet-statement.ts";
import { createHash } from "node:crypto";
import { chainExistingAuditRows } from "./audit.ts";
import { col, type Db } from "./db.ts";
import { StoreError } from "./errors.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Runs after `sql`, in the same transaction: for a step SQL cannot express (e.g. hashing rows). */
  after?: (db: Db) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "wallets, shares, ceremonies, audit log",
    sql: `
CREATE TABLE wallets (
  wallet_id TEXT PRIMARY KEY CHECK (length(wallet_id) BETWEEN 1 AND 256),
  threshold INTEGER NOT NULL CHECK (threshold >= 2),
  parties INTEGER NOT NULL CHECK (parties >= threshold AND parties <= 255),
  public_key BLOB NOT NULL CHECK (length(public_key) = 33),
  public_package BLOB NOT NULL,
  current_generation INTEGER NOT NULL CHECK (current_generation BETWEEN 0 AND 4294967295),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE shares (
  wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
  node_id TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 256),
  party_index INTEGER NOT NULL CHECK (party_index BETWEEN 1 AND 255),
  generation INTEGER NOT NULL CHECK (generation BETWEEN 0 AND 4294967295),
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired')),
  sealed_share BLOB NOT NULL,
  kms_ciphertext_blob BLOB NOT NULL,
  kms_key_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, node_id, generation),
  -- One party index belongs to one node per wallet generation.
  UNIQUE (wallet_id, party_index, generation)
) STRICT;
-- The invariant the signing path relies on: a node never has two usable shares of one wallet.
CREATE UNIQUE INDEX shares_one_active ON shares (wallet_id, node_id) WHERE status = 'active';

CREATE TABLE ceremonies (
  ceremony_id TEXT PRIMARY KEY CHECK (length(ceremony_id) = 64 AND ceremony_id NOT GLOB '*[^0-9a-f]*'),
  kind TEXT NOT NULL CHECK (kind IN ('dkg', 'sign', 'refresh')),
  wallet_id TEXT,
  coordinator TEXT NOT NULL,
  participants TEXT NOT NULL CHECK (json_valid(participants) AND json_type(participants) = 'array'),
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  error TEXT,
  request_id TEXT,
  result BLOB,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  -- NULL only for a DKG whose wallet id is not known until it succeeds; no foreign key for the same reason.
  CHECK (wallet_id IS NOT NULL OR kind = 'dkg'),
  CHECK ((finished_at IS NULL) = (status = 'running')),
  CHECK (error IS NULL OR status = 'failed'),
  CHECK (result IS NULL OR status = 'succeeded')
) STRICT;
CREATE UNIQUE INDEX ceremonies_request ON ceremonies (kind, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX ceremonies_running ON ceremonies (status) WHERE status = 'running';

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  event TEXT NOT NULL,
  wallet_id TEXT,
  ceremony_id TEXT,
  detail TEXT NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;
CREATE INDEX audit_log_wallet ON audit_log (wallet_id, id);
`,
  },
  {
    version: 2,
    name: "wallet chain code",
    // The host derives child public keys (signing with a path) from the group key and the BIP-32
    // chain code, without the wasm core. Existing rows are filled from the stored public package:
    // the core writes it as "DKP\x01" | postcard(package, chain code [32 bytes], generation varint),
    // and the stored package is always the DKG's, generation 0, a single 0x00 byte at the end, so
    // the chain code is the 32 bytes before that last byte. A package of another form stays NULL
    // and reading that wallet fails with a sentence (wallets-repo.ts) rather than derive wrong keys.
    sql: `
ALTER TABLE wallets ADD COLUMN chain_code BLOB CHECK (chain_code IS NULL OR length(chain_code) = 32);
UPDATE wallets SET chain_code = substr(public_package, length(public_package) - 32, 32)
  WHERE substr(public_package, 1, 4) = X'444B5001' AND length(public_package) >= 4 + 32 + 1 AND substr(public_package, -1, 1) = X'00';
`,
  },
  {
    version: 3,
    name: "audit log hash chain",
    // Each row commits to the one before it (audit.ts has the encoding). Rows already in the log
    // are chained now, in id order, from the genesis value; the guards come after that, since the
    // chaining itself updates rows. The triggers make the log append-only for the host's own
    // code; they are no defence against someone who can write the file (the chain is).
    sql: `
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB CHECK (prev_hash IS NULL OR length(prev_hash) = 32);
ALTER TABLE audit_log ADD COLUMN row_hash BLOB CHECK (row_hash IS NULL OR length(row_hash) = 32);
`,
    after: (db) => {
      chainExistingAuditRows(db);
      db.exec(`
-- Two rows committing to one predecessor would be a fork.
CREATE UNIQUE INDEX audit_log_prev ON audit_log (prev_hash);
CREATE TRIGGER audit_log_chained BEFORE INSERT ON audit_log
  WHEN NEW.prev_hash IS NULL OR NEW.row_hash IS NULL
  BEGIN SELECT RAISE(ABORT, 'audit_log rows are chained: append them with appendAudit'); END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
`);
    },
  },
  {
    version: 4,
    name: "wallet approval policy",
    // The wallet's approval policy encoding (src/shared/wire/approval.ts), stored as DKG received
    // it and handed back to the enclave on every LOAD_SHARE; the enclave seals its hash with the
    // share, so the host keeps it without being trusted with it. NULL: a wallet created before
    // approvals (its shares are sealed without a policy, and a production enclave refuses them).
    sql: `
ALTER TABLE wallets ADD COLUMN policy BLOB CHECK (policy IS NULL OR length(policy) BETWEEN 1 AND ${MAX_POLICY_BYTES});
`,
  },
  {
    version: 5,
    name: "request ids scoped to the client user, with a parameters hash",
    // A request id is unique per client user (the broker user of the request's Response
    // Topic), not per kind: the same id from another user is another request. params_hash is
    // SHA-256 of the request's parameters (planning.ts requestParamsHash), so the same id with
    // other parameters is refused with `conflict`. Rows from before this version keep
    // client_user '' and their old (kind, request_id) uniqueness; no new request has that user.
    sql: `
ALTER TABLE ceremonies ADD COLUMN client_user TEXT NOT NULL DEFAULT '';
ALTER TABLE ceremonies ADD COLUMN params_hash BLOB CHECK (params_hash IS NULL OR length(params_hash) = 32);
DROP INDEX ceremonies_request;
CREATE UNIQUE INDEX ceremonies_request_legacy ON ceremonies (kind, request_id) WHERE request_id IS NOT NULL AND client_user = '';
CREATE UNIQUE INDEX ceremonies_client_request ON ceremonies (client_user, request_id) WHERE request_id IS NOT NULL AND client_user <> '';
`,
  },
  {
    version: 6,
    name: "wallet statements",
    // The enclave-signed wallet statement (src/shared/wire/wallet-statement.ts) per holder and
    // generation, as its enclave returned it at the end of DKG or refresh; a committed refresh
    // deletes the older generations', so the latest is kept. Beside it, the attestation document
    // (of the same enclave boot) whose user_data binds the channel key that signed it: channel
    // keys are per boot, so a later document could not vouch for it. The host only relays both:
    // clients verify it against the holder's attestation document, so a row the host alters
    // fails there rather than deceiving anyone.
    sql: `
CREATE TABLE wallet_statements (
  wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
  node_id TEXT NOT NULL,
  generation INTEGER NOT NULL CHECK (generation >= 0),
  statement BLOB NOT NULL CHECK (length(statement) BETWEEN 1 AND ${MAX_SIGNED_WALLET_STATEMENT_BYTES}),
  attestation BLOB NOT NULL CHECK (length(attestation) BETWEEN 1 AND ${MAX_ATTESTATION_DOCUMENT_BYTES}),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, node_id, generation)
) STRICT;
`,
  },
  {
    version: 7,
    name: "refresh sessions and outcomes",
    // A pending share names the refresh session that produced it, so a rollback removes only its
    // own session's rows; refresh_outcomes keeps each holder's final word on a session
    // (committed, or rolled back, which also fences a persist that arrives later), so a holder
    // left pending by a dead coordinator can ask its peers what became of it (node-host.ts).
    sql: `
ALTER TABLE shares ADD COLUMN session_id TEXT CHECK (session_id IS NULL OR (length(session_id) = 64 AND session_id NOT GLOB '*[^0-9a-f]*'));
CREATE TABLE refresh_outcomes (
  wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
  node_id TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 256),
  session_id TEXT NOT NULL CHECK (length(session_id) = 64 AND session_id NOT GLOB '*[^0-9a-f]*'),
  generation INTEGER NOT NULL CHECK (generation BETWEEN 0 AND 4294967295),
  outcome TEXT NOT NULL CHECK (outcome IN ('committed', 'rolled_back')),
  decided_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, node_id, session_id)
) STRICT;
`,
  },
  {
    version: 8,
    name: "attestation documents stored once; pending shares indexed",
    // A holder's statement row kept a whole attestation document (~5 KB; its certificate chain
    // is most of it), and the host reuses one document for a minute and its enclave for a whole
    // boot, so every wallet created meanwhile stored the same bytes again. Documents now live
    // once in attestation_documents under their SHA-256; a statement names its document by that
    // digest (statements-repo.ts drops a document when no statement names it any more).
    // wallet_statements is rebuilt for it (SQLite cannot drop a NOT NULL column); `after` moves
    // the rows, hashing each document. shares_pending lets the start-up settlement of pending
    // shares (pendingShares) find them without scanning every share row of the node.
    sql: `
CREATE TABLE attestation_documents (
  digest BLOB PRIMARY KEY CHECK (length(digest) = 32),
  document BLOB NOT NULL CHECK (length(document) BETWEEN 1 AND ${MAX_ATTESTATION_DOCUMENT_BYTES})
) STRICT;
CREATE TABLE wallet_statements_v8 (
  wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
  node_id TEXT NOT NULL,
  generation INTEGER NOT NULL CHECK (generation >= 0),
  statement BLOB NOT NULL CHECK (length(statement) BETWEEN 1 AND ${MAX_SIGNED_WALLET_STATEMENT_BYTES}),
  attestation_digest BLOB NOT NULL REFERENCES attestation_documents (digest),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, node_id, generation)
) STRICT;
CREATE INDEX shares_pending ON shares (node_id, created_at) WHERE status = 'pending';
`,
    after: (db) => {
      moveStatementDocuments(db);
      db.exec(`
DROP TABLE wallet_statements;
ALTER TABLE wallet_statements_v8 RENAME TO wallet_statements;
CREATE INDEX wallet_statements_attestation ON wallet_statements (attestation_digest);
`);
    },
  },
  {
    version: 9,
    name: "share rows name the policy they are sealed with",
    // A policy change is a refresh whose new shares are sealed with the new policy: until it
    // commits, a holder's current share opens only with the old policy and its pending one only
    // with the new, so each row carries its own (NULL: the wallet's, as created).
    sql: `
ALTER TABLE shares ADD COLUMN policy BLOB CHECK (policy IS NULL OR length(policy) BETWEEN 1 AND ${MAX_POLICY_BYTES});
`,
  },
  {
    version: 10,
    name: "sign outcomes kept by every participant",
    // Every signer obtains the signature at phase 4; each keeps the answer under the client's
    // request, so a resubmission after its coordinator died gets the signature reached
    // (sign-outcomes-repo.ts). One row per (client user, request id): the first signature stays.
    sql: `
CREATE TABLE sign_outcomes (
  client_user TEXT NOT NULL CHECK (length(client_user) BETWEEN 1 AND 256),
  request_id TEXT NOT NULL CHECK (length(request_id) BETWEEN 1 AND 256),
  params_hash BLOB NOT NULL CHECK (length(params_hash) = 32),
  ceremony_id TEXT NOT NULL CHECK (length(ceremony_id) = 64),
  result BLOB NOT NULL CHECK (length(result) BETWEEN 1 AND 65536),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (client_user, request_id)
) STRICT;
`,
  },
  {
    version: 11,
    name: "wallet membership: who holds each party index",
    // A share repair (share-repair.ts) moves party K of a wallet to another node: each holder of
    // its refresh records its own index, and a node told its share was replaced records who holds
    // its old index, and from then on refuses that wallet (members-repo.ts replacedBy).
    sql: `
CREATE TABLE wallet_members (
  wallet_id TEXT NOT NULL CHECK (length(wallet_id) BETWEEN 1 AND 256),
  party_index INTEGER NOT NULL CHECK (party_index BETWEEN 1 AND 255),
  node_id TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 256),
  generation INTEGER NOT NULL CHECK (generation BETWEEN 0 AND 4294967295),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, party_index)
) STRICT;
`,
  },
  {
    version: 12,
    name: "commit proofs: the seal receipts a holder activated with",
    // A holder settling from its peers follows a "committed" only with the receipts that commit's
    // enclave activated with, which its own enclave checks (src/shared/wire/commit-proof.ts).
    sql: `
ALTER TABLE refresh_outcomes ADD COLUMN proof BLOB CHECK (proof IS NULL OR length(proof) BETWEEN 2 AND 131072);
`,
  },
  {
    version: 13,
    name: "pending shapes: a pending share's own enclave's t, n, package and committee",
    // A reshare changes t, n and the committee: a holder settles and commits its pending share
    // against what its own enclave finished with, kept with the pending row (pending-shapes-repo.ts),
    // never against the coordinator's word or the wallet row's old size.
    sql: `
CREATE TABLE pending_shapes (
  wallet_id TEXT NOT NULL CHECK (length(wallet_id) BETWEEN 1 AND 256),
  node_id TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 256),
  session_id TEXT NOT NULL CHECK (length(session_id) = 64 AND session_id NOT GLOB '*[^0-9a-f]*'),
  threshold INTEGER NOT NULL CHECK (threshold >= 2),
  parties INTEGER NOT NULL CHECK (parties >= threshold AND parties <= 255),
  public_package BLOB NOT NULL CHECK (length(public_package) BETWEEN 1 AND ${MAX_PUBLIC_PACKAGE_BYTES}),
  committee TEXT CHECK (committee IS NULL OR length(committee) BETWEEN 1 AND 8192),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (wallet_id, node_id, session_id)
) STRICT;
`,
  },
];

/** Migration 8: each statement row's document into attestation_documents, a page of rows at a time. */
function moveStatementDocuments(db: Db): void {
  const PAGE = 512;
  for (let after = -1; ; ) {
    const rows = db.all(
      `SELECT rowid AS id, wallet_id, node_id, generation, statement, attestation, updated_at
         FROM wallet_statements WHERE rowid > :after ORDER BY rowid LIMIT ${PAGE}`,
      { after },
    );
    for (const r of rows) {
      const document = col.bytes(r, "attestation");
      const digest = new Uint8Array(createHash("sha256").update(document).digest());
      db.run(
        "INSERT INTO attestation_documents (digest, document) VALUES (:digest, :document) ON CONFLICT (digest) DO NOTHING",
        { digest, document },
      );
      db.run(
        `INSERT INTO wallet_statements_v8 (wallet_id, node_id, generation, statement, attestation_digest, updated_at)
         VALUES (:w, :n, :g, :s, :digest, :at)`,
        {
          w: col.str(r, "wallet_id"),
          n: col.str(r, "node_id"),
          g: col.int(r, "generation"),
          s: col.bytes(r, "statement"),
          digest,
          at: col.int(r, "updated_at"),
        },
      );
    }
    if (rows.length < PAGE) return;
    after = col.int(rows.at(-1)!, "id");
  }
}

export interface MigrationResult {
  from: number;
  to: number;
  applied: number[];
}

/** The highest schema version this code knows. */
export function latestVersion(migrations: readonly Migration[] = MIGRATIONS): number {
  return migrations.at(-1)?.version ?? 0;
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StoreError(
        "schema",
        `migration list is out of order: entry ${i} has version ${m.version}, expected ${i + 1}`,
      );
  });
}

/** Versions recorded in the database, ascending; 0 applied if the table does not exist yet. */
function appliedVersions(db: Db): number[] {
  const table = db.get(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
  );
  if (!table) return [];
  return db.all("SELECT version FROM schema_migrations ORDER BY version").map((r) => {
    const v = r.version;
    if (typeof v !== "number" || !Number.isSafeInteger(v))
      throw new StoreError("schema", "schema_migrations holds a non-integer version");
    return v;
  });
}

/**
 * Brings the database up to the newest known version. Refuses a database that is ahead of this
 * code or whose recorded history has gaps. Everything happens in one transaction: either every
 * pending migration is applied or none.
 */
export function migrate(
  db: Db,
  migrations: readonly Migration[] = MIGRATIONS,
  now: () => number = Date.now,
): MigrationResult {
  checkOrder(migrations);
  const latest = latestVersion(migrations);
  return db.transaction(() => {
    const done = appliedVersions(db);
    const current = done.at(-1) ?? 0;
    if (current > latest) {
      throw new StoreError(
        "schema",
        `database schema version ${current} is newer than this code knows (${latest}); upgrade the host before opening it`,
      );
    }
    done.forEach((v, i) => {
      if (v !== i + 1)
        throw new StoreError(
          "schema",
          `schema_migrations is inconsistent: expected version ${i + 1}, found ${v}`,
        );
    });
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
    );
    const applied: number[] = [];
    for (const m of migrations.slice(current)) {
      db.exec(m.sql);
      m.after?.(db);
      db.run(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :at)",
        { version: m.version, name: m.name, at: now() },
      );
      applied.push(m.version);
    }
    return { from: current, to: latest, applied };
  });
}

/** The version recorded in the database (0 for an empty one). */
export function schemaVersion(db: Db): number {
  return appliedVersions(db).at(-1) ?? 0;
}
