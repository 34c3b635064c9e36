/**
 * One node's host: owns the connection to its enclave and its libsql store,
 * and takes part in ceremonies a coordinator drives. It relays bytes it
 * cannot read (sealed shares, KMS CiphertextBlobs, protocol messages) and
 * never holds a share or a data key: the enclave talks to KMS itself, over
 * TLS through the host's byte relay (kms-relay.ts), and the host only hands
 * it AWS credentials per call (kms-credentials.ts says why that is safe).
 */
import type { Db } from "./store/index.ts";
import {
  abortRefresh,
  appendAudit,
  commitRefresh,
  currentShare,
  getWallet,
  insertActiveShare,
  insertWallet,
  stagePendingShare,
  generationOf,
  findCeremonyByRequest,
  listWalletIds,
} from "./store/index.ts";
import type {
  CeremonyKind,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
} from "../shared/wire/enclave-ops.ts";
import { toHex } from "../shared/hex.ts";
import type { EnclaveClient } from "./enclave-client.ts";
import type { CredentialSource } from "./kms-credentials.ts";
import type {
  HeldWallet,
  PersistKind,
  RequestContext,
  StoredRequest,
} from "../shared/wire/node-rpc.ts";
import type { Participant, PreparedShare, WalletRecord } from "./participant.ts";

export type { HeldWallet } from "../shared/wire/node-rpc.ts";

