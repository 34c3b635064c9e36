/** Public types of the SDK: options, progress and results as in docs/mqtt-api.md. */
import type { SignatureForms } from "../shared/signature.ts";
import type { ApprovalPolicy } from "../shared/wire/approval.ts";
import type { KeyType } from "../shared/wire/key-type.ts";
import type { ApprovalOptions } from "./approval-request.ts";
import type { ApprovalSigner } from "./signers.ts";
import type { VerifiedWallet, WalletTrust } from "./wallet-verification.ts";

export type { ApprovalOptions, ApprovalPolicy, KeyType };

export type { SignatureForms };

export interface TlsOptions {
  /** CA certificate(s) (PEM) that the broker's certificate must chain to. */
  ca?: string | Buffer | string[] | Buffer[];
  /** Client certificate and key (PEM), for brokers that require them. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Defaults to true; false only for development brokers. */
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface ConnectOptions {
  /** mqtt://host:port, mqtts://host:port, ws://… or wss://… */
  url: string;
  /**
   * MQTT client id when connecting without a username; default `tss-` + 12 random bytes. No `/`,
   * `+`, `#`. With a username the client id is the username (the broker binds the two and lets a
   * user read only tss/v1/responses/<username>/#), and this is ignored.
   */
  clientId?: string;
  username?: string;
  password?: string;
  /** TLS settings for mqtts:// and wss:// URLs. */
  tls?: TlsOptions;
  /** Default deadline of every request (default 180000 ms); connecting waits at most min(this, 30000) ms. */
  timeoutMs?: number;
  /**
   * Whom to believe about a wallet (src/client/wallet-verification.ts): with it, every
   * dkg, wallet, wallets and refresh answer must be vouched for by all n holders'
   * attested enclaves, and a signature must verify against that verified key (and path).
   */
  trust?: WalletTrust;
}

export type Stage = "dkg" | "sign" | "refresh" | "prepare" | "persist";

export interface Progress {
  stage: Stage;
  phase: number;
  of: number;
  /** The node coordinating the request; the SDK fails with `coordinator_lost` if its presence goes offline. */
  coordinator?: string;
}

export interface QueryOptions {
  /**
   * 1-128 characters of [A-Za-z0-9._:-]; default a fresh random id
   * (`newRequestId()`). Repeating a request with the same id returns the
   * stored result and never runs a second ceremony, so to retry safely after a
   * timeout or crash, choose (and persist) the id yourself and send it again.
   */
  requestId?: string;
  /** This request's deadline, overriding the client's timeoutMs. */
  timeoutMs?: number;
}

export interface RequestOptions extends QueryOptions {
  /** Called for each progress message the coordinator sends. */
  onProgress?: (p: Progress) => void;
}

/**
 * The key type a request creates or expects (docs/mqtt-api.md "Key types"); default and today
 * the only one: "secp256k1-ecdsa". Another value is refused with `bad_request` before anything
 * is sent, and a node refuses one it does not support.
 */
export interface KeyTypeOption {
  keyType?: KeyType;
}

export interface CreateWalletOptions extends RequestOptions, KeyTypeOption {
  /** Default 3 (decided by the node; with `admins`, the client's default is the same). */
  threshold?: number;
  /** Default 5 (decided by the node; with `admins`, the client's default is the same). */
  parties?: number;
  /** Who approves the wallet's sign and refresh requests, and how many must (sealed with every share). */
  policy?: ApprovalPolicy;
  /** Cluster administrator keys approving this DKG (the enclaves' built-in administrators' policy). */
  admins?: readonly ApprovalSigner[];
  /** Seconds the administrators' approvals stay valid (default 300). */
  approvalSeconds?: number;
  /** The new wallet's id; default a fresh random one (the approvals name it). */
  walletId?: string;
}

/**
 * Importing an existing secp256k1 key as a new wallet (operation "import"): the key is sealed
 * to one attested enclave (HPKE), dealt to n attested enclaves and refreshed at once.
 */
export interface ImportKeyOptions extends RequestOptions, KeyTypeOption {
  /** The 32-byte big-endian secret key; wiped by importKey once sealed, whatever happens. */
  secretKey: Uint8Array;
  /** Its BIP-32 chain code (32 bytes), if child keys must stay the same; wiped too. Default: a fresh one. */
  chainCode?: Uint8Array;
  /** Default 3. */
  threshold?: number;
  /** Default 5; at most 5 (MAX_IMPORT_PARTIES). */
  parties?: number;
  /** Who approves the new wallet's sign and refresh requests (sealed with every share). */
  policy: ApprovalPolicy;
  /** Cluster administrator keys approving the import of exactly this sealed key. */
  admins: readonly ApprovalSigner[];
  /** Approvers under `policy` for the refresh that follows at once (default: `admins`). */
  signers?: readonly ApprovalSigner[];
  /** Seconds the approvals stay valid (default 300). */
  approvalSeconds?: number;
  /**
   * The new wallet's id; default a fresh random one (the envelope and approvals name it). To
   * retry after a timeout, pass the same walletId and requestId: a completed import is answered
   * from the stored result (the retry's fresh envelope is not used).
   */
  walletId?: string;
  /** The node whose enclave the key is sealed to; default: the one that answers importTarget. */
  nodeId?: string;
}

export interface ImportKeyResult extends WalletInfo {
  /** Always true: the wallet's key came from the client. */
  imported: true;
  /** The node whose enclave opened the envelope and dealt the shares. */
  dealerNode: string;
}

export interface SignOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
  /** 32 bytes, or 64 hex characters (optional 0x): the hash to sign, not hashed again. */
  digest: Uint8Array | string;
  /** Non-hardened BIP-32 path such as "m/0/7": sign with that child key. */
  path?: string;
}

