export type StoreErrorCode =
  /** A value handed to the store is out of range or of the wrong shape. */
  | "invalid"
  /** The wallet, share or ceremony asked for does not exist. */
  | "not_found"
  /** The request contradicts the stored state (duplicate, wrong generation, wrong status). */
  | "conflict"
  /** The database's schema is newer than this code, or its migration history is inconsistent. */
  | "schema";

export class StoreError extends Error {
  override name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** True for SQLite's constraint failures (PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY, NOT NULL). */
export function isConstraintError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_CONSTRAINT");
}
