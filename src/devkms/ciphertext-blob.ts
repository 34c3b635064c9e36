/**
 * Ciphertext blobs returned by Encrypt and GenerateDataKey. Like real KMS blobs they are
 * self-describing, so Decrypt needs no KeyId:
 *
 *   "DKB1" | idLen (1) | key id (ASCII) | nonce (12) | AES-256-GCM ciphertext | tag (16)
 *
 * The associated data is the header (magic, length, key id) followed by the canonical encryption
 * context, so a blob only opens under the key it names and with exactly the context it was
 * sealed with.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { invalidCiphertext } from "./errors.ts";

const MAGIC = Buffer.from("DKB1", "ascii");
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_KEY_ID_BYTES = 64;

/** Length-prefixed, sorted pairs: unambiguous whatever the keys and values contain. */
export function canonicalContext(ctx: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const k of [...ctx.keys()].sort()) {
    for (const s of [k, ctx.get(k)!]) {
      const b = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

function header(keyId: string): Buffer {
  const id = Buffer.from(keyId, "ascii");
  if (id.length === 0 || id.length > MAX_KEY_ID_BYTES)
    throw new RangeError("key id length out of range");
  return Buffer.concat([MAGIC, Buffer.of(id.length), id]);
}

export function sealBlob(
  keyId: string,
  material: Uint8Array,
  plaintext: Uint8Array,
  ctx: ReadonlyMap<string, string>,
): Uint8Array {
  const head = header(keyId);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", material, nonce);
  cipher.setAAD(Buffer.concat([head, canonicalContext(ctx)]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(Buffer.concat([head, nonce, body]));
}

/** The key id a blob names, without trusting anything else in it. */
export function blobKeyId(blob: Uint8Array): string {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < MAGIC.length + 1 || !b.subarray(0, MAGIC.length).equals(MAGIC))
    throw invalidCiphertext();
  const idLen = b[MAGIC.length]!;
  if (
    idLen === 0 ||
    idLen > MAX_KEY_ID_BYTES ||
    b.length < MAGIC.length + 1 + idLen + NONCE_BYTES + TAG_BYTES
  )
    throw invalidCiphertext();
  return b.subarray(MAGIC.length + 1, MAGIC.length + 1 + idLen).toString("ascii");
}

export function openBlob(
  blob: Uint8Array,
  material: Uint8Array,
  ctx: ReadonlyMap<string, string>,
): Uint8Array {
  const keyId = blobKeyId(blob);
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const headLen = MAGIC.length + 1 + Buffer.byteLength(keyId, "ascii");
  const nonce = b.subarray(headLen, headLen + NONCE_BYTES);
  const body = b.subarray(headLen + NONCE_BYTES, b.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", material, nonce);
    decipher.setAAD(Buffer.concat([b.subarray(0, headLen), canonicalContext(ctx)]));
    decipher.setAuthTag(b.subarray(b.length - TAG_BYTES));
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    throw invalidCiphertext();
  }
}
