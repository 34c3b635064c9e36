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
 * | HEALTH         | (none)                                                     | status, pcr0, pcr4, loadedWallets, openSessions, share cache fields?, ceremony counters? (enclave-counters.ts) |
 * | ATTEST         | nonce?                                                     | document |
 * | LOAD_SHARE     | walletId, partyIndex, generation, publicKey, sealed, ciphertextBlob, policy?, accessKeyId, secretAccessKey, sessionToken? | walletId, generation, partyIndex |
 * | CEREMONY_START | kind, sessionId, walletId, peerDocuments, peerParties, requestId?, approvalRequest?, approvals?; dkg: threshold, parties, partyIndex, policy?; sign: signers, digest, path?, expectedGeneration?; refresh: expectedGeneration?, repairSession?; repair: threshold, parties, partyIndex, repairTarget, repairHelpers, policy? (target); reshare: threshold, parties, partyIndex, reshareDealers, reshareSeats, reshareNodes, publicPackage + policy? (new members) | CeremonyReply (phase-1 messages; sign, refresh: shareState; superseded? when it cancelled a duplicate) |
 * | CEREMONY_STEP  | sessionId, phase, messages; phase 2 of sign, refresh: shareStates | CeremonyReply: messages, generation; phase 4: signature or publicKey, publicPackage, chainCode, partyIndex, statement |
 * | CEREMONY_ABORT | sessionId                                                  | dropped |
 * | SEAL_SHARE     | sessionId, walletId, accessKeyId, secretAccessKey, sessionToken? | sealed, ciphertextBlob, kmsKeyId, generation, partyIndex, publicKey, receipt |
 * | ACTIVATE_SHARE | sessionId, walletId, sealReceipts, certificateStatements?, certificateDocuments? | walletId, generation, partyIndex |
 * | RETIRE_WALLET  | walletId, requestId?, approvalRequest?, approvals?          | walletId, partyIndex, generation, policyHash?, approverKeyIds |
 * | SUPERSEDED_SHARE | walletId, partyIndex, generation, publicKey, statements, documents, nonce, activeProofs | walletId, partyIndex, generation, supersededBy, holderPcr4? |
 * | SUPERSESSION_NONCE | walletId                                                 | nonce |
 * | PROVE_ACTIVE   | walletId, nonce                                            | proof |
 *
 * Bounds: the whole body is within frame.ts MAX_BODY_LEN; session ids are
 * SESSION_ID_LEN bytes and messages at most MAX_LIST_ITEMS of at most
 * MAX_MESSAGE_LEN (protocol-message.ts) or MAX_SEALED_LEN when sealed
 * (peer-envelope-header.ts); ids match patterns.ts; a sealed share is at most
 * MAX_SEALED_BYTES (sealed-share.ts); digests are DIGEST_BYTES (patterns.ts);
 * public keys COMPRESSED_KEY_BYTES and chain codes CHAIN_CODE_BYTES
 * (src/shared/public-key.ts); signatures ECDSA_SIGNATURE_BYTES. The enclave
 * checks every field; the host trusts none of the reply beyond its shape.
 * LOAD_SHARE and SEAL_SHARE requests with any key outside LOAD_SHARE_FIELDS /
 * SEAL_SHARE_FIELDS are refused. CiphertextBlob is at most
 * MAX_CIPHERTEXT_BLOB_BYTES (KMS's own limit); credentials within
 * MAX_ACCESS_KEY_ID_CHARS, MAX_SECRET_ACCESS_KEY_CHARS, MAX_SESSION_TOKEN_CHARS.
 *
 * Approvals (issue 9, formats in approval.ts): CEREMONY_START carries the
 * client's request id, the approvable request encoding the approvers signed
 * (`approvalRequest`, at most MAX_REQUEST_BYTES) and the approvals (at most
 * MAX_APPROVALS of APPROVAL_BYTES); a DKG's start also carries the new
 * wallet's policy encoding (at most MAX_POLICY_BYTES), which the enclave
 * seals as its hash into the share's associated data (sealed-share.ts
 * version 2). LOAD_SHARE hands the stored policy encoding back; the
 * enclave hashes it into the associated data it opens with, so a host that
 * swaps or drops it cannot open the share. The enclave checks the approvals
 * against that policy (sign, refresh) or the administrators' policy built
 * into its image (dkg) before phase 1; the host only relays them.
 *
 * KMS (issue 8): the enclave itself calls KMS over TLS through its host's
 * relay, with its own configured key id, an encryption context it builds
 * itself and its own attestation document as Recipient. The host supplies
 * only the stored CiphertextBlob and temporary AWS credentials, which gate
 * nothing that the key policy's attestation conditions do not also gate.
 */

