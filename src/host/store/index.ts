/** The host's store: open a database and bring its schema up to date in one step. */
import { openDatabase, type Db, type DbLocation, type OpenOptions } from "./db.ts";
import { migrate, type MigrationResult } from "./migrations.ts";

export function openStore(
  location: DbLocation,
  options: OpenOptions = {},
): { db: Db; migration: MigrationResult } {
  const db = openDatabase(location, options);
  try {
    return { db, migration: migrate(db) };
  } catch (e) {
    db.close();
    throw e;
  }
}

export {
  col,
  openDatabase,
  openReadOnlyFile,
  parseDbLocation,
  Db,
  type DbLocation,
  type OpenOptions,
  type Row,
  type SqlParams,
  type SqlValue,
} from "./db.ts";
export { StoreError, type StoreErrorCode } from "./errors.ts";
export {
  MIGRATIONS,
  latestVersion,
  migrate,
  schemaVersion,
  type Migration,
  type MigrationResult,
} from "./migrations.ts";
export * from "./wallets-repo.ts";
export * from "./shares-repo.ts";
export * from "./statements-repo.ts";
export * from "./ceremonies-repo.ts";
export * from "./refresh-outcomes-repo.ts";
export * from "./sign-outcomes-repo.ts";
export * from "./audit.ts";
export * from "./wallet-deletion.ts";
export * from "./members-repo.ts";
export * from "./commit-proofs-repo.ts";
export * from "./pending-shapes-repo.ts";
