/**
 * The key shares this enclave holds: the loaded (current) share per wallet,
 * and the shares a finished DKG/refresh produced that wait to be sealed and
 * then activated. Shares are sealed and opened under data keys this enclave
 * obtains from KMS itself (share-sealing.ts); what the host hands in is
 * checked here.
 */
import { fromHex, toHex } from "../shared/hex.ts";
import {
  LOAD_SHARE_FIELDS,
  MAX_CIPHERTEXT_BLOB_BYTES,
  SEAL_SHARE_FIELDS,
  type ActivateShareRequest,
  type LoadShareReply,
  type LoadShareRequest,
  type SealShareReply,
  type SealShareRequest,
} from "../shared/wire/enclave-ops.ts";
import { MAX_SEALED_BYTES, PUBLIC_KEY_BYTES } from "../shared/wire/sealed-share.ts";
import { MAX_POLICY_BYTES, policyHash } from "../shared/wire/approval.ts";
import { openTrustedPolicy, type TrustedPolicy } from "./approvals.ts";
import type { CertificateSubject } from "./commit-certificate.ts";
import { ownSealReceipt, type ReceiptSession, verifySealReceipts } from "./seal-receipts.ts";
import { publicPackageHash } from "../shared/wire/wallet-statement.ts";
import { type KeyShare, packageInfo } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import {
  needBytes,
  needCredentials,
  needInt,
  needOnlyFields,
  needWalletId,
} from "./request-checks.ts";
import { ShareCache, type ShareCacheStats, type SharePin } from "./share-cache.ts";
import {
  openSealedShare,
  sealWithFreshKey,
  UNSEAL_FAILED_MESSAGE,
  type ShareKeyOwner,
} from "./share-sealing.ts";

export interface LoadedShare {
  share: KeyShare;
  generation: number;
  partyIndex: number;
  publicKey: Uint8Array;
  /** The wallet's approval policy, whose hash the share was sealed with; null: a version 1 share, sealed without one. */
  policy: TrustedPolicy | null;
}

/** A share produced by DKG/refresh, waiting to be sealed and then activated. */
export interface PendingShare {
  walletId: string;
  share: KeyShare;
  /** Sealed with the share (its hash in the associated data) and kept when it is activated. */
  policy: TrustedPolicy | null;
  sealed: boolean;
  /** A SEAL_SHARE is waiting for KMS. */
  sealing: boolean;
  expires: number;
  /** The session's parties' channel keys, to sign this enclave's seal receipt and check everyone's (seal-receipts.ts). */
  receipts: ReceiptSession;
}

export class ShareTable {
  /** Bounded by a memory budget; least recently used shares are evicted and wiped (share-cache.ts). */
  private readonly loaded: ShareCache<LoadedShare>;
  /** By session id (hex) of the ceremony that produced them. */
  private readonly pending = new Map<string, PendingShare>();
  /**
   * Per wallet, the highest generation a commit certificate this enclave
   * verified named (commit-certificate.ts): no older share is loaded or used.
   * Memory only: a restarted enclave starts with none.
   */
  private readonly certified = new Map<string, number>();

  constructor(
    /** KMS, recipient key and attestation: null when the enclave was started without KMS settings. */
    private readonly owner: ShareKeyOwner | null,
    /** This enclave's node identity (PCR4 hex): bound into every share it seals or opens. */
    private readonly nodeIdentity: string,
    private readonly log: (event: string, fields: Record<string, unknown>) => void,
    /** How long a finished DKG/refresh share may wait to be sealed and activated. */
    private readonly pendingTtlMs: number,
    /** Memory budget of the loaded shares in bytes (default DEFAULT_SHARE_BUDGET_BYTES). */
    shareBudgetBytes?: number,
  ) {
    this.loaded = new ShareCache(shareBudgetBytes, (walletId) =>
      this.log("share_evicted", { walletId }),
    );
  }

  /** Wallets with a loaded share. */
  get size(): number {
    return this.loaded.size;
  }

  /** The wallet's loaded share, if cached; counts nothing. */
  current(walletId: string): LoadedShare | undefined {
    return this.loaded.peek(walletId);
  }

  /**
   * The loaded share a ceremony starts with, held (never evicted) until the
   * pin is released when the ceremony ends. Counts a cache hit or miss.
   */
  pin(walletId: string): SharePin<LoadedShare> {
    const pin = this.loaded.pin(walletId);
    if (!pin)
      throw new EnclaveError(
        "share_not_loaded",
        `no share of wallet ${walletId} is loaded in this enclave`,
      );
    return pin;
  }

  /** stale_share when `generation` is below the wallet's highest certified generation. */
  refuseIfStale(walletId: string, generation: number): void {
    const floor = this.certified.get(walletId);
    if (floor !== undefined && generation < floor)
      throw new EnclaveError(
        "stale_share",
        `wallet ${walletId}: this enclave verified a commit certificate for generation ${floor}; generation ${generation} is refused`,
      );
  }