export interface RefreshOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
}

/**
 * Moving party `party` of a wallet to node `toNode` (share repair): approved by `signers` under
 * the wallet's policy or by the administrators (operation "repair", naming the party and the
 * target machine's PCR4 from its verified attestation document); the complete refresh that
 * follows at once is approved by `refreshSigners` (default `signers`) under the wallet's policy.
 */
export interface RepairShareOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
  party: number;
  toNode: string;
  refreshSigners?: ApprovalOptions["signers"];
  /**
   * The target machine's PCR4 (lowercase hex, 48 bytes) from the operator's inventory: what ties
   * the approval to `toNode`'s machine. With ConnectOptions.trust the target's attestation
   * document is fetched and verified too, and its PCR4 must equal this one (else
   * unverified_wallet); without it, that document's PCR4 alone is approved, which only shows
   * that some attested enclave answered for `toNode`.
   */
  targetPcr4?: string;
}

export interface RepairShareResult extends WalletInfo {
  partyIndex: number;
  /** The node that held the party at the previous generation, if it was online; null: it was not. */
  fromNode: string | null;
  toNode: string;
  /** The holders that rebuilt the party's share for the target. */
  helpers: string[];
  /** The target machine's PCR4 (hex) the repair approval named. */
  targetPcr4: string;
}

/**
 * Resharing a wallet to a new committee (docs/RESHARING.md): approved by `signers` under the
 * wallet's policy or by the administrators (operation "reshare", naming `threshold` and every
 * member's node id and machine PCR4).
 */
export interface ReshareWalletOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
  /** The new threshold. */
  threshold: number;
  /** The whole new committee: every current holder (each keeps its party index) and the nodes to add. */
  nodes: string[];
  /**
   * Each member's machine PCR4 (lowercase hex, 48 bytes) by node id, from the operator's
   * inventory. With ConnectOptions.trust every member's attestation document is verified too
   * and must agree; a member without an entry here is approved on its document alone.
   */
  targetPcr4?: Record<string, string>;
  /**
   * Lets t_old or more holders leave. Weakens the wallet until each has deleted its old share:
   * together they could still sign with the old sharing (`leaving[].replaced` says who deleted).
   */
  allowOldQuorumLeaving?: boolean;
  /** Lets offline holders leave: each deletes only when it is back and checks; until then it keeps its old share. */
  allowOfflineLeaving?: boolean;
}

