/**
 * The host's database connection: an embedded libSQL file by default, or a libSQL server (sqld /
 * Turso) by URL.
 *
 * Every query goes through `Db`, never the raw driver, because libsql 0.5.29 is unforgiving:
 * under Bun a boolean parameter, or a single Uint8Array passed positionally, aborts the whole
 * process (a Rust panic), and a missing or `undefined` named parameter is silently bound as NULL.
 * `Db` therefore takes named parameters only, checks that they match the statement's
 * `:name` placeholders exactly, and accepts only strings, safe integers, byte arrays and null.
 *
 * Embedded files get WAL (readers do not block the writer), foreign keys, synchronous=FULL (a
 * committed refresh deletes the old share, so a commit must survive power loss) and
 * secure_delete (deleted sealed shares and KMS blobs are overwritten, not left in free pages).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "libsql";
import { StoreError } from "./errors.ts";

export type SqlValue = string | number | Uint8Array | null;
export type SqlParams = Readonly<Record<string, SqlValue>>;
/** A result row; read columns by name and check their types (see `col`). */
export type Row = Readonly<Record<string, unknown>>;

export type DbLocation =
  /** Embedded database file (created if absent; its directory must exist). */
  | { path: string }
  /**
   * A libSQL server: `libsql://host` or `https://host` (TLS), or `http://` to a loopback address
   * only, since the auth token would otherwise cross the network in clear. Server-side settings
   * (journal mode, foreign keys, durability) are the server's; the repositories check existence
   * explicitly instead of relying on foreign keys. Not tested here: no sqld on the build machine.
   */
  | { url: string; authToken?: string };

export interface OpenOptions {
  /** How long a writer waits for another connection's lock before failing (files only). */
  busyTimeoutMs?: number;
}

/**
 * The busy timeout a running host writes with, once its schema is migrated (main.ts), instead of
 * the 5 s it opens with. The driver is synchronous, so a write that waits for a lock stalls the
 * whole host (every request, every peer's call) for as long as it waits. Every write here is a
 * short transaction on the host's own file (a few rows; one WAL fsync with synchronous=FULL,
 * milliseconds even with a sealed share of hundreds of kilobytes), and nothing else writes to
 * that file in normal operation: WAL readers and backups never block a writer, and the host's
 * health probe takes the lock for microseconds. A wait longer than a few such commits therefore
 * means another process holds the lock (an operator's shell, a stuck tool): the failure a
 * longer wait does not cure. 250 ms absorbs dozens of competing commits while bounding each
 * failed write's stall to 1/80 of the shortest phase deadline used here (20 s), where 5 s made
 * every request on the node wait 5 s per write; the node withdraws itself meanwhile
 * (database-health.ts).
 */
export const RUNNING_BUSY_TIMEOUT_MS = 250;

/**
 * Whether an error is the database failing (locked, I/O, full, read-only, corrupt, gone), as
 * opposed to a statement being refused (a constraint, a StoreError): what withdraws the node.
 */
export function isDatabaseFailure(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    typeof code === "string" &&
    /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL)/.test(code)
  );
}

const REMOTE_PROTOCOLS = new Set(["libsql:", "https:", "http:"]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const PARAM_NAME = /[:@$]([A-Za-z_][A-Za-z0-9_]*)/g;

type Statement = ReturnType<Database.Database["prepare"]>;

interface Prepared {
  stmt: Statement;
  names: ReadonlySet<string>;
}

/**
 * Interprets a configuration string: a `libsql:`, `https:` or `http:` URL means a server,
 * anything else is a file path.
 */
export function parseDbLocation(value: string, authToken?: string): DbLocation {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value))
    return authToken === undefined ? { url: value } : { url: value, authToken };
  if (authToken !== undefined)
    throw new StoreError(
      "invalid",
      "an auth token was given for a database file path; tokens apply to libsql:// or https:// URLs only",
    );
  return { path: value };
}

export function openDatabase(location: DbLocation, options: OpenOptions = {}): Db {
  return "url" in location ? openRemote(location) : openFile(location.path, options);
}