  /** Budget, use and hit counts of the loaded shares, for HEALTH. */
  cacheStats(): ShareCacheStats {
    return this.loaded.stats();
  }

  /** Opens a stored sealed share through this enclave's own KMS Decrypt and makes it the wallet's current share. */
  async load(req: LoadShareRequest): Promise<LoadShareReply> {
    needOnlyFields(req, LOAD_SHARE_FIELDS, "LOAD_SHARE");
    const walletId = needWalletId(req.walletId);
    const partyIndex = needInt(req.partyIndex, "partyIndex", 1, 16);
    const generation = needInt(req.generation, "generation", 0, 2 ** 32 - 1);
    // The generation is bound into the associated data, so it is what would open: refused before KMS.
    this.refuseIfStale(walletId, generation);
    const publicKey = needBytes(req.publicKey, "publicKey", PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES);
    const sealed = needBytes(req.sealed, "sealed", 1, MAX_SEALED_BYTES);
    const ciphertextBlob = needBytes(
      req.ciphertextBlob,
      "ciphertextBlob",
      1,
      MAX_CIPHERTEXT_BLOB_BYTES,
    );
    const policy = this.storedPolicy(req.policy);
    const credentials = needCredentials(req);
    const owner = this.keyOwner();
    // The hash of the policy the host handed in goes into the associated data: a swapped or
    // dropped policy fails authentication, so what opens is the policy the share was sealed with.
    const binding = {
      walletId,
      nodeId: this.nodeIdentity,
      partyIndex,
      generation,
      publicKey,
      ...(policy === null ? {} : { policyHash: policy.hash }),
    };
    const share = await openSealedShare(owner, { binding, sealed, ciphertextBlob, credentials });
    this.put(walletId, { share, generation, partyIndex, publicKey: share.publicKey, policy });
    this.log("share_loaded", { walletId, generation, partyIndex });
    return { walletId, generation, partyIndex };
  }

  /** Keeps the share a ceremony (session `id`) produced until it is sealed and activated, or expires. */
  holdPending(
    id: string,
    walletId: string,
    share: KeyShare,
    policy: TrustedPolicy | null,
    receipts: ReceiptSession,
  ): void {
    this.sweepPending();
    this.pending.set(id, {
      walletId,
      share,
      policy,
      sealed: false,
      sealing: false,
      expires: Date.now() + this.pendingTtlMs,
      receipts,
    });
  }

