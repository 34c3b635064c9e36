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
  findClientRequest,
  listWalletIds,
  dropWalletStatementsAfter,
  dropWalletStatementsBefore,
  getWalletStatement,
  putWalletStatement,
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
import { ConcurrencyCap, DEFAULT_MAX_CEREMONIES } from "./rate-limits.ts";

export type { HeldWallet } from "../shared/wire/node-rpc.ts";

export interface NodeHostOptions {
  nodeId: string;
  enclave: EnclaveClient;
  /** AWS credentials handed to the enclave with each LOAD_SHARE / SEAL_SHARE. */
  credentials: CredentialSource;
  db: Db;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Ceremonies this node takes part in at once (rate-limits.ts DEFAULT_MAX_CEREMONIES). */
  maxCeremonies?: number;
  /**
   * How long a ceremony counts against maxCeremonies at most, when its
   * coordinator never sends the last phase or an abort; default
   * DEFAULT_CEREMONY_SLOT_MS (4 phases of the default 120 s deadline, plus a minute).
   */
  ceremonySlotMs?: number;
}

export const DEFAULT_CEREMONY_SLOT_MS = 4 * 120_000 + 60_000;

export class NodeHost implements Participant {
  readonly nodeId: string;
  private readonly enclave: EnclaveClient;
  private readonly credentials: CredentialSource;
  readonly db: Db;
  private readonly log: NonNullable<NodeHostOptions["log"]>;
  /** Generation loaded in the enclave per wallet, as the enclave confirmed it. */
  private readonly loaded = new Map<string, PreparedShare>();
  /** Ceremonies this node takes part in now, by session id (start until last phase, abort or deadline). */
  readonly ceremonies: ConcurrencyCap;

  constructor(o: NodeHostOptions) {
    this.nodeId = o.nodeId;
    this.enclave = o.enclave;
    this.credentials = o.credentials;
    this.db = o.db;
    this.log = o.log ?? (() => {});
    this.ceremonies = new ConcurrencyCap(
      o.maxCeremonies ?? DEFAULT_MAX_CEREMONIES,
      o.ceremonySlotMs ?? DEFAULT_CEREMONY_SLOT_MS,
    );
    // A restarted enclave holds no shares and has new per-boot keys: forget both, reload lazily.
    o.enclave.onChannelEvent?.((e) => {
      if (e.state !== "lost") return;
      this.loaded.clear();
      this.attested = null;
    });
  }

  /** This node's view of a wallet it holds a share of, or null; `vouched`: with its enclave's statement and document. */
  walletInfo(walletId: string, vouched = true): HeldWallet | null {
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
      ...(vouched ? getWalletStatement(this.db, walletId, this.nodeId, w.currentGeneration) : {}),
    };
  }

  listWallets(): HeldWallet[] {
    return listWalletIds(this.db)
      .map((id) => this.walletInfo(id))
      .filter((w): w is HeldWallet => w !== null);
  }

  /** A client request this node coordinated, under its request id (for idempotent request ids). */
  lookupRequest(kind: CeremonyKind, requestId: string, client?: string): StoredRequest | null {
    // Ids are unique per client user (any kind); rows from before that, per kind.
    const c =
      client === undefined
        ? findCeremonyByRequest(this.db, kind, requestId)
        : findClientRequest(this.db, client, requestId);
    return c
      ? {
          status: c.status,
          result: c.result,
          error: c.error,
          paramsHash: c.paramsHash ? Buffer.from(c.paramsHash).toString("hex") : null,
        }
      : null;
  }

  /** What a coordinator asks before a ceremony, in one call: the stored outcome of the request, and this node's share of its wallet. */
  requestContext(
    kind: CeremonyKind,
    requestId: string,
    walletId?: string,
    client?: string,
  ): RequestContext {
    return {
      request: this.lookupRequest(kind, requestId, client),
      // Without the statement and document: planning needs neither, and they are kilobytes per node.
      wallet: walletId === undefined ? null : this.walletInfo(walletId, false),
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
    const slot = toHex(req.sessionId);
    // Refused before the enclave sees the start: nothing claimed, nothing to abort.
    this.ceremonies.acquire(
      slot,
      `node ${this.nodeId} already takes part in its maximum of concurrent ceremonies`,
    );
    try {
      return await this.startInEnclave(req);
    } catch (e) {
      this.ceremonies.release(slot);
      throw e;
    }
  }

  private async startInEnclave(req: CeremonyStartRequest): Promise<CeremonyReply> {
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

  async step(req: CeremonyStepRequest): Promise<CeremonyReply> {
    try {
      const reply = await this.enclave.stepCeremony(req);
      // After the last phase the enclave holds at most a finished share awaiting its seal.
      if (req.phase >= 4) this.ceremonies.release(toHex(req.sessionId));
      return reply;
    } catch (e) {
      // The enclave wipes a session on any failed step.
      this.ceremonies.release(toHex(req.sessionId));
      throw e;
    }
  }

  async abort(sessionId: Uint8Array): Promise<void> {
    this.ceremonies.release(toHex(sessionId));
    try {
      await this.enclave.abortCeremony({ sessionId });
    } catch (e) {
      this.log("abort_failed", {
        session: toHex(sessionId).slice(0, 16),
        error: (e as Error).message,
      });
    }
  }

  // Participant.persist as the interface fixes it; RemoteParticipant has the same signature and relays it.
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
    // Relayed to clients, who verify it (src/client/wallet-verification.ts); the document is
    // this boot's, whose user_data binds the key that signed the statement.
    const vouched =
      final.statement === undefined
        ? null
        : { statement: final.statement, attestation: await this.attestation() };
    const keepStatement = () => {
      if (vouched)
        putWalletStatement(this.db, {
          walletId: wallet.walletId,
          nodeId: this.nodeId,
          generation,
          ...vouched,
        });
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
        keepStatement();
      });
      this.auditShareStored(wallet.walletId, generation, share.partyIndex, "active");
    } else {
      this.db.transaction(() => {
        stagePendingShare(this.db, share);
        keepStatement();
      });
      this.auditShareStored(wallet.walletId, generation, share.partyIndex, "pending");
    }
  }

  private auditShareStored(
    walletId: string,
    generation: number,
    partyIndex: number,
    status: "active" | "pending",
  ): void {
    appendAudit(this.db, this.nodeId, {
      event: "share_stored",
      walletId,
      generation,
      partyIndex,
      status,
    });
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
      dropWalletStatementsBefore(this.db, walletId, this.nodeId, r.toGeneration);
    }
    const a = await this.enclave.activateShare({ sessionId, walletId });
    this.loaded.set(walletId, { walletId, generation: a.generation, partyIndex: a.partyIndex });
  }

  async rollback(kind: PersistKind, sessionId: Uint8Array, walletId: string): Promise<void> {
    await this.abort(sessionId);
    if (kind === "refresh") {
      abortRefresh(this.db, walletId, this.nodeId);
      dropWalletStatementsAfter(this.db, walletId, this.nodeId, generationOf(this.db, walletId));
      appendAudit(this.db, this.nodeId, {
        event: "refresh_aborted",
        walletId,
        reason: "a participant failed to persist its new share",
      });
    }
  }
}
