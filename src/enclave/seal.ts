/**
 * Sealing of key shares inside the enclave: AES-256-GCM under a KMS data key.
 *
 * Blob layout and associated data (wallet, node, party index, generation, group public key):
 * src/shared/wire/sealed-share.ts. The associated data is not stored in the blob: the caller
 * re-supplies the binding it expects, so a sealed share that the untrusted host moves to another
 * wallet, node, index or generation fails authentication.
 *
 * The data key's own wrapping (KMS CiphertextForRecipient) is not authenticated, so a GCM success
 * proves only that whoever sealed knew the data key. The enclave therefore takes data keys only from
 * its own KMS calls over TLS (share-sealing.ts), and still checks the unsealed share against the
 * wallet's public key and the expected generation.
 *
 * Secrets: the caller owns `dataKey`, `shareBytes` and the returned plaintext and wipes them
 * (`fill(0)`) after use. This module wipes the buffers it allocates for plaintext. node:crypto
 * keeps its own copy of the key inside the cipher context, which we cannot reach; it is released
 * with the cipher object.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  MAX_SHARE_BYTES,
  SEALED_SHARE_VERSION,
  bindingVersion,
  SEAL_NONCE_BYTES,
  SEAL_TAG_BYTES,
  SealedShareFormatError,
  encodeAssociatedData,
  encodeSealedShare,
  parseSealedShare,
  type SealBinding,
} from "../shared/wire/sealed-share.ts";

// The layout's names, for callers that imported them from here before the layout moved to src/shared/wire.
export {
  MAX_SEALED_BYTES,
  MAX_SHARE_BYTES,
  SEAL_OVERHEAD,
  type SealBinding,
} from "../shared/wire/sealed-share.ts";
export const SEAL_FORMAT_VERSION = SEALED_SHARE_VERSION;
export const DATA_KEY_BYTES = 32;

/** version | nonce | ciphertext | tag. */
export type SealedShare = Uint8Array;

export type SealErrorCode =
  /** An input (blob, data key or binding) is structurally invalid; nothing was decrypted. */
  | "malformed"
  /** GCM authentication failed: wrong key, wrong binding, or a modified blob. */
  | "auth_failed";

export class SealError extends Error {
  override name = "SealError";
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const malformed = (msg: string) => new SealError("malformed", msg);

function checkDataKey(dataKey: unknown): Uint8Array {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_BYTES) {
    const got = dataKey instanceof Uint8Array ? `${dataKey.length} bytes` : typeof dataKey;
    throw malformed(`data key must be exactly ${DATA_KEY_BYTES} bytes, got ${got}`);
  }
  return dataKey;
}

/** The layout's refusals as this module's "malformed". */
function layout<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SealedShareFormatError) throw malformed(e.message);
    throw e;
  }
}

/** The canonical associated data for a binding (src/shared/wire/sealed-share.ts); SealError "malformed" on a bad binding. */
export function sealAssociatedData(binding: SealBinding): Uint8Array {
  return layout(() => encodeAssociatedData(binding));
}

/** Encrypts a share under `dataKey`. Does not wipe `shareBytes` or `dataKey`: the caller owns them. */
export function sealShare(args: {
  dataKey: Uint8Array;
  shareBytes: Uint8Array;
  binding: SealBinding;
}): SealedShare {
  const key = checkDataKey(args.dataKey);
  const share = args.shareBytes;
  if (!(share instanceof Uint8Array) || share.length === 0)
    throw malformed("share bytes must be a non-empty Uint8Array");
  if (share.length > MAX_SHARE_BYTES)
    throw malformed(
      `share is ${share.length} bytes, more than the ${MAX_SHARE_BYTES} a sealed blob can hold`,
    );
  const ad = sealAssociatedData(args.binding);

  const nonce = randomBytes(SEAL_NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: SEAL_TAG_BYTES });
  cipher.setAAD(ad);
  const ciphertext = cipher.update(share);
  // GCM is a stream mode: final() adds no bytes, and the layout refuses a ciphertext of another length.
  if (cipher.final().length !== 0 || ciphertext.length !== share.length)
    throw new Error(
      `AES-GCM produced ${ciphertext.length} ciphertext bytes for a ${share.length}-byte share`,
    );
  // The blob says which associated data it was sealed under (1: no policy hash, 2: with one).
  const version =
    bindingVersion(args.binding) === SEALED_SHARE_VERSION ? SEALED_SHARE_VERSION : undefined;
  return encodeSealedShare({ version, nonce, ciphertext, tag: cipher.getAuthTag() });
}

/**
 * Decrypts a sealed share bound to `binding`. Returns fresh plaintext that the caller must wipe
 * after use (and wipe `dataKey` too). On any failure throws SealError and no plaintext escapes.
 */
export function unsealShare(args: {
  dataKey: Uint8Array;
  sealed: SealedShare;
  binding: SealBinding;
}): Uint8Array {
  const { version, nonce, ciphertext, tag } = layout(() => parseSealedShare(args.sealed));
  const key = checkDataKey(args.dataKey);
  // The associated data carries the version too, so GCM refuses a mismatch anyway; this says so first.
  const blobVersion = version ?? 1;
  if (blobVersion !== bindingVersion(args.binding))
    throw malformed(
      `a version ${blobVersion} sealed share cannot be opened under a version ${bindingVersion(args.binding)} binding (${blobVersion === 2 ? "without" : "with"} a policy hash)`,
    );
  const ad = sealAssociatedData(args.binding);

  const plaintext = new Uint8Array(ciphertext.length);
  let authenticated = false;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: SEAL_TAG_BYTES });
    decipher.setAAD(ad);
    decipher.setAuthTag(tag);
    // GCM decryption streams: update() yields plaintext before final() has checked the tag.
    const head = decipher.update(ciphertext);
    try {
      if (head.length !== plaintext.length) throw new Error("unexpected AES-GCM output length");
      plaintext.set(head);
    } finally {
      head.fill(0);
    }
    const tail = decipher.final();
    if (tail.length !== 0) {
      tail.fill(0);
      throw new Error("unexpected AES-GCM output length");
    }
    authenticated = true;
  } catch {
    // Which check failed is deliberately not distinguished: key, binding and blob all look alike.
  } finally {
    if (!authenticated) plaintext.fill(0);
  }
  if (!authenticated) {
    throw new SealError(
      "auth_failed",
      "sealed share failed authentication: wrong data key, a different binding (wallet, node, party index, generation or public key), or a modified blob",
    );
  }
  return plaintext;
}
