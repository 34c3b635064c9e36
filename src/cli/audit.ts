/**
 * tss audit: reads a node's audit log from its database file, read-only and without the broker,
 * shows the rows that match the filters, and checks the hash chain over every row. Exit status
 * 0 when the chain holds, 1 when it is broken or cannot be checked; a file that cannot be
 * opened is a configuration error (UsageError, status 2).
 */
import {
  latestVersion,
  openReadOnlyFile,
  readAudit,
  schemaVersion,
  StoreError,
  verifyAuditChain,
  type AuditChainReport,
  type AuditEntry,
  type Db,
} from "../host/store/index.ts";
import { sinceArg, UsageError, walletIdArg, type Invocation } from "./args.ts";
import { asSentence, showAuditChain, showAuditEntries } from "./render.ts";

/** The schema version that brought the hash chain (src/host/store/migrations.ts). */
const CHAINED_SINCE_VERSION = 3;
const PAGE = 1000;

export interface AuditOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

function matching(db: Db, walletId: string | undefined, sinceMs: number | undefined): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (;;) {
    const page = readAudit(db, { walletId, sinceMs, afterId: entries.at(-1)?.id, limit: PAGE });
    entries.push(...page);
    if (page.length < PAGE) return entries;
  }
}

export function runAudit(inv: Invocation, io: AuditOutput, now: number = Date.now()): number {
  const path = inv.values.get("db");
  if (path === undefined)
    throw new UsageError("tss audit needs --db PATH, the node's database file.");
  const walletId = inv.values.has("wallet")
    ? walletIdArg(inv.values.get("wallet"), "--wallet ID")
    : undefined;
  const sinceMs = sinceArg(inv.values.get("since"), now);
  let db: Db;
  try {
    db = openReadOnlyFile(path);
  } catch (e) {
    throw new UsageError(`${asSentence((e as Error).message)}.`);
  }
  try {
    const version = schemaVersion(db);
    if (version < CHAINED_SINCE_VERSION || version > latestVersion()) {
      io.err(
        version < CHAINED_SINCE_VERSION
          ? `tss: The database ${path} is at schema version ${version}, before the audit chain (version ${CHAINED_SINCE_VERSION}); start the host on it once to migrate, then run tss audit again.\n`
          : `tss: The database ${path} is at schema version ${version}, newer than this tss knows (${latestVersion()}); use the tss of the host that wrote it.\n`,
      );
      return 1;
    }
    const chain: AuditChainReport = verifyAuditChain(db);
    let entries: AuditEntry[];
    try {
      entries = matching(db, walletId, sinceMs);
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      // A row this code cannot read; the chain verdict says whether it was tampered with.
      io.err(`tss: The audit rows cannot be listed: ${e.message}.\n`);
      entries = [];
    }
    if (inv.json) io.out(`${JSON.stringify({ entries, chain }, null, 2)}\n`);
    else {
      io.out(`${showAuditEntries(entries)}\n`);
      if (chain.ok) io.out(`${showAuditChain(chain)}\n`);
    }
    if (!chain.ok) {
      io.err(`tss: ${showAuditChain(chain)}\n`);
      return 1;
    }
    return 0;
  } finally {
    db.close();
  }
}
