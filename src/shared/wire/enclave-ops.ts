/**
 * Typed operations between a host and its enclave: the request and reply
 * bodies carried by the channel's frames. Shared by both sides; nothing here
 * is ever secret (shares, data keys and keep-state never appear in it).
 *
 * Each body is a body map (body.ts) with string keys, built from these
 * objects by enclave-codec.ts: field name = key, number = uint, Uint8Array =
 * bytes, string = string, Uint8Array[] = bytes array, and the party-index
 * lists `signers` and `peerParties` = bytes (one byte per index). Absent
 * optional fields are absent keys. A reply comes in an OK frame; a failure is
 * an ERROR frame {code, message, party?} (src/shared/channel/rpc-errors.ts).
 *
 * | frame          | request keys                                               | OK reply keys |
 * |----------------|------------------------------------------------------------|---------------|
 * | HEALTH         | (none)                                                     | status, pcr0, loadedWallets, openSessions |
 * | ATTEST         | nonce?                                                     | document |
 * | LOAD_SHARE     | walletId, nodeId, partyIndex, generation, publicKey, sealed, ciphertextForRecipient | walletId, generation, partyIndex |
 * | CEREMONY_START | kind, sessionId, walletId, peerDocuments, peerParties; dkg: threshold, parties, partyIndex; sign: signers, digest, path?, expectedGeneration; refresh: expectedGeneration | CeremonyReply (phase-1 messages) |
 * | CEREMONY_STEP  | sessionId, phase, messages                                 | CeremonyReply: messages, generation; phase 4: signature or publicKey, publicPackage, chainCode, partyIndex |
 * | CEREMONY_ABORT | sessionId                                                  | dropped |
 * | SEAL_SHARE     | sessionId, walletId, nodeId, ciphertextForRecipient         | sealed, generation, partyIndex, publicKey |
 * | ACTIVATE_SHARE | sessionId, walletId                                        | walletId, generation, partyIndex |
 *
 * Bounds: the whole body is within frame.ts MAX_BODY_LEN; session ids are
 * SESSION_ID_LEN bytes and messages at most MAX_LIST_ITEMS of at most
 * MAX_MESSAGE_LEN (protocol-message.ts) or MAX_SEALED_LEN when sealed
 * (peer-envelope-header.ts); ids match patterns.ts; a sealed share is at most
 * MAX_SEALED_BYTES (sealed-share.ts); digests are DIGEST_BYTES (patterns.ts);
 * public keys COMPRESSED_KEY_BYTES and chain codes CHAIN_CODE_BYTES
 * (src/shared/public-key.ts); signatures ECDSA_SIGNATURE_BYTES. The enclave
 * checks every field; the host trusts none of the reply beyond its shape.
 */

/** The `signature` of a sign's phase 4: r || s || recovery id. */
export const ECDSA_SIGNATURE_BYTES = 65;

export type CeremonyKind = "dkg" | "sign" | "refresh";

export interface HealthReply {
  status: "ok";
  /** PCR0 of the running enclave image (hex), as its attestation documents report it. */
  pcr0: string;
  loadedWallets: number;
  openSessions: number;
}

export interface AttestRequest {
  nonce?: Uint8Array;
  /** Refused: the enclave sets user_data to its channel-key binding itself. */
  userData?: undefined;
}
/** The document's public_key is the enclave's per-boot RSA-2048 key (DER SPKI). */
export interface AttestReply {
  document: Uint8Array;
}

/** What binds a sealed share; re-supplied by the host, checked by the enclave. */
export interface ShareBinding {
  walletId: string;
  nodeId: string;
  partyIndex: number;
  generation: number;
  /** Compressed group public key, 33 bytes. */
  publicKey: Uint8Array;
}

export interface LoadShareRequest extends ShareBinding {
  sealed: Uint8Array;
  /** KMS Decrypt output for this enclave's Recipient; the only key material the host relays. */
  ciphertextForRecipient: Uint8Array;
}
export interface LoadShareReply {
  walletId: string;
  generation: number;
  partyIndex: number;
}

export interface CeremonyStartRequest {
  kind: CeremonyKind;
  sessionId: Uint8Array;
  walletId: string;
  /** DKG only. */
  threshold?: number;
  parties?: number;
  partyIndex?: number;
  /** Sign only: all t signer party indices, the 32-byte digest, optional BIP-32 path. */
  signers?: number[];
  digest?: Uint8Array;
  path?: string;
  /** Sign and refresh: the generation the host believes current; the enclave refuses any other. */
  expectedGeneration?: number;
  /** Every other participant's attestation document, and its party index (same order). */
  peerDocuments: Uint8Array[];
  peerParties: number[];
}

export interface CeremonyStepRequest {
  sessionId: Uint8Array;
  /** The phase to run now (2, 3 or 4). */
  phase: number;
  messages: Uint8Array[];
}

export interface CeremonyReply {
  /** Outgoing protocol messages (phases 1–3). */
  messages: Uint8Array[];
  /** The generation of the share in use (sign, refresh) or produced (dkg: 0). */
  generation: number;
  /** Phase 4 of sign. */
  signature?: Uint8Array; // r || s || recovery id
  /** Phase 4 of dkg/refresh: the new share waits, unsealed, in the enclave. */
  publicKey?: Uint8Array;
  publicPackage?: Uint8Array;
  /** Phase 4 of dkg/refresh: the BIP-32 chain code, so the host derives child public keys without the wasm core. */
  chainCode?: Uint8Array;
  partyIndex?: number;
}

export interface CeremonyAbortRequest {
  sessionId: Uint8Array;
}

/** Seal the share a finished DKG/refresh produced, under a fresh KMS data key. */
export interface SealShareRequest {
  sessionId: Uint8Array;
  walletId: string;
  nodeId: string;
  /** KMS GenerateDataKey output for this enclave's Recipient. */
  ciphertextForRecipient: Uint8Array;
}
export interface SealShareReply {
  sealed: Uint8Array;
  generation: number;
  partyIndex: number;
  publicKey: Uint8Array;
}

/** After the host committed the sealed share: make it the wallet's active share. */
export interface ActivateShareRequest {
  sessionId: Uint8Array;
  walletId: string;
}
