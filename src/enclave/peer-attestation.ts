/**
 * Admission of a peer enclave: its attestation document must verify (chain,
 * signature, not debug, fresh if asked), its PCR0 must be one of the image
 * hashes the cluster allows, and its user_data must be a channel key binding.
 * Only then are its channel keys used; nothing a peer sends is read before.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import {
  AttestationError,
  bytesEqual,
  verifyAttestationDocument,
  type AttestationFailure,
  type TrustedRoot,
} from "../attestation/verifier.ts";
import { PCR_BYTES } from "../attestation/cose.ts";
import { fromHex } from "../shared/hex.ts";
import { ChannelBindingError, parseChannelKeyBinding } from "./peer-keys.ts";

export interface PeerIdentity {
  pcr0: Uint8Array;
  x25519Public: Uint8Array;
  ed25519Public: Uint8Array;
  /** SHA-256 of the whole attestation document, for logs and audit. */
  documentHash: Uint8Array;
  /** The peer's node identity (PCR4) when its document has one: what a repair approval names as its target (lifecycle-repair.ts). */
  pcr4?: Uint8Array;
}

export interface VerifyPeerOptions {
  roots: readonly TrustedRoot[];
  /** Accept documents from the development PKI (simulated NSM). Never in production. */
  allowDevelopment?: boolean;
  now: Date;
  /** Allowed image measurements: 48 bytes each, as bytes or hex. Empty admits nobody. */
  allowedPcr0: readonly (Uint8Array | string)[];
  /** Refuse documents older than this (per-boot documents age; the cluster decides how much). */
  maxAgeMs?: number;
}

export type PeerAttestationFailure = "attestation_invalid" | "pcr0_not_allowed" | "bad_binding";

export class PeerAttestationError extends Error {
  override name = "PeerAttestationError";
  constructor(
    readonly code: PeerAttestationFailure,
    message: string,
    /** The verifier's reason when code = attestation_invalid. */
    readonly attestationReason: AttestationFailure | null = null,
  ) {
    super(message);
  }
}

export function verifyPeer(document: Uint8Array, opts: VerifyPeerOptions): PeerIdentity {
  const allowed = normalisePcr0List(opts.allowedPcr0);
  let doc;
  try {
    // allowDebug is deliberately never passed: a debug enclave's memory is open to its host.
    doc = verifyAttestationDocument(document, {
      roots: opts.roots,
      now: opts.now,
      allowDevelopment: opts.allowDevelopment === true,
      ...(opts.maxAgeMs === undefined ? {} : { maxAgeMs: opts.maxAgeMs }),
    });
  } catch (e) {
    if (e instanceof AttestationError)
      throw new PeerAttestationError(
        "attestation_invalid",
        `peer attestation document refused: ${e.message}`,
        e.reason,
      );
    throw e;
  }
  const pcr0 = doc.pcrs.get(0);
  // verifyAttestationDocument already insists on PCR0; re-checked so this module does not depend on it.
  if (!pcr0 || !allowed.some((a) => bytesEqual(a, pcr0))) {
    throw new PeerAttestationError(
      "pcr0_not_allowed",
      "peer enclave runs an image whose PCR0 is not in the allowed list",
    );
  }
  let keys;
  try {
    keys = parseChannelKeyBinding(doc.userData);
  } catch (e) {
    if (e instanceof ChannelBindingError)
      throw new PeerAttestationError("bad_binding", `peer attestation document: ${e.message}`);
    throw e;
  }
  const pcr4 = doc.pcrs.get(4);
  return {
    pcr0: pcr0.slice(),
    x25519Public: keys.x25519Public,
    ed25519Public: keys.ed25519Public,
    documentHash: sha256(document),
    ...(pcr4 === undefined ? {} : { pcr4: pcr4.slice() }),
  };
}

function normalisePcr0List(list: readonly (Uint8Array | string)[]): Uint8Array[] {
  if (!Array.isArray(list) || list.length === 0)
    throw new TypeError("verifyPeer needs a non-empty allowedPcr0 list");
  return list.map((p, i) => {
    const bytes = typeof p === "string" ? fromHex(p, PCR_BYTES) : p;
    if (!(bytes instanceof Uint8Array) || bytes.length !== PCR_BYTES)
      throw new TypeError(`allowedPcr0[${i}] must be ${PCR_BYTES} bytes`);
    // All zero is what a debug-mode enclave reports, whose memory its host can read: never an image to admit.
    if (bytes.every((b) => b === 0))
      throw new TypeError(
        `allowedPcr0[${i}] is all zero (a debug enclave), which is never admitted`,
      );
    return bytes;
  });
}
