/**
 * An operator's tool (a backup, a sqlite3 shell) holding the write lock of a database file:
 * `BEGIN EXCLUSIVE` on its own libsql connection. Returns the release (idempotent).
 */
import Database from "libsql";

export function lockDatabaseFile(path: string): () => void {
  const locker = new Database(path);
  locker.exec("PRAGMA busy_timeout = 0");
  locker.exec("BEGIN EXCLUSIVE");
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    locker.exec("ROLLBACK");
    locker.close();
  };
}
