/**
 * The client's half of a key import (src/shared/wire/key-import.ts): verify
 * the recipient enclave's attestation document with the same trust as wallet
 * statements (roots, no debug enclave, an allowed image, fresh), take the
 * X25519 channel key it binds, and seal the secret key (and chain code) to it
 * with HPKE. The caller's key buffers are wiped once sealed.
 *
 * TssClient.importKey (client.ts) fetches the document (`importTarget`),
 * seals with these, and sends the envelope with `import`; the enclave opens
 * it, splits it and deals the shares to its peers
 * (src/enclave/lifecycle-import.ts; docs/ARCHITECTURE.md, "Key import").
 */
import { decodeAttestationDocument } from "../attestation/cose.ts";
import { AttestationError, verifyAttestationDocument } from "../attestation/verifier.ts";
import { toHex } from "../shared/hex.ts";
import {
  channelKeyBindingHash,
  parseChannelKeyBinding,
  type ChannelPublicKeys,
} from "../shared/wire/channel-key-binding.ts";
import {
  encodeImportedKey,
  keyImportInfo,
  sealKeyImportEnvelope,
  type KeyImportContext,
} from "../shared/wire/key-import.ts";
import { TssError } from "./errors.ts";
import type { WalletTrust } from "./wallet-verification.ts";

/** How old a recipient's document may be: it binds per-boot keys, and an old one may name a dead boot. */
export const IMPORT_DOCUMENT_MAX_AGE_MS = 10 * 60_000;

/** The recipient's channel keys, from its attestation document, if the document is trusted. */
export function importRecipient(
  document: Uint8Array,
  trust: WalletTrust,
  nowMs: number = Date.now(),
): ChannelPublicKeys {
  return parseChannelKeyBinding(trustedEnclaveDocument(document, trust, nowMs).userData);
}

/**
 * A node's fresh attestation document verified with the wallet trust (roots, no debug
 * enclave, an allowed image, at most IMPORT_DOCUMENT_MAX_AGE_MS old): a key import's recipient,
 * or a share repair's target, whose PCR4 the repair approval names (share-repair.ts).
 */
export function trustedEnclaveDocument(
  document: Uint8Array,
  trust: WalletTrust,
  nowMs: number = Date.now(),
): ReturnType<typeof verifyAttestationDocument> {
  let doc;
  try {
    const timestamp = decodeAttestationDocument(document).document.timestamp;
    if (nowMs - timestamp > IMPORT_DOCUMENT_MAX_AGE_MS || timestamp - nowMs > 60_000)
      throw new TssError("unverified_wallet", "The recipient's attestation document is not fresh.");
    doc = verifyAttestationDocument(document, {
      roots: trust.roots,
      now: new Date(timestamp),
      allowDevelopment: trust.allowDevelopment === true,
      allowDebug: false,
    });
  } catch (e) {
    if (e instanceof TssError) throw e;
    const why = e instanceof AttestationError ? ` (${e.reason})` : "";
    throw new TssError(
      "unverified_wallet",
      `The recipient's attestation document is refused${why}: ${(e as Error).message}`,
    );
  }
  const image = toHex(doc.pcrs.get(0) ?? new Uint8Array());
  const allowed = trust.imageHashes.map((h) =>
    typeof h === "string" ? h.toLowerCase() : toHex(h),
  );
  if (!allowed.includes(image))
    throw new TssError(
      "unverified_wallet",
      `The recipient enclave runs image ${image.slice(0, 16)}…, which is not on the allow-list.`,
    );
  return doc;
}

/** Seals `secretKey` (and `chainCode`) for `recipient`; both buffers are wiped, whatever happens. */
export async function sealKeyForEnclave(o: {
  recipient: ChannelPublicKeys;
  walletId: string;
  requestId: string;
  threshold: number;
  parties: number;
  secretKey: Uint8Array;
  chainCode?: Uint8Array;
}): Promise<Uint8Array> {
  let plain: Uint8Array | null = null;
  try {
    const context: KeyImportContext = {
      walletId: o.walletId,
      requestId: o.requestId,
      threshold: o.threshold,
      parties: o.parties,
      recipientBindingHash: channelKeyBindingHash(o.recipient),
    };
    const info = keyImportInfo(context);
    plain = encodeImportedKey(o.secretKey, o.chainCode);
    return await sealKeyImportEnvelope(o.recipient.x25519Public, info, plain);
  } finally {
    plain?.fill(0);
    o.secretKey.fill(0);
    o.chainCode?.fill(0);
  }
}