function openFile(path: string, options: OpenOptions): Db {
  if (typeof path !== "string" || path.length === 0)
    throw new StoreError("invalid", "database path must be a non-empty string");
  let raw: Database.Database;
  try {
    raw = new Database(path);
  } catch (e) {
    throw new StoreError("invalid", `cannot open database file ${path}: ${(e as Error).message}`);
  }
  const db = new Db(raw, "file");
  try {
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(busy) || busy < 0)
      throw new StoreError("invalid", "busyTimeoutMs must be a non-negative integer");
    db.exec(`PRAGMA busy_timeout = ${busy}`);
    const mode = db.get("PRAGMA journal_mode = WAL")?.journal_mode;
    if (mode !== "wal" && path !== ":memory:")
      throw new StoreError(
        "invalid",
        `database ${path} refused WAL mode (journal_mode is ${String(mode)})`,
      );
    db.exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;");
    if (db.get("PRAGMA foreign_keys")?.foreign_keys !== 1)
      throw new StoreError("invalid", "this libSQL build cannot enforce foreign keys");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * A second connection that asks only whether this node could write now: for a file, it takes the
 * write lock and lets it go at once (BEGIN IMMEDIATE; ROLLBACK) without waiting for it (busy
 * timeout 0), so a locked file fails the probe at once instead of stalling the host; for a
 * server, a round trip. Throws what the database answered.
 */
export function openWriteProbe(location: DbLocation): { probe(): void; close(): void } {
  const conn = openDatabase(location, { busyTimeoutMs: 0 });
  return {
    probe() {
      if (conn.kind === "remote") {
        conn.get("SELECT 1 AS one");
        return;
      }
      conn.exec("BEGIN IMMEDIATE");
      conn.exec("ROLLBACK");
    },
    close: () => conn.close(),
  };
}

/**
 * Opens an embedded database file read-only (an operator's tool beside a running host): a
 * `file:` URI with mode=ro, so no statement or pragma can change it and a missing file is an
 * error, not a new database. (SQLite may still create the WAL's -shm/-wal files beside it.)
 */
export function openReadOnlyFile(path: string): Db {
  if (typeof path !== "string" || path.length === 0)
    throw new StoreError("invalid", "database path must be a non-empty string");
  const uri = `${pathToFileURL(resolve(path)).href}?mode=ro`;
  try {
    return new Db(new Database(uri), "file");
  } catch (e) {
    throw new StoreError(
      "invalid",
      `cannot open database file ${path} read-only: ${(e as Error).message}`,
    );
  }
}

function openRemote(location: { url: string; authToken?: string }): Db {
  let url: URL;
  try {
    url = new URL(location.url);
  } catch {
    throw new StoreError("invalid", "database URL is not a valid URL");
  }
  if (!REMOTE_PROTOCOLS.has(url.protocol))
    throw new StoreError(
      "invalid",
      `database URL scheme ${url.protocol} is not supported; use libsql:, https: or (loopback only) http:`,
    );
  if (url.protocol === "http:" && !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new StoreError(
      "invalid",
      `refusing plain http:// to ${url.hostname}: the auth token would travel in clear; use libsql:// or https://`,
    );
  }
  if (url.username || url.password)
    throw new StoreError("invalid", "put the database auth token in authToken, not in the URL");
  try {
    // The driver's typings predate its authToken option.
    return new Db(
      new Database(location.url, { authToken: location.authToken ?? "" } as Database.Options),
      "remote",
    );
  } catch (e) {
    // The message may echo the URL but never the token, which is not part of it.
    throw new StoreError(
      "invalid",
      `cannot connect to database server ${url.origin}: ${(e as Error).message}`,
    );
  }
}

/** A connection with checked named parameters and nestable transactions. Not thread-safe. */
export class Db {
  private readonly statements = new Map<string, Prepared>();
  private depth = 0;

  /** Told of every write that failed because the database did (isDatabaseFailure); database-health.ts. */
  onWriteFailure: ((e: unknown) => void) | null = null;

  /** @internal use openDatabase */
  constructor(
    private readonly raw: Database.Database,
    readonly kind: "file" | "remote",
  ) {}

  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params: SqlParams = {}): number {
    try {
      return this.prepared(sql, params).run(params).changes;
    } catch (e) {
      this.writeFailed(e);
      throw e;
    }
  }

  /** Sets how long a write waits for another connection's lock (files; a server decides its own). */
  setBusyTimeout(ms: number): void {
    if (!Number.isSafeInteger(ms) || ms < 0)
      throw new StoreError("invalid", "busy timeout must be a non-negative integer");
    if (this.kind === "file") this.exec(`PRAGMA busy_timeout = ${ms}`);
  }

  private writeFailed(e: unknown): void {
    if (!this.onWriteFailure || !isDatabaseFailure(e)) return;
    try {
      this.onWriteFailure(e);
    } catch {
      /* a listener's failure must not replace the write's error */
    }
  }

  get(sql: string, params: SqlParams = {}): Row | undefined {
    return this.prepared(sql, params).get(params) as Row | undefined;
  }

  all(sql: string, params: SqlParams = {}): Row[] {
    return this.prepared(sql, params).all(params) as Row[];
  }

  /** Executes parameterless SQL, possibly several statements. */
  exec(sql: string): void {
    this.raw.exec(sql);
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  /**
   * Runs `fn` atomically. The outermost call takes the write lock up front (BEGIN IMMEDIATE) so
   * two hosts on one file serialise instead of failing at their first write; nested calls use
   * savepoints, so repository functions compose. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T {
    const outer = this.depth === 0;
    const savepoint = `sp${this.depth}`;
    try {
      this.exec(outer ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    } catch (e) {
      this.writeFailed(e);
      throw e;
    }
    this.depth++;
    let result: T;
    try {
      result = fn();
      if (typeof (result as { then?: unknown } | null)?.then === "function") {
        throw new StoreError(
          "invalid",
          "transaction callbacks must be synchronous; an awaited step would run outside the transaction",
        );
      }
    } catch (e) {
      this.depth--;
      this.rollback(outer, savepoint);
      throw e;
    }
    this.depth--;
    try {
      this.exec(outer ? "COMMIT" : `RELEASE ${savepoint}`);
    } catch (e) {
      this.rollback(outer, savepoint);
      this.writeFailed(e);
      throw e;
    }
    return result;
  }

  /**
   * Runs `fn` without waiting for another process's lock (busy timeout 0 for its duration, files
   * only): for a best-effort write on a latency-critical path, which must fail at once rather
   * than block the whole host (the driver is synchronous) for the busy timeout.
   */
  withoutWaiting<T>(fn: () => T): T {
    if (this.kind !== "file" || this.depth > 0) return fn();
    const before = Number(this.get("PRAGMA busy_timeout")?.timeout ?? 0);
    this.exec("PRAGMA busy_timeout = 0");
    try {
      return fn();
    } finally {
      this.exec(
        `PRAGMA busy_timeout = ${Number.isSafeInteger(before) && before >= 0 ? before : 0}`,
      );
    }
  }

  /** Moves the WAL into the main file and truncates it (files only). Returns false if readers blocked it. */
  checkpoint(): boolean {
    if (this.kind !== "file") return true;
    return this.get("PRAGMA wal_checkpoint(TRUNCATE)")?.busy === 0;
  }

  close(): void {
    if (this.raw.open) this.raw.close();
    this.statements.clear();
  }

  private rollback(outer: boolean, savepoint: string): void {
    // SQLite may already have rolled back on its own (e.g. disk full); the original error matters more.
    try {
      if (outer) {
        if (this.raw.inTransaction) this.exec("ROLLBACK");
      } else {
        this.exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      }
    } catch {
      /* keep the original error */
    }
  }

  private prepared(sql: string, params: SqlParams): Statement {
    let p = this.statements.get(sql);
    if (!p) {
      p = {
        stmt: this.raw.prepare(sql),
        names: new Set([...sql.matchAll(PARAM_NAME)].map((m) => m[1]!)),
      };
      this.statements.set(sql, p);
    }
    checkParams(p.names, params);
    return p.stmt;
  }
}

function checkParams(names: ReadonlySet<string>, params: SqlParams): void {
  const keys = Object.keys(params);
  for (const k of keys) {
    if (!names.has(k))
      throw new StoreError("invalid", `SQL parameter :${k} is not used by the statement`);
    const v = params[k];
    const ok =
      v === null ||
      typeof v === "string" ||
      v instanceof Uint8Array ||
      (typeof v === "number" && Number.isSafeInteger(v));
    if (!ok)
      throw new StoreError(
        "invalid",
        `SQL parameter :${k} must be a string, a safe integer, bytes or null`,
      );
  }
  if (keys.length !== names.size) {
    const missing = [...names].filter((n) => !(n in params));
    throw new StoreError(
      "invalid",
      `SQL parameter(s) ${missing.map((n) => `:${n}`).join(", ")} missing`,
    );
  }
}

/** Typed column readers: a row from the database is still checked before it is trusted. */
export const col = {
  str(row: Row, name: string): string {
    const v = row[name];
    if (typeof v !== "string") throw new StoreError("schema", `column ${name} is not TEXT`);
    return v;
  },
  strOrNull(row: Row, name: string): string | null {
    const v = row[name];
    return v === null ? null : col.str(row, name);
  },
  int(row: Row, name: string): number {
    const v = row[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v))
      throw new StoreError("schema", `column ${name} is not a safe INTEGER`);
    return v;
  },
  intOrNull(row: Row, name: string): number | null {
    const v = row[name];
    return v === null ? null : col.int(row, name);
  },
  /** A copy as a plain Uint8Array: the driver returns a Buffer from get() but an ArrayBuffer from all(). */
  bytes(row: Row, name: string): Uint8Array {
    const v = row[name];
    if (v instanceof Uint8Array) return new Uint8Array(v);
    if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
    throw new StoreError("schema", `column ${name} is not a BLOB`);
  },
  bytesOrNull(row: Row, name: string): Uint8Array | null {
    const v = row[name];
    return v === null ? null : col.bytes(row, name);
  },
};