  /** Frees the share session `id` produced, if one waits. */
  dropPending(id: string): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    p.share.free();
    this.pending.delete(id);
    return true;
  }

  /** Seals the share session `sessionId` produced under a data key from this enclave's own GenerateDataKey. */
  async seal(req: SealShareRequest): Promise<SealShareReply> {
    needOnlyFields(req, SEAL_SHARE_FIELDS, "SEAL_SHARE");
    const id = toHex(needBytes(req.sessionId, "sessionId", 32, 32));
    const p = this.waiting(id);
    if (p.walletId !== req.walletId)
      throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    if (p.sealing)
      throw new EnclaveError("bad_request", "this session's key share is already being sealed");
    const credentials = needCredentials(req);
    const owner = this.keyOwner();
    const binding = {
      walletId: p.walletId,
      nodeId: this.nodeIdentity,
      partyIndex: p.share.index,
      generation: p.share.generation,
      publicKey: p.share.publicKey,
      ...(p.policy === null ? {} : { policyHash: p.policy.hash }),
    };
    p.sealing = true;
    try {
      const out = await sealWithFreshKey(
        owner,
        binding,
        credentials,
        // While KMS answered, the share may have been dropped (and freed) or have expired.
        () => {
          if (this.waiting(id) !== p) throw this.noneWaiting(id);
        },
        () => p.share.toBytes(),
      );
      p.sealed = true;
      return {
        ...out,
        generation: binding.generation,
        partyIndex: binding.partyIndex,
        publicKey: binding.publicKey,
        // The host hands it on only once it stored the sealed share (node-host.ts persist).
        receipt: ownSealReceipt(p.receipts, this.receiptSubject(id, p)),
      };
    } finally {
      p.sealing = false;
    }
  }

  /** What the receipts of pending share `p` (session `id`) state; partyIndex is this enclave's. */
  private receiptSubject(id: string, p: PendingShare) {
    return {
      sessionId: fromHex(id),
      ceremony: p.receipts.ceremony,
      walletId: p.walletId,
      partyIndex: p.share.index,
      generation: p.share.generation,
      publicPackageHash: publicPackageHash(p.share.publicPackage()),
    };
  }

  /**
   * The host stored the sealed share (and, for refresh, committed): use it from now on.
   * Only with a seal receipt from every party of the session (seal-receipts.ts).
   * A commit certificate with it is checked by `verifyCertificate` (the subject is this
   * share); a valid one raises the wallet's certified generation.
   */
  activate(
    req: ActivateShareRequest,
    verifyCertificate?: (subject: CertificateSubject) => number,
  ): LoadShareReply {
    const id = toHex(req.sessionId);
    const p = this.pending.get(id);
    if (!p || !p.sealed)
      throw new EnclaveError(
        "unknown_session",
        `no sealed key share waits for session ${id.slice(0, 16)}…`,
      );
    if (p.walletId !== req.walletId)
      throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    this.refuseIfStale(p.walletId, p.share.generation);
    // Every holder of the session sealed (and, by its host's word, stored) its share: else no
    // coordinator can commit this session here while another holder never stored it.
    verifySealReceipts(req.sealReceipts, this.receiptSubject(id, p), p.receipts);
    const withCertificate =
      req.certificateStatements !== undefined || req.certificateDocuments !== undefined;
    const certified =
      withCertificate && verifyCertificate
        ? verifyCertificate({
            walletId: p.walletId,
            generation: p.share.generation,
            partyIndex: p.share.index,
            publicPackageHash: publicPackageHash(p.share.publicPackage()),
          })
        : undefined;
    if (withCertificate && certified === undefined)
      throw new EnclaveError("bad_request", "this enclave cannot check commit certificates");
    this.pending.delete(id);
    if (certified !== undefined) {
      this.certified.set(p.walletId, Math.max(certified, this.certified.get(p.walletId) ?? 0));
      this.log("generation_certified", { walletId: p.walletId, generation: certified });
    }
    const info = packageInfo(p.share.publicPackage());
    this.put(p.walletId, {
      share: p.share,
      generation: p.share.generation,
      partyIndex: p.share.index,
      publicKey: info.publicKey,
      policy: p.policy,
    });
    this.log("share_activated", { walletId: p.walletId, generation: p.share.generation });
    return { walletId: p.walletId, generation: p.share.generation, partyIndex: p.share.index };
  }

  /**
   * Wipes the wallet's loaded share and every pending one it has (retirement,
   * lifecycle-retire.ts). A share an open ceremony holds is freed when it ends.
   */
  forget(walletId: string): void {
    this.loaded.drop(walletId);
    for (const [id, p] of this.pending)
      if (p.walletId === walletId) {
        p.share.free();
        this.pending.delete(id);
      }
  }

  /** Whether a DKG/refresh share of the wallet waits here to be sealed or activated (supersession.ts). */
  hasPending(walletId: string): boolean {
    for (const p of this.pending.values()) if (p.walletId === walletId) return true;
    return false;
  }

  /**
   * A share repair moved this node's party to another machine at `generation` (verified
   * evidence, supersession.ts): the loaded share goes, and no share of the wallet below that
   * generation is loaded or used from now on, as after a commit certificate.
   */
  supersede(walletId: string, generation: number): void {
    this.loaded.drop(walletId);
    this.certified.set(walletId, Math.max(generation, this.certified.get(walletId) ?? 0));
    this.log("share_superseded", { walletId, generation });
  }

  /** Frees every share (shutdown). */
  clear(): void {
    for (const p of this.pending.values()) p.share.free();
    this.loaded.clear();
    this.pending.clear();
  }

  /**
   * The policy a LOAD_SHARE hands in, parsed and its keys checked; null when
   * absent. A malformed one fails like every other load failure.
   */
  private storedPolicy(encoding: unknown): TrustedPolicy | null {
    if (encoding === undefined) return null;
    try {
      const bytes = needBytes(encoding, "policy", 1, MAX_POLICY_BYTES);
      return openTrustedPolicy(bytes, policyHash(bytes));
    } catch {
      throw new EnclaveError("unseal_failed", UNSEAL_FAILED_MESSAGE);
    }
  }

  /** Evicts least recently used shares to make room; capacity_exceeded (the share freed) if it cannot fit. */
  private put(walletId: string, s: LoadedShare): void {
    this.loaded.put(walletId, s);
  }

  /** The unexpired pending share of session `id`. */
  private waiting(id: string): PendingShare {
    const p = this.pending.get(id);
    if (!p || p.expires < Date.now()) throw this.noneWaiting(id);
    return p;
  }

  private noneWaiting(id: string): EnclaveError {
    return new EnclaveError(
      "unknown_session",
      `no finished key share waits for session ${id.slice(0, 16)}…`,
    );
  }

  private keyOwner(): ShareKeyOwner {
    if (!this.owner)
      throw new EnclaveError(
        "kms_not_configured",
        "this enclave was started without --kms-relay/--kms-endpoint/--kms-region/--kms-key-id",
      );
    return this.owner;
  }

  private sweepPending(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.expires < now) {
        p.share.free();
        this.pending.delete(id);
      }
    }
  }
}