/** KMS's bound on a CiphertextBlob. */
export const MAX_CIPHERTEXT_BLOB_BYTES = 6144;
/** IAM's bounds on an access key id and a secret key; STS session tokens are far below the token bound. */
export const MAX_ACCESS_KEY_ID_CHARS = 128;
export const MAX_SECRET_ACCESS_KEY_CHARS = 128;
export const MAX_SESSION_TOKEN_CHARS = 8192;

/** The `signature` of a sign's phase 4: r || s || recovery id. */
export const ECDSA_SIGNATURE_BYTES = 65;

/** "repair": a share repair's term exchange (src/enclave/lifecycle-repair.ts), followed at once by a refresh. */
/** "reshare": the wallet's key reshared to a new committee (src/enclave/lifecycle-reshare.ts). */
export type CeremonyKind = "dkg" | "sign" | "refresh" | "repair" | "reshare";

export interface HealthReply {
  status: "ok";
  /** PCR0 of the running enclave image (hex), as its attestation documents report it. */
  pcr0: string;
  /** PCR4 (hex): the node identity its attestation documents carry (on Nitro, the parent instance id's hash). */
  pcr4: string;
  loadedWallets: number;
  openSessions: number;
  /** Share cache (src/enclave/share-cache.ts): memory budget of the loaded shares, in bytes. */
  shareBudgetBytes?: number;
  /** Bytes charged for the shares held (cached, and replaced ones an open ceremony still uses). */
  shareBytesUsed?: number;
  /** Shares an open ceremony holds (never evicted). */
  sharesPinned?: number;
  /** Ceremony starts that found their wallet's share loaded / evicted (share_not_loaded). */
  shareHits?: number;
  shareMisses?: number;
  shareEvictions?: number;
  /** Loads refused with capacity_exceeded. */
  shareLoadsRefused?: number;
  /** Size of the DKLs23 wasm instance's linear memory (it only grows; wasm32 caps it at 4 GiB). */
  wasmMemoryBytes?: number;
  /** Public counters since the enclave started (enclave-counters.ts): sessions dropped at CEREMONY_ABORT. */
  ceremoniesAborted?: number;
  /** ... and per ceremony kind, sessions finished / failed (`signFinished`, `dkgFailed`, ...). */
  [counter: `${string}${"Finished" | "Failed"}`]: number | undefined;
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

/**
 * What binds a sealed share; re-supplied by the host, checked by the enclave.
 * The node is not among them: the enclave binds its own identity (PCR4).
 */
export interface ShareBinding {
  walletId: string;
  partyIndex: number;
  generation: number;
  /** Compressed group public key, 33 bytes. */
  publicKey: Uint8Array;
}

/** Temporary AWS credentials for the enclave's own KMS call (flat fields: bodies hold no nested maps). */
export interface KmsCredentialFields {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface LoadShareRequest extends ShareBinding, KmsCredentialFields {
  sealed: Uint8Array;
  /** The data key under the KMS key, as SEAL_SHARE returned it; the enclave Decrypts it itself. */
  ciphertextBlob: Uint8Array;
  /** The wallet's approval policy encoding as stored with the wallet; absent for a share sealed without one (version 1). */
  policy?: Uint8Array;
}
export const LOAD_SHARE_FIELDS: readonly string[] = [
  "walletId",
  "partyIndex",
  "generation",
  "publicKey",
  "sealed",
  "ciphertextBlob",
  "policy",
  "accessKeyId",
  "secretAccessKey",
  "sessionToken",
];
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
  /**
   * Sign and refresh: the generation the host believes current. Logged when it differs from
   * the loaded share's, never decisive: the participants' share-state statements decide.
   */
  expectedGeneration?: number;
  /** Every other participant's attestation document, and its party index (same order). */
  peerDocuments: Uint8Array[];
  peerParties: number[];
  /** The client's request id: the approvals name it, so they approve this request only. */
  requestId?: string;
  /** The approvable request encoding (approval.ts) the approvers signed, as the client sent it. */
  approvalRequest?: Uint8Array;
  /** The approvals (APPROVAL_BYTES each), as the client sent them. */
  approvals?: Uint8Array[];
  /** DKG only: the new wallet's approval policy encoding (approval.ts). */
  policy?: Uint8Array;
  /**
   * DKG only, and it makes the DKG a key import (src/enclave/lifecycle-import.ts): the
   * client's HPKE envelope (key-import.ts) sealed to the dealer's enclave. Every participant
   * gets it, since the `import` approval names its SHA-256; only the dealer can open it.
   */
  importEnvelope?: Uint8Array;
  /** Key import only: the party index of the enclave the envelope is sealed to. */
  importDealer?: number;
  /**
   * Repair only (src/enclave/lifecycle-repair.ts): the party index being rebuilt on the new
   * node, and the helpers (at least t current holders, sorted). threshold, parties and
   * partyIndex as a DKG's; the target also gets the wallet's `policy` encoding (it has no
   * sealed one), which every helper's term must name by its hash.
   */
  repairTarget?: number;
  repairHelpers?: number[];
  /**
   * Refresh only, at a repair's target: the repair session whose hollow share this refresh
   * completes (the target has no loaded share; src/enclave/repaired-parties.ts).
   */
  repairSession?: Uint8Array;
  /**
   * Reshare only (src/enclave/lifecycle-reshare.ts): threshold, parties and partyIndex are the
   * NEW committee's (partyIndex this member's seat); the dealers' old indices (increasing) and
   * their seats (same order); every seat's node id, comma-separated in seat order (the approval
   * names them with their PCR4s). A new member (no seat among reshareSeats) also gets the old
   * `publicPackage` and the wallet's `policy`, trusted only once every dealer's signed
   * statement names them (phase 2).
   */
  reshareDealers?: number[];
  reshareSeats?: number[];
  reshareNodes?: string;
  publicPackage?: Uint8Array;
}

export interface CeremonyStepRequest {
  sessionId: Uint8Array;
  /** The phase to run now (2, 3 or 4). */
  phase: number;
  messages: Uint8Array[];
  /** Phase 2 of sign and refresh: every other participant's signed share-state statement (share-state.ts), from its START reply. */
  shareStates?: Uint8Array[];
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
  /** Phase 4 of dkg/refresh: this enclave's signed wallet statement (wallet-statement.ts). */
  statement?: Uint8Array;
  /** Phase 1 of sign/refresh: this enclave's signed share-state statement (share-state.ts), for the host to relay to the others at phase 2. */
  shareState?: Uint8Array;
  /**
   * Start only: the open session of the same approved request that this start superseded in the
   * enclave (src/enclave/approval-replay.ts). The enclave cannot tell who started either; the
   * host audits both starters (node-host.ts) and does not relay this field.
   */
  superseded?: Uint8Array;
}

export interface CeremonyAbortRequest {
  sessionId: Uint8Array;
}

/** Seal the share a finished DKG/refresh produced, under a data key the enclave asks KMS for itself. */
export interface SealShareRequest extends KmsCredentialFields {
  sessionId: Uint8Array;
  walletId: string;
}
export const SEAL_SHARE_FIELDS: readonly string[] = [
  "sessionId",
  "walletId",
  "accessKeyId",
  "secretAccessKey",
  "sessionToken",
];
export interface SealShareReply {
  sealed: Uint8Array;
  /** Store beside `sealed`; LOAD_SHARE hands it back. */
  ciphertextBlob: Uint8Array;
  /** The KMS key's ARN, as KMS reported it. */
  kmsKeyId: string;
  generation: number;
  partyIndex: number;
  publicKey: Uint8Array;
  /** This enclave's signed seal receipt (seal-receipt.ts, at most MAX_SIGNED_SEAL_RECEIPT_BYTES). */
  receipt: Uint8Array;
}

/**
 * After the host committed the sealed share: make it the wallet's active share.
 * A refresh's commit carries its commit certificate: the n signed wallet
 * statements of the new generation (wallet-statement.ts) and, in the same
 * order, the attestation documents whose channel keys signed them. The
 * enclave verifies it (src/enclave/commit-certificate.ts) and from then on
 * refuses any older share of the wallet (stale_share) for as long as it runs.
 */
export interface ActivateShareRequest {
  sessionId: Uint8Array;
  walletId: string;
  /**
   * One seal receipt (seal-receipt.ts) from every party of the session, in any order; the
   * enclave refuses to activate without them (src/enclave/seal-receipts.ts). Optional in the
   * type only so a refusal is the enclave's own bad_request.
   */
  sealReceipts?: Uint8Array[];
  certificateStatements?: Uint8Array[];
  certificateDocuments?: Uint8Array[];
}

/**
 * Retire a wallet (issue 11 item 3): its share must be loaded (LOAD_SHARE),
 * because the approvals are checked against the policy sealed with it
 * (operation "retire"). On success the enclave wipes the share, drops any
 * pending one, and refuses the wallet (`not_found`) in every later
 * LOAD_SHARE and CEREMONY_START for as long as it runs.
 */
export interface RetireWalletRequest {
  walletId: string;
  requestId?: string;
  approvalRequest?: Uint8Array;
  approvals?: Uint8Array[];
}
export const RETIRE_WALLET_FIELDS: readonly string[] = [
  "walletId",
  "requestId",
  "approvalRequest",
  "approvals",
];
export interface RetireWalletReply {
  walletId: string;
  partyIndex: number;
  generation: number;
  /** The sealed policy the approvals were checked against (absent: a development wallet without one). */
  policyHash?: Uint8Array;
  /** Key ids (32 bytes each) of the approvers whose approvals counted. */
  approverKeyIds: Uint8Array[];
}

/**
 * Is this node's share of a wallet superseded by a share repair (issue 11 item 1,
 * src/enclave/supersession.ts)? The host names its own active row (ShareBinding) and hands in
 * evidence it gathered from its peers: the n signed wallet statements of a newer generation
 * with, in the same order, the attestation documents whose channel keys signed them, and one
 * active proof (active-proof.ts) per party index of that generation, each made for `nonce`,
 * which this enclave issued (SUPERSESSION_NONCE) and takes back now, used or not. The enclave
 * answers only if it verified all of it itself: the statements are of the same wallet key at
 * a newer generation, every holder's enclave holds that generation loaded now, and this
 * node's party index is held there by an enclave of another machine (another PCR4). Anything
 * else: an error, and the host deletes nothing.
 */
export interface SupersededShareRequest extends ShareBinding {
  statements: Uint8Array[];
  documents: Uint8Array[];
  nonce: Uint8Array;
  activeProofs: Uint8Array[];
}
export const SUPERSEDED_SHARE_FIELDS: readonly string[] = [
  "walletId",
  "partyIndex",
  "generation",
  "publicKey",
  "statements",
  "documents",
  "nonce",
  "activeProofs",
];
/** A fresh single-use nonce for one SUPERSEDED_SHARE of the wallet (short-lived; memory only). */
export interface SupersessionNonceRequest {
  walletId: string;
}
export const SUPERSESSION_NONCE_FIELDS: readonly string[] = ["walletId"];
export interface SupersessionNonceReply {
  nonce: Uint8Array;
}
/**
 * A holder's enclave signs, for another enclave's nonce, which share of the wallet it holds
 * loaded now (active-proof.ts): what a lost node's enclave needs from every holder of a newer
 * generation before it lets its host delete (supersession.ts).
 */
export interface ProveActiveRequest {
  walletId: string;
  nonce: Uint8Array;
}
export const PROVE_ACTIVE_FIELDS: readonly string[] = ["walletId", "nonce"];
export interface ProveActiveReply {
  /** The signed active proof. */
  proof: Uint8Array;
}
export interface SupersededShareReply {
  walletId: string;
  partyIndex: number;
  /** The superseded row's generation, as the request named it. */
  generation: number;
  /** The newer committed generation the evidence proves. */
  supersededBy: number;
  /**
   * PCR4 of the machine whose enclave holds this party index at that generation; absent when
   * that generation has fewer parties than this index (the holder left the committee).
   */
  holderPcr4?: Uint8Array;
}