/** A holder the reshare left out (docs/RESHARING.md "Leaving"). */
export interface ReshareLeaver {
  partyIndex: number;
  /** Absent for an offline leaver the coordinator has no membership record of. */
  nodeId?: string;
  online: boolean;
  /** Its own enclave verified the new sharing and its host deleted the old share (online leavers only). */
  replaced: boolean;
}

export interface ReshareWalletResult extends WalletInfo {
  fromThreshold: number;
  fromParties: number;
  /** The holders that dealt (every previous holder). */
  dealers: string[];
  /** The nodes that joined. */
  added: string[];
  /** The holders left out, by party index; any with `replaced: false` still holds an old share. */
  leaving: ReshareLeaver[];
  /** The PCR4 (hex) the approval named for each member. */
  committeePcr4: Record<string, string>;
}

/** Retiring a wallet for good: approved by `signers` under the wallet's policy (operation "retire"). */
export interface RetireWalletOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
}

export interface RetireWalletResult {
  walletId: string;
  keyType: KeyType;
  publicKey: string;
  address: string;
  /** The holders whose enclaves wiped their share and whose hosts deleted the rows, by party index; `earlier`: by a previous retirement. */
  retired: { nodeId: string; partyIndex: number; earlier?: true }[];
  /** Party indices whose holders were offline: their rows stay until a retirement is repeated (fewer than t, so they cannot sign). */
  remaining: number[];
  /** Key ids (lowercase hex) of the approvers whose approvals the enclaves counted. */
  approverKeyIds: string[];
}

/** Replacing a wallet's approval policy: approved by `signers` under the current policy. */
export interface ChangePolicyOptions extends RequestOptions, ApprovalOptions, KeyTypeOption {
  walletId: string;
  /** The new policy: approver keys and how many must approve. */
  policy: ApprovalPolicy;
  /**
   * The hash (32 bytes, or hex) of the policy being replaced, which the approvals name; default:
   * the verified statements' with `trust`, else what the node reports (an enclave refuses a wrong one).
   */
  currentPolicyHash?: Uint8Array | string;
}

export interface WalletInfo {
  walletId: string;
  /** What the key is and signs with; the SDK refuses an answer naming a key type it does not know. */
  keyType: KeyType;
  /** SEC1 public key, lowercase hex. */
  publicKey: string;
  /** EIP-55 checksummed Ethereum address of publicKey. */
  address: string;
  threshold: number;
  parties: number;
  generation: number;
  /** Node ids by party index. */
  nodes: string[];
  /** SHA-256 of the wallet's approval policy encoding, lowercase hex, as the node stores it (the enclaves check it); null: none. */
  policyHash?: string | null;
  /** With `trust` configured: the attested enclaves that vouched for this wallet, by party index. */
  vouchedBy?: VerifiedWallet["vouchedBy"];
}

export interface CreateWalletResult extends WalletInfo {
  generation: 0;
}

export interface SignResult {
  walletId: string;
  /** The signature scheme: "secp256k1-ecdsa" (r, s over secp256k1). */
  keyType: KeyType;
  /** Lowercase hex of the signed digest. */
  digest: string;
  path: string | null;
  /** The key that signed: the wallet key, or for a path request the derived child key. */
  publicKey: string;
  address: string;
  signature: SignatureForms;
  signers: string[];
  coordinator: string;
}

export interface RefreshResult {
  walletId: string;
  keyType: KeyType;
  generation: number;
  /** A policy change's new policy hash (lowercase hex). */
  policyHash?: string;
  publicKey: string;
  address: string;
  /** With `trust` configured: the attested enclaves that vouched for the new generation. */
  vouchedBy?: VerifiedWallet["vouchedBy"];
}

export interface WalletsResult {
  wallets: WalletInfo[];
}

export interface NodeInfo {
  nodeId: string;
  /** "degraded": the node's enclave is unreachable; it is not selected for ceremonies. */
  status: "online" | "degraded" | "offline";
  /** Unix time in ms since the node has been in this status. */
  since: number;
  /** Enclave image measurement (hex), when the node reports one. */
  pcr0: string | null;
}

export interface NodesResult {
  nodes: NodeInfo[];
}
