/**
 * The key-store master key: 32 random bytes in `<data-dir>/master.key` (mode 0600), from which
 * the key that seals key records is derived.
 *
 * Why this is acceptable here and nowhere else: this is a development stand-in for KMS. Real KMS
 * keeps key material inside HSMs; we keep the sealing secret next to the sealed data. That stops
 * key material leaking through the ordinary ways a dev data dir leaks (a grep, a log, a backup of
 * the keys folder, a commit of `keys/`) and lets tests prove nothing is stored in clear, but it
 * does not protect against anyone who can read the whole data dir as its owner. Never put
 * production secrets under this service.
 */
import { closeSync, fsyncSync, lstatSync, openSync, readFileSync, writeSync } from "node:fs";
import { hkdfSync, randomBytes } from "node:crypto";
import { join } from "node:path";

export const MASTER_KEY_FILE = "master.key";
const MASTER_KEY_BYTES = 32;

export class MasterKeyError extends Error {
  override name = "MasterKeyError";
}

function createMasterKeyIfAbsent(path: string): void {
  let fd: number;
  try {
    // "wx": never overwrite a master key another process just wrote; mode applies only on creation.
    fd = openSync(path, "wx", 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return;
    throw new MasterKeyError(`cannot create ${path}: ${(e as Error).message}`);
  }
  try {
    const secret = randomBytes(MASTER_KEY_BYTES);
    writeSync(fd, secret);
    fsyncSync(fd);
    secret.fill(0);
  } finally {
    closeSync(fd);
  }
}

function readMasterKey(path: string): Buffer {
  const st = lstatSync(path);
  if (!st.isFile())
    throw new MasterKeyError(`${path} must be a regular file (not a link or directory)`);
  if ((st.mode & 0o077) !== 0) {
    throw new MasterKeyError(
      `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  if (st.size !== MASTER_KEY_BYTES)
    throw new MasterKeyError(
      `${path} must hold exactly ${MASTER_KEY_BYTES} bytes, it holds ${st.size}`,
    );
  return readFileSync(path);
}

/** Load (creating on first use) the master secret and derive the record-sealing key from it. */
export function loadStoreKey(dataDir: string): Buffer {
  const path = join(dataDir, MASTER_KEY_FILE);
  createMasterKeyIfAbsent(path);
  const secret = readMasterKey(path);
  try {
    // Derived rather than used directly, so any later use of the master secret gets its own key.
    return Buffer.from(hkdfSync("sha256", secret, new Uint8Array(0), "devkms key records v1", 32));
  } finally {
    secret.fill(0);
  }
}
