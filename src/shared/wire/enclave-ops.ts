/**
 * Typed operations between a host and its enclave: the request and reply
 * bodies carried by the channel's frames. Shared by both sides; nothing here
 * is ever secret (shares, data keys and keep-state never appear in it).
 */

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