export interface NodeHostOptions {
  nodeId: string;
  enclave: EnclaveClient;
  /** AWS credentials handed to the enclave with each LOAD_SHARE / SEAL_SHARE. */
  credentials: CredentialSource;
  db: Db;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export class NodeHost implements Participant {
  readonly nodeId: string;
  private readonly enclave: EnclaveClient;
  private readonly credentials: CredentialSource;
  readonly db: Db;
  private readonly log: NonNullable<NodeHostOptions["log"]>;
  /** Generation loaded in the enclave per wallet, as the enclave confirmed it. */
  private readonly loaded = new Map<string, PreparedShare>();

  constructor(o: NodeHostOptions) {
    this.nodeId = o.nodeId;
    this.enclave = o.enclave;
    this.credentials = o.credentials;
    this.db = o.db;
    this.log = o.log ?? (() => {});
    // A restarted enclave holds no shares and has new per-boot keys: forget both, reload lazily.
    o.enclave.onChannelEvent?.((e) => {
      if (e.state !== "lost") return;
      this.loaded.clear();
      this.attested = null;
    });
  }

  /** This node's view of a wallet it holds a share of, or null. */
  walletInfo(walletId: string): HeldWallet | null {
    const w = getWallet(this.db, walletId);
    if (!w) return null;
    let share;
    try {
      share = currentShare(this.db, walletId, this.nodeId);
    } catch {
      return null;
    }
    return {
      walletId,
      nodeId: this.nodeId,
      threshold: w.threshold,
      parties: w.parties,
      publicKey: w.publicKey,
      publicPackage: w.publicPackage,
      chainCode: w.chainCode,
      ...(w.policy === undefined ? {} : { policy: w.policy }),
      generation: w.currentGeneration,
      partyIndex: share.partyIndex,
    };
  }

  listWallets(): HeldWallet[] {
    return listWalletIds(this.db)
      .map((id) => this.walletInfo(id))
      .filter((w): w is HeldWallet => w !== null);
  }

  /** A client request this node coordinated, under its request id (for idempotent request ids). */
  lookupRequest(kind: CeremonyKind, requestId: string): StoredRequest | null {
    const c = findCeremonyByRequest(this.db, kind, requestId);
    return c ? { status: c.status, result: c.result, error: c.error } : null;
  }

  /** What a coordinator asks before a ceremony, in one call: the stored outcome of the request, and this node's share of its wallet. */
  requestContext(kind: CeremonyKind, requestId: string, walletId?: string): RequestContext {
    return {
      request: this.lookupRequest(kind, requestId),
      wallet: walletId === undefined ? null : this.walletInfo(walletId),
    };
  }

  async prepare(walletId: string): Promise<PreparedShare> {
    const current = generationOf(this.db, walletId);
    const have = this.loaded.get(walletId);
    if (have && have.generation === current) return have;
    const stored = currentShare(this.db, walletId, this.nodeId);
    const wallet = getWallet(this.db, walletId)!;
    // The enclave asks KMS itself (Decrypt with its own Recipient attestation and
    // the encryption context it builds); the host supplies only the stored row.
    const credentials = await this.credentials();
    try {
      const r = await this.enclave.loadShare({
        walletId,
        partyIndex: stored.partyIndex,
        generation: stored.generation,
        publicKey: wallet.publicKey,
        sealed: stored.sealedShare,
        ciphertextBlob: stored.kmsCiphertextBlob,
        // Its hash is sealed in the share's associated data: the enclave opens nothing with another.
        policy: wallet.policy,
        ...credentials,
      });
      const prepared = { walletId, generation: r.generation, partyIndex: r.partyIndex };
      this.loaded.set(walletId, prepared);
      return prepared;
    } catch (e) {
      const code = (e as { code?: string }).code;
      // The enclave answers every load failure (KMS, unwrap, AEAD, share check) alike.
      if (code === "unseal_failed") {
        appendAudit(this.db, this.nodeId, {
          event: "unseal_failed",
          walletId,
          generation: stored.generation,
          code: "auth_failed",
        });
      }
      throw e;
    }
  }

  /**
   * The enclave's document, reused for a minute: it binds per-boot keys, not a
   * session, so reuse lets peers' enclaves skip re-verifying it (session
   * freshness comes from the session id; enclaves refuse documents older than
   * their freshness limit).
   */
  async attestation(): Promise<Uint8Array> {
    const now = Date.now();
    if (!this.attested || now - this.attested.at > 60_000)
      this.attested = { document: (await this.enclave.attest({})).document, at: now };
    return this.attested.document;
  }
  private attested: { document: Uint8Array; at: number } | null = null;

  async start(req: CeremonyStartRequest): Promise<CeremonyReply> {
    try {
      return await this.enclave.startCeremony(req);
    } catch (e) {
      this.auditRefusal(req, e);
      // The enclave keeps shares under a memory budget and may have evicted
      // this wallet's since prepare(). It refuses such a start before the
      // session id is claimed and before anything is produced, so loading the
      // share again and making the same start once more is not a protocol
      // retry: the coordinator only sees a slower start.
      if (req.kind === "dkg" || (e as { code?: string }).code !== "share_not_loaded") throw e;
      this.loaded.delete(req.walletId);
      await this.prepare(req.walletId);
      return this.enclave.startCeremony(req);
    }
  }

  /**
   * An enclave's approval refusal goes into this node's own audit log, so a
   * start that an unapproved coordinator drove here is on record at every
   * participant, not only at the coordinator (which may be the attacker).
   */
  private auditRefusal(req: CeremonyStartRequest, e: unknown): void {
    const err = e as { code?: unknown; reason?: unknown; message?: unknown };
    if (typeof err.reason !== "string" || typeof req.requestId !== "string") return;
    appendAudit(this.db, this.nodeId, {
      event: "approval_decided",
      ...(req.kind === "dkg" ? {} : { walletId: req.walletId }),
      requestId: req.requestId,
      operation: req.kind,
      decision: "refused",
      decidedBy: this.nodeId,
      refusal: err.reason,
      reason: typeof err.message === "string" ? err.message.slice(0, 200) : String(err.code),
    });
  }

  step(req: CeremonyStepRequest): Promise<CeremonyReply> {
    return this.enclave.stepCeremony(req);
  }

  async abort(sessionId: Uint8Array): Promise<void> {
    try {
      await this.enclave.abortCeremony({ sessionId });
    } catch (e) {
      this.log("abort_failed", {
        session: toHex(sessionId).slice(0, 16),
        error: (e as Error).message,
      });
    }
  }

  async persist(
    kind: PersistKind,
    sessionId: Uint8Array,
    wallet: WalletRecord,
    final: CeremonyReply,
  ): Promise<void> {
    const generation = final.generation;
    // The enclave takes a fresh data key from its own GenerateDataKey-with-Recipient
    // call, seals the share under it and returns what the host stores.
    const sealed = await this.enclave.sealShare({
      sessionId,
      walletId: wallet.walletId,
      ...(await this.credentials()),
    });
    if (sealed.generation !== generation)
      throw new Error(
        `enclave sealed generation ${sealed.generation}, the ceremony produced ${generation}`,
      );
    const share = {
      walletId: wallet.walletId,
      nodeId: this.nodeId,
      partyIndex: sealed.partyIndex,
      generation,
      sealedShare: sealed.sealed,
      kmsCiphertextBlob: sealed.ciphertextBlob,
      kmsKeyId: sealed.kmsKeyId,
    };
    if (kind === "dkg") {
      this.db.transaction(() => {
        if (!getWallet(this.db, wallet.walletId)) {
          insertWallet(this.db, { ...wallet, generation: 0 });
          appendAudit(this.db, this.nodeId, {
            event: "wallet_created",
            walletId: wallet.walletId,
            threshold: wallet.threshold,
            parties: wallet.parties,
            publicKeyHex: toHex(wallet.publicKey),
          });
        }
        insertActiveShare(this.db, share);
      });
      appendAudit(this.db, this.nodeId, {
        event: "share_stored",
        walletId: wallet.walletId,
        generation,
        partyIndex: share.partyIndex,
        status: "active",
      });
    } else {
      stagePendingShare(this.db, share);
      appendAudit(this.db, this.nodeId, {
        event: "share_stored",
        walletId: wallet.walletId,
        generation,
        partyIndex: share.partyIndex,
        status: "pending",
      });
    }
  }

  async commit(
    kind: PersistKind,
    sessionId: Uint8Array,
    walletId: string,
    generation: number,
  ): Promise<void> {
    if (kind === "refresh") {
      const r = commitRefresh(this.db, walletId, this.nodeId, generation);
      appendAudit(this.db, this.nodeId, {
        event: "refresh_committed",
        walletId,
        fromGeneration: r.fromGeneration,
        toGeneration: r.toGeneration,
      });
    }
    const a = await this.enclave.activateShare({ sessionId, walletId });
    this.loaded.set(walletId, { walletId, generation: a.generation, partyIndex: a.partyIndex });
  }

  async rollback(kind: PersistKind, sessionId: Uint8Array, walletId: string): Promise<void> {
    await this.abort(sessionId);
    if (kind === "refresh") {
      abortRefresh(this.db, walletId, this.nodeId);
      appendAudit(this.db, this.nodeId, {
        event: "refresh_aborted",
        walletId,
        reason: "a participant failed to persist its new share",
      });
    }
  }
}
