/**
 * Persistent KMS keys: one file per key in `<data-dir>/keys/<key-id>.key`, each record
 * (metadata, policy and key material together) sealed with AES-256-GCM under the store key, with
 * the key id as associated data so a record cannot be renamed into another key's slot. Only the
 * key id is readable on disk. Records are written to a temporary file and renamed, so a crash
 * never leaves a half-written key.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadStoreKey } from "./master-key.ts";

export const KEY_MATERIAL_BYTES = 32;
const RECORD_FORMAT = "devkms-key-v1";
const MAX_RECORD_FILE_BYTES = 256 * 1024;
const MAX_KEYS = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface KeyRecord {
  keyId: string;
  /** Seconds since the epoch, as KMS reports CreationDate. */
  createdAt: number;
  description: string;
  enabled: boolean;
  policy: string;
  material: Uint8Array;
}

/** Sealed record content (JSON inside the AES-GCM envelope). */
interface SealedFields {
  keyId: string;
  createdAt: number;
  description: string;
  enabled: boolean;
  policy: string;
  material: string;
}

export class KeyStoreError extends Error {
  override name = "KeyStoreError";
}

export const isKeyId = (s: string) => UUID.test(s);

export class KeyStore {
  private readonly keys = new Map<string, KeyRecord>();
  private readonly dir: string;

  private constructor(
    dataDir: string,
    private readonly storeKey: Buffer,
  ) {
    this.dir = join(dataDir, "keys");
  }

  /** Open (creating if needed) the store in `dataDir` and load every key. */
  static open(dataDir: string): KeyStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const store = new KeyStore(dataDir, loadStoreKey(dataDir));
    mkdirSync(store.dir, { recursive: true, mode: 0o700 });
    store.loadAll();
    return store;
  }

  get(keyId: string): KeyRecord | undefined {
    return this.keys.get(keyId);
  }

  get size(): number {
    return this.keys.size;
  }

  create(fields: { description: string; policy: string }): KeyRecord {
    if (this.keys.size >= MAX_KEYS)
      throw new KeyStoreError(`the development KMS holds at most ${MAX_KEYS} keys`);
    const record: KeyRecord = {
      keyId: randomUUID(),
      createdAt: Math.floor(Date.now() / 1000),
      description: fields.description,
      enabled: true,
      policy: fields.policy,
      material: new Uint8Array(randomBytes(KEY_MATERIAL_BYTES)),
    };
    this.persist(record);
    this.keys.set(record.keyId, record);
    return record;
  }

  setPolicy(keyId: string, policy: string): void {
    const current = this.keys.get(keyId);
    if (!current) throw new KeyStoreError(`no key ${keyId}`);
    const updated = { ...current, policy };
    this.persist(updated);
    this.keys.set(keyId, updated);
  }

  private fileOf(keyId: string): string {
    return join(this.dir, `${keyId}.key`);
  }

  private persist(r: KeyRecord): void {
    const fields: SealedFields = {
      keyId: r.keyId,
      createdAt: r.createdAt,
      description: r.description,
      enabled: r.enabled,
      policy: r.policy,
      material: Buffer.from(r.material).toString("base64"),
    };
    const plaintext = Buffer.from(JSON.stringify(fields), "utf8");
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.storeKey, nonce);
    cipher.setAAD(aadFor(r.keyId));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    plaintext.fill(0);
    const file = JSON.stringify({
      format: RECORD_FORMAT,
      keyId: r.keyId,
      nonce: nonce.toString("base64"),
      sealed: sealed.toString("base64"),
    });
    const path = this.fileOf(r.keyId);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, file, { mode: 0o600, flush: true });
    renameSync(tmp, path);
  }

  private loadAll(): void {
    const names = readdirSync(this.dir).filter((n) => n.endsWith(".key"));
    if (names.length > MAX_KEYS)
      throw new KeyStoreError(`${this.dir} holds ${names.length} keys, more than ${MAX_KEYS}`);
    for (const name of names) {
      const record = this.load(join(this.dir, name), name.slice(0, -".key".length));
      this.keys.set(record.keyId, record);
    }
  }

  private load(path: string, keyId: string): KeyRecord {
    if (!isKeyId(keyId)) throw new KeyStoreError(`${path}: file name is not a key id`);
    if (statSync(path).size > MAX_RECORD_FILE_BYTES)
      throw new KeyStoreError(`${path}: too large for a key record`);
    let file: { format?: unknown; keyId?: unknown; nonce?: unknown; sealed?: unknown };
    try {
      file = JSON.parse(readFileSync(path, "utf8"));
    } catch {
      throw new KeyStoreError(`${path}: not a key record (invalid JSON)`);
    }
    if (
      file.format !== RECORD_FORMAT ||
      file.keyId !== keyId ||
      typeof file.nonce !== "string" ||
      typeof file.sealed !== "string"
    ) {
      throw new KeyStoreError(`${path}: not a ${RECORD_FORMAT} record for key ${keyId}`);
    }
    const nonce = Buffer.from(file.nonce, "base64");
    const sealed = Buffer.from(file.sealed, "base64");
    if (nonce.length !== 12 || sealed.length < 16)
      throw new KeyStoreError(`${path}: malformed sealed record`);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.storeKey, nonce);
      decipher.setAAD(aadFor(keyId));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      plaintext = Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - 16)),
        decipher.final(),
      ]);
    } catch {
      throw new KeyStoreError(
        `${path}: cannot unseal (wrong master key, or the file was modified)`,
      );
    }
    try {
      const f = JSON.parse(plaintext.toString("utf8")) as SealedFields;
      const material = new Uint8Array(Buffer.from(f.material, "base64"));
      if (f.keyId !== keyId || material.length !== KEY_MATERIAL_BYTES)
        throw new Error("inconsistent");
      return {
        keyId,
        createdAt: f.createdAt,
        description: f.description,
        enabled: f.enabled,
        policy: f.policy,
        material,
      };
    } catch {
      throw new KeyStoreError(`${path}: sealed record content is inconsistent`);
    } finally {
      plaintext.fill(0);
    }
  }
}

const aadFor = (keyId: string) => Buffer.from(`${RECORD_FORMAT}:${keyId}`, "utf8");
