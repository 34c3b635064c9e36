/**
 * One node's host: owns the connection to its enclave and its libsql store,
 * and takes part in ceremonies a coordinator drives. It relays bytes it
 * cannot read (sealed shares, KMS CiphertextBlobs, protocol messages) and
 * never holds a share or a data key: the enclave talks to KMS itself, over
 * TLS through the host's byte relay (kms-relay.ts), and the host only hands
 * it AWS credentials per call (kms-credentials.ts says why that is safe).
 */
import { randomBytes } from "node:crypto";
import type { Db } from "./store/index.ts";
import {
  abortRefresh,
  appendAudit,
  commitRefresh,
  currentShare,
  currentShareInfo,
  getWallet,
  stagePendingShare,
  generationOf,
  findCeremonyByRequest,
  findClientRequest,
  findSignOutcome,
  listWalletIds,
  dropWalletStatementsAfter,
  dropWalletStatementsBefore,
  getWalletStatement,
  putWalletStatement,
  pendingShares,
  listShares,
  refreshOutcome,
  recordRefreshOutcome,
  runningCeremonies,
  finishCeremony,
  ceremonyAborted,
  StoreError,
  type StoredShare,
} from "./store/index.ts";
import type {
  CeremonyKind,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
} from "../shared/wire/enclave-ops.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { CodedError } from "../shared/wire/errors.ts";
import { approverKeyId, parsePolicy, policyHash } from "../shared/wire/approval.ts";
import { parseSignedWalletStatementUnverified } from "../shared/wire/wallet-statement.ts";
import { parseSignedActiveProofUnverified } from "../shared/wire/active-proof.ts";
import { keepCertificateStatements } from "./wallet-vouchers.ts";
import type { EnclaveClient } from "./enclave-client.ts";
import type { CredentialSource } from "./kms-credentials.ts";
import type {
  CeremonyOutcomeAnswer,
  CommitCertificate,
  HeldWallet,
  NodeStartRequest,
  PersistKind,
  RequestContext,
  StoredRequest,
} from "../shared/wire/node-rpc.ts";
import type { Participant, PreparedShare, WalletRecord } from "./participant.ts";
import { ConcurrencyCap, DEFAULT_MAX_CEREMONIES } from "./rate-limits.ts";
import { SignerOutcomes } from "./signer-outcomes.ts";
import { retireHere } from "./wallet-retirement.ts";
import { commitDkg, isDkgPending, rollbackDkg, stageDkg } from "./dkg-commit.ts";
import { retiredPartyOf } from "./store/wallet-deletion.ts";
import { updateWalletShape } from "./store/wallets-repo.ts";
import {
  dropPendingShape,
  keepPendingShape,
  pendingShape,
  type PendingShape,
} from "./store/pending-shapes-repo.ts";
import { isReshareDealer } from "./wallet-reshare.ts";
import { recordWalletMembers, replacedBy } from "./store/members-repo.ts";
import {
  checkReplacedHere,
  REPLACE_CHECK_INTERVAL_MS,
  type ActiveProofSource,
  type AskedHolder,
} from "./share-repair.ts";
import { commitProof, keepCommitProof } from "./store/commit-proofs-repo.ts";
import { activateWithPeerProof } from "./settle-proof.ts";
import type { NodeOpArgs, RetireOutcome } from "../shared/wire/node-rpc.ts";

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
  /**
   * How old a pending share must be before every other holder also reporting it pending
   * (coordinator gone before any commit) lets this node commit it; default ceremonySlotMs.
   * Within it the coordinator may still be deciding (resolvePending says why that matters).
   */
  pendingGraceMs?: number;
}

export const DEFAULT_CEREMONY_SLOT_MS = 4 * 120_000 + 60_000;

/** One other node's word on a refresh session; null: it did not answer. */
export interface PeerOutcome {
  nodeId: string;
  answer: CeremonyOutcomeAnswer | null;
}

/** Asks the other nodes (all it knows; non-holders answer "unknown") what became of a session. */
export type OutcomeSource = (walletId: string, sessionId: Uint8Array) => Promise<PeerOutcome[]>;

/** What resolvePending did with one pending share. */
export interface PendingResolution {
  walletId: string;
  sessionId: string;
  decision: "committed" | "rolled_back" | "pending";
}

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
  /** The DKG or refresh this node takes part in per wallet (one at a time), until commit, rollback, abort or the slot's end. */
  private readonly walletCeremony = new Map<
    string,
    { session: string; until: number; kind?: PersistKind }
  >();
  private readonly slotMs: number;
  private readonly pendingGraceMs: number;
  /**
   * DKG sessions this node took part in, stored nothing of, and answered "rolled back" for (or
   * was asked by its coordinator to roll back): a persist of one is refused. Bounded, oldest
   * dropped; the enclave's aborted session is the fence that outlives this host.
   */
  private readonly dkgFenced = new Set<string>();
  /**
   * Each DKG/refresh/reshare session started here: the t and n its enclave was
   * started with (a reshare's new ones, a refresh's the wallet row's) and a reshare's committee
   * (node ids in seat order, which the enclave checked against the approval), until phase 4.
   */
  private readonly startedShapes = new Map<
    string,
    { threshold: number; parties: number; committee: string[] | null }
  >();
  /** The same, with the public package this node's own enclave finished with (phase 4), until persisted. */
  private readonly finishedShapes = new Map<string, PendingShape>();
  /** How this node asks its peers about a session (set once the bus is up); null: it cannot. */
  outcomeSource: OutcomeSource | null = null;
  /** How this node asks every other live node for its view of a wallet (share-repair.ts checkReplaced); null: it cannot. */
  holderSource: ((walletId: string) => Promise<AskedHolder[]>) | null = null;
  /** How this node asks one peer for its active proof of the wallet (share-repair.ts); null: it cannot. */
  proofSource: ActiveProofSource | null = null;
  /** When each wallet's replacement check last started (checkReplaced's rate limit). */
  private readonly replaceChecks = new Map<string, number>();
  /** Ceremonies recorded before this moment were cut off by a restart; later ones may be live. */
  private readonly startedAt = Date.now();

  constructor(o: NodeHostOptions) {
    this.nodeId = o.nodeId;
    this.enclave = o.enclave;
    this.credentials = o.credentials;
    this.db = o.db;
    this.log = o.log ?? (() => {});
    this.slotMs = o.ceremonySlotMs ?? DEFAULT_CEREMONY_SLOT_MS;
    this.pendingGraceMs = o.pendingGraceMs ?? this.slotMs;
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
    // Without the sealed share: asked of every node for every request (planning.ts).
    const share = currentShareInfo(this.db, walletId, this.nodeId);
    // A share repair moved its party elsewhere (share-repair.ts checkReplacedHere): refused here.
    if (!share || replacedBy(this.db, walletId, this.nodeId)) return null;
    return {
      walletId,
      nodeId: this.nodeId,
      threshold: w.threshold,
      parties: w.parties,
      publicKey: w.publicKey,
      publicPackage: w.publicPackage,
      chainCode: w.chainCode,
      // A policy change's share row names the policy it is sealed with (migration 9).
      ...((share.policy ?? w.policy) === undefined ? {} : { policy: share.policy ?? w.policy }),
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
        ? findCeremonyByRequest(
            this.db,
            kind === "repair" || kind === "reshare" ? "refresh" : kind,
            requestId,
          )
        : findClientRequest(this.db, client, requestId);
    // Without a client user the parameters are not compared (planning.ts priorOutcome), so a
    // repair's row (kind refresh) must not answer a refresh, nor a refresh's a repair: only a
    // repair stores a parameters hash without a client (share-repair.ts coordinateRepair).
    if (client === undefined && c && (kind === "repair" || kind === "refresh")) {
      const repairs = c.paramsHash !== null;
      if (repairs !== (kind === "repair"))
        return {
          status: "failed",
          result: null,
          error: `request id ${requestId} was used by a ${repairs ? "share repair" : "refresh"}; use a new request id`,
          paramsHash: null,
        };
    }
    if (c?.status !== "succeeded" && client !== undefined) {
      // A signature this node made as a signer of the request, whoever coordinated it
      // (signer-outcomes.ts): the answer reached, where this node's own run failed or never was.
      const kept = findSignOutcome(this.db, client, requestId);
      if (kept)
        return {
          status: "succeeded",
          result: kept.result,
          error: null,
          paramsHash: toHex(kept.paramsHash),
        };
    }
    return c
      ? {
          status: c.status,
          result: c.result,
          error: c.error,
          paramsHash: c.paramsHash ? Buffer.from(c.paramsHash).toString("hex") : null,
        }
      : null;
  }

  /**
   * What a coordinator asks before a ceremony, in one call: the stored outcome of the request, and
   * this node's share of its wallet. With `prepare` (an expected signer), also that share loaded and
   * this node's attestation document, as `prepare` and `attestation` answer them; a refusal to load
   * is an answer (`prepared.error`), so the coordinator still learns the rest.
   */
  requestContext(
    kind: CeremonyKind,
    requestId: string,
    walletId?: string,
    client?: string,
    prepare = false,
  ): RequestContext | Promise<RequestContext> {
    const context: RequestContext = {
      request: this.lookupRequest(kind, requestId, client),
      // Without the statement and document: planning needs neither, and they are kilobytes per node.
      wallet: walletId === undefined ? null : this.walletInfo(walletId, false),
    };
    if (!prepare || walletId === undefined || context.wallet === null) return context;
    return this.prepareAndAttest(walletId).then(
      (p) => ({ ...context, ...p }),
      (e: unknown) => {
        const err = (e ?? {}) as { code?: unknown; message?: unknown };
        const code = typeof err.code === "string" ? err.code : "internal";
        const message = typeof err.message === "string" ? err.message.slice(0, 500) : code;
        return { ...context, prepared: { error: { code, message } } };
      },
    );
  }

  private async prepareAndAttest(
    walletId: string,
  ): Promise<{ prepared: PreparedShare; document: Uint8Array }> {
    const prepared = await this.prepare(walletId);
    return { prepared, document: await this.attestation() };
  }

  async prepare(walletId: string): Promise<PreparedShare> {
    this.refuseReplaced(walletId);
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
        // A policy change's row names its own policy; otherwise the wallet's, as created.
        policy: stored.policy ?? wallet.policy,
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

  /**
   * `caller`: the node RPC caller (absent: this node's own call, as coordinator or in its
   * own recovery). Only the node that started a session may then step or abort it here over
   * RPC, so a holder of other node credentials who learns a session id cannot feed it
   * messages (the enclave would wipe the session) or end it. What identifies a caller is
   * the replies topic it names (node-rpc.ts): a call in another node's name can be made
   * blind, its answer going to that node, so this stops eavesdropping-free meddling, not
   * every denial of service.
   */
  async start(start: NodeStartRequest, caller?: string): Promise<CeremonyReply> {
    // client and signerNodes are for this host (signer-outcomes.ts); the enclave gets the rest.
    const { client: _client, signerNodes: _signers, ...req } = start;
    const slot = toHex(req.sessionId);
    this.refuseOtherCaller(slot, caller, "start");
    // Its enclave may still hold the share loaded from before the replacement.
    if (req.kind !== "dkg") this.refuseReplaced(req.walletId);
    // Refused before the enclave sees the start: nothing claimed, nothing to abort.
    this.ceremonies.acquire(
      slot,
      `node ${this.nodeId} already takes part in its maximum of concurrent ceremonies`,
    );
    try {
      // A repair's term exchange stores nothing; the refresh completing it claims the wallet.
      if (req.kind !== "sign" && req.kind !== "repair")
        await this.claimWallet(
          req.walletId,
          slot,
          // A reshare's dealer stores its next share as a refresh does; a new member, its first.
          req.kind === "reshare" ? (isReshareDealer(req) ? "refresh" : "dkg") : req.kind,
        );
      const { superseded, ...reply } = await this.startInEnclave(req);
      if (superseded !== undefined) this.auditSupersession(slot, toHex(superseded), caller);
      this.rememberStartedShape(slot, req);
      this.starters.set(slot, caller ?? this.nodeId);
      // Ties this node's session id to the client's request id (the coordinator logs the pair too).
      this.log("ceremony_joined", {
        session: slot.slice(0, 16),
        kind: req.kind,
        requestId: req.requestId,
        startedBy: caller ?? this.nodeId,
      });
      this.signerOutcomes.remember(slot, start, caller ?? this.nodeId);
      // Bounded: sessions whose coordinator never ended them are the oldest entries.
      this.keepRecent(this.starters);
      return reply;
    } catch (e) {
      this.ceremonies.release(slot);
      this.releaseWallet(slot);
      throw e;
    }
  }

  /**
   * One DKG or refresh per wallet at a time on this node: refused while another session of the
   * wallet runs here or has left a pending share that its peers' answers cannot resolve yet, so
   * two refreshes never interleave their commits.
   */
  private async claimWallet(walletId: string, session: string, kind: PersistKind): Promise<void> {
    const held = this.walletCeremony.get(walletId);
    if (held && held.session !== session && held.until > Date.now())
      throw new CodedError(
        "conflict",
        `node ${this.nodeId} already takes part in ceremony ${held.session.slice(0, 16)} of wallet ${walletId}`,
      );
    // Claimed before the first await, so a concurrent start sees it.
    this.walletCeremony.set(walletId, { session, until: Date.now() + this.slotMs, kind });
    if (kind !== "refresh") return;
    await this.resolvePending(walletId);
    const other = pendingShares(this.db, this.nodeId, walletId).find(
      (p) => p.sessionId !== session,
    );
    if (other)
      throw new CodedError(
        "conflict",
        `node ${this.nodeId} holds a pending share of wallet ${walletId} from refresh ${other.sessionId?.slice(0, 16) ?? "(unnamed)"} that is not resolved yet`,
      );
  }

  private releaseWallet(session: string): void {
    for (const [walletId, held] of this.walletCeremony)
      if (held.session === session) {
        this.walletCeremony.delete(walletId);
        // A DKG this node leaves without having stored its share: it never will (its enclave
        // session is dropped with it), so its word on the session is "rolled back" from now on.
        if (held.kind === "dkg") this.fenceUnstoredDkg(walletId, session);
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
      // A repair's target and its completing refresh load nothing: their refusal stands.
      if (
        req.kind === "dkg" ||
        req.repairSession !== undefined ||
        (req.kind === "repair" && req.partyIndex === req.repairTarget) ||
        (req.kind === "reshare" && !isReshareDealer(req)) ||
        (e as { code?: string }).code !== "share_not_loaded"
      )
        throw e;
      this.loaded.delete(req.walletId);
      await this.prepare(req.walletId);
      return this.enclave.startCeremony(req);
    }
  }

  /**
   * The enclave cancelled session `older` for the lower-id duplicate `slot` of the same approved
   * request (approval-replay.ts): on record here with the node that started each, since the
   * enclave cannot know them. The cancelled session's next step fails in the enclave anyway.
   */
  private auditSupersession(slot: string, older: string, caller: string | undefined): void {
    const olderStarter = this.starters.get(older);
    appendAudit(this.db, this.nodeId, {
      event: "ceremony_superseded",
      ceremonyId: slot,
      supersededCeremonyId: older,
      startedBy: caller ?? this.nodeId,
      ...(olderStarter === undefined ? {} : { supersededStartedBy: olderStarter }),
    });
    this.log("ceremony_superseded", {
      session: slot.slice(0, 16),
      superseded: older.slice(0, 16),
      startedBy: caller ?? this.nodeId,
      supersededStartedBy: olderStarter,
    });
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
      // A refresh that carries a new policy is a policy change (approval-gate.ts policyChangeOf),
      // a DKG that carries a key import envelope an import.
      operation:
        req.kind === "refresh" && req.policy !== undefined
          ? "policy_change"
          : req.importEnvelope !== undefined
            ? "import"
            : req.kind,
      decision: "refused",
      decidedBy: this.nodeId,
      refusal: err.reason,
      reason: typeof err.message === "string" ? err.message.slice(0, 200) : String(err.code),
    });
  }

  async step(req: CeremonyStepRequest, caller?: string): Promise<CeremonyReply> {
    const slot = toHex(req.sessionId);
    // Refused before the enclave sees it: the session goes on for the node that started it.
    this.refuseOtherCaller(slot, caller, "step");
    try {
      const reply = await this.enclave.stepCeremony(req);
      // After the last phase the enclave holds at most a finished share awaiting its seal.
      if (req.phase >= 4) {
        this.ceremonies.release(slot);
        // A DKG/refresh share now waits to be sealed and committed: its starter alone drives that.
        if (reply.signature === undefined) {
          this.rememberFinisher(slot, this.starters.get(slot));
          this.rememberFinishedShape(slot, reply);
        }
        this.starters.delete(slot);
        this.keepSignerOutcome(slot, reply);
      }
      return reply;
    } catch (e) {
      // The enclave wipes a session on any failed step.
      this.ceremonies.release(slot);
      this.releaseWallet(slot);
      this.starters.delete(slot);
      this.signerOutcomes.forget(slot);
      throw e;
    }
  }

  /** Which node started each session open here (start's `caller`), until it ends. */
  private readonly starters = new Map<string, string>();
  /**
   * Which node started each DKG/refresh whose last phase ran here, until it is committed or
   * rolled back: only that node may persist, commit or roll it back over RPC. Kept apart from
   * `starters` so a lost coordinator's Last Will aborts only sessions still in their phases.
   */
  private readonly finishers = new Map<string, string>();

  private rememberFinisher(slot: string, starter: string | undefined): void {
    if (starter === undefined) return;
    this.finishers.set(slot, starter);
    // Bounded: sessions whose coordinator never committed or rolled them back are the oldest.
    this.keepRecent(this.finishers);
  }

  /**
   * Refuses an RPC `caller` that is not the node that started finished session `slot` here.
   * Stricter than refuseOtherCaller: a session whose starter this host does not know (never
   * finished here, or this host restarted since) is refused too; its pending share, if any,
   * is settled from the peers (resolvePending), never on another node's word.
   */
  private refuseNonFinisher(slot: string, caller: string | undefined, what: string): void {
    if (caller === undefined) return;
    const starter = this.finishers.get(slot);
    if (caller === this.nodeId || starter !== caller) {
      this.log("finish_refused", { session: slot.slice(0, 16), caller, what });
      throw new CodedError(
        "unauthorised",
        `node ${caller} may not ${what} session ${slot.slice(0, 16)} on node ${this.nodeId}${starter === undefined ? ": no finished session of it here" : `: ${starter} started it`}`,
      );
    }
  }
  /** The client request each sign session here answers, until its signature is kept. */
  private readonly signerOutcomes = new SignerOutcomes(4 * DEFAULT_MAX_CEREMONIES);

  /**
   * Keeps a finished sign's answer under the client's request (signer-outcomes.ts). A copy for
   * when the coordinator dies before answering: failing to keep it (a locked database) does not
   * fail the signature, which the coordinator still answers with.
   */
  private keepSignerOutcome(slot: string, reply: CeremonyReply): void {
    try {
      if (reply.signature) this.signerOutcomes.keep(this.db, slot, reply);
      else this.signerOutcomes.forget(slot);
    } catch (e) {
      this.log("signer_outcome_not_kept", {
        session: slot.slice(0, 16),
        error: (e as Error).message,
      });
    }
  }

  /** Refuses an RPC `caller` other than the session's starter; this node's own calls pass. */
  private refuseOtherCaller(slot: string, caller: string | undefined, what: string): void {
    if (caller === undefined) return;
    // A node never calls itself over RPC: a call in its own name came from someone else.
    const starter = this.starters.get(slot);
    if (caller === this.nodeId || (starter !== undefined && starter !== caller))
      throw new CodedError(
        "unauthorised",
        `node ${caller} may not ${what} session ${slot.slice(0, 16)} on node ${this.nodeId}${starter === undefined ? "" : `: ${starter} started it`}`,
      );
  }

  /**
   * A coordinator whose presence went offline (its Last Will) never sends the rest of the
   * sessions it started here: they are aborted now, not at their phase deadline, so their
   * enclave sessions end and a resubmission of the same approved request (which each enclave
   * runs once at a time: src/enclave/approval-replay.ts) can run at once on another node.
   * Sessions past their last phase (a DKG's or refresh's pending share) are not touched.
   */
  async abortSessionsStartedBy(nodeId: string): Promise<number> {
    if (nodeId === this.nodeId) return 0;
    const theirs = [...this.starters].filter(([, s]) => s === nodeId).map(([slot]) => slot);
    for (const slot of theirs) await this.abort(fromHex(slot));
    if (theirs.length > 0)
      this.log("lost_coordinator_sessions_aborted", {
        coordinator: nodeId,
        sessions: theirs.length,
      });
    return theirs.length;
  }

  async abort(sessionId: Uint8Array, caller?: string): Promise<void> {
    const slot = toHex(sessionId);
    try {
      this.refuseOtherCaller(slot, caller, "abort");
    } catch (e) {
      this.log("abort_refused", { session: slot.slice(0, 16), caller });
      throw e;
    }
    this.starters.delete(slot);
    this.signerOutcomes.forget(slot);
    this.startedShapes.delete(slot);
    this.finishedShapes.delete(slot);
    this.ceremonies.release(toHex(sessionId));
    this.releaseWallet(toHex(sessionId));
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
    caller?: string,
  ): Promise<Uint8Array> {
    this.refuseNonFinisher(toHex(sessionId), caller, "persist");
    const own = this.ownShape(toHex(sessionId), wallet);
    // From here the row is what this node's enclave finished with (the same, once checked).
    if (own) wallet = { ...wallet, threshold: own.threshold, parties: own.parties };
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
      const session = toHex(sessionId);
      // Pending until every holder stored (dkg-commit.ts); a peer's question may have fenced it.
      if (this.dkgFenced.has(session)) {
        await this.abort(sessionId);
        throw new CodedError(
          "conflict",
          `DKG ${session.slice(0, 16)} of wallet ${wallet.walletId} was already rolled back on node ${this.nodeId}`,
        );
      }
      stageDkg(this.db, session, wallet, share, () => {
        keepStatement();
        // A reshare's new member: its committee, which settling its pending share asks by id.
        if (own?.committee) keepPendingShape(this.db, wallet.walletId, this.nodeId, session, own);
      });
      this.auditShareStored(wallet.walletId, generation, share.partyIndex, "pending");
    } else {
      const session = toHex(sessionId);
      this.db.transaction(() => {
        // A session this node already decided on (a peer's question fenced it) is not stored.
        const decided = refreshOutcome(this.db, wallet.walletId, this.nodeId, session);
        if (decided)
          throw new StoreError(
            "conflict",
            `refresh ${session.slice(0, 16)} of wallet ${wallet.walletId} was already ${decided.outcome} on node ${this.nodeId}`,
          );
        // The policy the enclave sealed the new share with: a policy change's new one comes with
        // the wallet record, a plain refresh keeps the current share's; its statement says which.
        const policy = sealedWithPolicy(final, [
          wallet.policy,
          currentShare(this.db, wallet.walletId, this.nodeId).policy ??
            getWallet(this.db, wallet.walletId)?.policy,
        ]);
        stagePendingShare(this.db, {
          ...share,
          sessionId: session,
          ...(policy === undefined ? {} : { policy }),
        });
        keepStatement();
        // What the wallet row becomes when this share commits, however that is settled (a
        // reshare changes t and n, every refresh the package), and a reshare's committee.
        if (own) keepPendingShape(this.db, wallet.walletId, this.nodeId, session, own);
      });
      this.finishedShapes.delete(session);
      this.auditShareStored(wallet.walletId, generation, share.partyIndex, "pending");
    }
    // Only now, with the share stored: the receipt tells the other holders' enclaves that it was.
    return sealed.receipt;
  }

  /** A committed refresh that sealed the wallet's shares with another policy: a policy change. */
  private auditPolicyChange(walletId: string, before: Uint8Array | undefined): void {
    const after = this.walletInfo(walletId, false)?.policy;
    if (after === undefined || (before !== undefined && toHex(before) === toHex(after))) return;
    const p = parsePolicy(after);
    appendAudit(this.db, this.nodeId, {
      event: "policy_changed",
      walletId,
      toPolicyHash: toHex(policyHash(after)),
      ...(before === undefined ? {} : { fromPolicyHash: toHex(policyHash(before)) }),
      quorum: p.quorum,
      approvers: p.approvers.length,
      approverKeyIds: p.approvers.map((k) => toHex(approverKeyId(k))),
    });
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

  /**
   * `receipts`: every holder's seal receipt (from the persist answers); the enclave activates
   * the share only with one valid receipt from each party of the session
   * (src/enclave/seal-receipts.ts). It is asked before the store commits: an enclave that
   * refuses (a coordinator that skipped some holder's persist) leaves the store's share
   * pending and the old one active, settled later from the peers. `certificate`: the n
   * wallet statements, with which the enclave also refuses any older share from now on.
   */
  async commit(
    kind: PersistKind,
    sessionId: Uint8Array,
    walletId: string,
    generation: number,
    receipts?: Uint8Array[],
    certificate?: CommitCertificate,
    caller?: string,
  ): Promise<void> {
    const session = toHex(sessionId);
    this.refuseNonFinisher(session, caller, "commit");
    this.finishers.delete(session);
    this.releaseWallet(session);
    const decided = getWallet(this.db, walletId)
      ? refreshOutcome(this.db, walletId, this.nodeId, session)
      : undefined;
    if (decided?.outcome === "rolled_back")
      throw new CodedError(
        "conflict",
        `${kind === "dkg" ? "DKG" : "refresh"} ${session.slice(0, 16)} of wallet ${walletId} was rolled back on node ${this.nodeId}; it cannot commit`,
      );
    // Already committed here (a peer's answer settled it first): the store is current, the enclave reloads from it.
    if (decided?.outcome === "committed") {
      this.loaded.delete(walletId);
      return;
    }
    const staged = pendingShares(this.db, this.nodeId, walletId).some(
      (p) => p.sessionId === session,
    );
    // Nothing stored here under the session: the store refuses the commit as before, the enclave is not asked.
    const a = staged
      ? await this.enclave.activateShare({
          sessionId,
          walletId,
          ...(receipts && { sealReceipts: receipts }),
          ...(certificate && {
            certificateStatements: certificate.statements,
            certificateDocuments: certificate.documents,
          }),
        })
      : undefined;
    let committedNow: boolean;
    try {
      committedNow =
        kind === "refresh"
          ? this.commitLocally(walletId, session, generation)
          : commitDkg(this.db, this.nodeId, walletId, session);
    } catch (e) {
      // The enclave may hold the new share already: what it holds is asked again at the next prepare.
      this.loaded.delete(walletId);
      throw e;
    }
    // The receipts the enclave just accepted: the proof a peer settling from this node needs.
    if (a && receipts) this.keepProof(walletId, session, receipts);
    if (!committedNow || !a) {
      this.loaded.delete(walletId);
      return;
    }
    this.loaded.set(walletId, { walletId, generation: a.generation, partyIndex: a.partyIndex });
    // The peers' statements its enclave just verified: answered for them while they are offline.
    if (certificate)
      try {
        keepCertificateStatements(this.db, this.nodeId, walletId, a.generation, certificate);
      } catch (e) {
        this.log("peer_statements_not_kept", { walletId, error: (e as Error).message });
      }
  }

  /** Keeps a commit's proof (commit-proofs-repo.ts); a failed write only leaves this node's word unproven. */
  private keepProof(walletId: string, session: string, receipts: readonly Uint8Array[]): void {
    try {
      keepCommitProof(this.db, walletId, this.nodeId, session, receipts);
    } catch (e) {
      this.log("commit_proof_not_kept", {
        wallet: walletId,
        session: session.slice(0, 16),
        error: (e as Error).message,
      });
    }
  }

  /**
   * Session `session`'s pending share becomes current (old one deleted), recorded as committed;
   * never after a rollback of it. False: it already was.
   */
  private commitLocally(walletId: string, session: string, generation: number): boolean {
    const policyBefore = this.walletInfo(walletId, false)?.policy;
    const r = this.db.transaction(() => {
      const decided = refreshOutcome(this.db, walletId, this.nodeId, session);
      if (decided?.outcome === "rolled_back")
        throw new StoreError(
          "conflict",
          `refresh ${session.slice(0, 16)} of wallet ${walletId} was rolled back on node ${this.nodeId}; it cannot commit`,
        );
      const staged = listShares(this.db, walletId, this.nodeId).find(
        (x) => x.generation === generation && x.status === "pending",
      );
      if (staged?.sessionId != null && staged.sessionId !== session)
        throw new StoreError(
          "conflict",
          `node ${this.nodeId}'s pending share of wallet ${walletId} at generation ${generation} belongs to another refresh`,
        );
      const r = commitRefresh(this.db, walletId, this.nodeId, generation);
      recordRefreshOutcome(this.db, walletId, this.nodeId, session, "committed", generation);
      const shape = pendingShape(this.db, walletId, this.nodeId, session);
      if (shape && !r.alreadyCommitted) updateWalletShape(this.db, walletId, shape);
      dropPendingShape(this.db, walletId, this.nodeId, session);
      return r;
    });
    if (r.alreadyCommitted) return false;
    appendAudit(this.db, this.nodeId, {
      event: "refresh_committed",
      walletId,
      fromGeneration: r.fromGeneration,
      toGeneration: r.toGeneration,
    });
    this.auditPolicyChange(walletId, policyBefore);
    dropWalletStatementsBefore(this.db, walletId, this.nodeId, r.toGeneration);
    return true;
  }

  /**
   * A coordinator's rollback is a request, not a decision, once this node holds the session's
   * pending share (docs/ARCHITECTURE.md "Sealed shares and storage", the refresh commit rule):
   * - not stored here: the rollback is recorded at once; that record is the fence every
   *   rollback starts from (this node will never store the session, so no holder can ever see
   *   all n pending and commit on it);
   * - stored here: settled from the peers' answers like a lost coordinator's pending share
   *   (resolveOne), without the grace: rolled back only when some holder rolled back or fenced
   *   it; committed when every other holder stored it too (the coordinator's failure was only
   *   a lost reply); left pending while a holder is silent.
   * So no coordinator, live or late, can roll back a session that every holder stored.
   */
  async rollback(
    kind: PersistKind,
    sessionId: Uint8Array,
    walletId: string,
    caller?: string,
  ): Promise<void> {
    const session = toHex(sessionId);
    // Only the starter: a session still in its phases (a failed step elsewhere) or finished here.
    if (caller !== undefined && !this.finishers.has(session))
      this.refuseOtherCaller(session, caller, "roll back");
    else this.refuseNonFinisher(session, caller, "roll back");
    this.finishers.delete(session);
    // Before the abort releases the wallet: from here a DKG persist of it is refused.
    if (kind === "dkg") this.fenceUnstoredDkg(walletId, session);
    await this.abort(sessionId);
    const staged = this.db.transaction(() => {
      const p = pendingShares(this.db, this.nodeId, walletId).find((x) => x.sessionId === session);
      if (!p) {
        const reason = "a participant failed to persist its new share";
        if (kind === "refresh") this.rollbackLocally(walletId, session, reason);
        else rollbackDkg(this.db, this.nodeId, walletId, session, reason);
      }
      return p;
    });
    if (!staged) return;
    const decision = await this.resolveOne(staged, session, true);
    this.log("rollback_settled", { wallet: walletId, session: session.slice(0, 16), decision });
  }

  /** Whether this node stored (or decided) DKG session `session` of the wallet. */
  private dkgStored(walletId: string, session: string): boolean {
    if (!getWallet(this.db, walletId)) return false;
    return listShares(this.db, walletId, this.nodeId).some((x) => x.sessionId === session);
  }

  /** Fences DKG `session` unless this node stored it; an unreadable store fences nothing ("unknown" is always safe). */
  private fenceUnstoredDkg(walletId: string, session: string): void {
    try {
      if (!this.dkgStored(walletId, session)) this.fenceDkg(session);
    } catch {
      /* not fenced */
    }
  }

  private fenceDkg(session: string): void {
    this.dkgFenced.add(session);
    this.keepRecent(this.dkgFenced);
  }

  /** Removes only session `session`'s pending share, recorded as rolled back; never after a commit of it. */
  private rollbackLocally(walletId: string, session: string, reason: string): void {
    this.db.transaction(() => {
      const decided = refreshOutcome(this.db, walletId, this.nodeId, session);
      if (decided?.outcome === "committed")
        throw new StoreError(
          "conflict",
          `refresh ${session.slice(0, 16)} of wallet ${walletId} was committed on node ${this.nodeId}; it cannot roll back`,
        );
      abortRefresh(this.db, walletId, this.nodeId, session);
      dropPendingShape(this.db, walletId, this.nodeId, session);
      const current = generationOf(this.db, walletId);
      recordRefreshOutcome(this.db, walletId, this.nodeId, session, "rolled_back", current + 1);
      // Statements above the current generation are the pending share's: one refresh per wallet at a time.
      if (pendingShares(this.db, this.nodeId, walletId).length === 0)
        dropWalletStatementsAfter(this.db, walletId, this.nodeId, current);
    });
    appendAudit(this.db, this.nodeId, { event: "refresh_aborted", walletId, reason });
  }

  /**
   * This node's word on refresh `sessionId` of the wallet, for a peer resolving its pending
   * share. A holder that never stored the session records it as rolled back before answering:
   * that fences a persist of it arriving later, so its coordinator (which commits only after
   * all n persisted) can no longer commit it anywhere, and the answer stays true.
   */
  /** The party of the wallet this node retired earlier, from its audit log, or null. */
  /**
   * Who holds each party index of the wallet since a share repair's refresh (share-repair.ts):
   * only this node's own entry is recorded, and only when the list names this node at its own
   * active share's index and generation. The other entries are the coordinator's word, which
   * this node cannot check.
   */
  recordMembers(
    walletId: string,
    generation: number,
    members: readonly { partyIndex: number; nodeId: string }[],
  ): void {
    const mine = listShares(this.db, walletId, this.nodeId).find((s) => s.status === "active");
    if (
      !mine ||
      mine.generation !== generation ||
      !members.some((m) => m.nodeId === this.nodeId && m.partyIndex === mine.partyIndex)
    )
      throw new CodedError(
        "conflict",
        `node ${this.nodeId} does not hold that party of wallet ${walletId} at generation ${generation}`,
      );
    recordWalletMembers(
      this.db,
      walletId,
      [{ partyIndex: mine.partyIndex, nodeId: this.nodeId }],
      generation,
    );
  }

  /** Drops the oldest entries of a per-session record beyond 4 x the ceremony slots (insertion order). */
  private keepRecent(m: Map<string, unknown> | Set<string>): void {
    if (m.size > 4 * this.ceremonies.max) m.delete(m.keys().next().value!);
  }

  /**
   * What session `slot` was started with here, kept until phase 4 (bounded). The enclave
   * checked a reshare's t_new and committee against the approval before it answered the start,
   * so from here on this host relies on them, not on the coordinator's later word.
   */
  private rememberStartedShape(slot: string, req: CeremonyStartRequest): void {
    let shape: { threshold: number; parties: number; committee: string[] | null } | undefined;
    if (req.kind === "reshare" || req.kind === "dkg")
      shape = {
        threshold: req.threshold as number,
        parties: req.parties as number,
        committee: req.kind === "reshare" ? String(req.reshareNodes).split(",") : null,
      };
    else if (req.kind === "refresh") {
      // A refresh keeps t and n; a repair's new holder has no row yet: the coordinator's word then.
      const w = getWallet(this.db, req.walletId);
      if (w) shape = { threshold: w.threshold, parties: w.parties, committee: null };
    }
    if (!shape) return;
    this.startedShapes.set(slot, shape);
    this.keepRecent(this.startedShapes);
  }

  /** Phase 4's reply of this node's own enclave: the package the new share belongs to. */
  private rememberFinishedShape(slot: string, reply: CeremonyReply): void {
    const started = this.startedShapes.get(slot);
    this.startedShapes.delete(slot);
    if (!started || reply.publicPackage === undefined) return;
    this.finishedShapes.set(slot, { ...started, publicPackage: reply.publicPackage });
    this.keepRecent(this.finishedShapes);
  }

  /**
   * The shape this node's enclave finished session `session` with, refusing a coordinator's
   * wallet record that says otherwise (t, n or public package): the row this node stores and
   * commits is its own enclave's. Undefined: not finished here with a known shape (a repair's
   * new holder; a reshare always is, or its persist is refused).
   */
  private ownShape(session: string, wallet: WalletRecord): PendingShape | undefined {
    const own = this.finishedShapes.get(session);
    if (!own) {
      if (this.reshareUnfinished(session))
        throw new CodedError("conflict", `reshare ${session.slice(0, 16)} did not finish here`);
      return undefined;
    }
    if (
      own.threshold !== wallet.threshold ||
      own.parties !== wallet.parties ||
      toHex(own.publicPackage) !== toHex(wallet.publicPackage)
    )
      throw new CodedError(
        "conflict",
        `the wallet record for session ${session.slice(0, 16)} is not what node ${this.nodeId}'s enclave finished with (t, n or public package)`,
      );
    return own;
  }

  /** Whether a reshare session was started here and not finished (its shape is then unknown). */
  private reshareUnfinished(session: string): boolean {
    return this.startedShapes.get(session)?.committee != null;
  }

  /** Refuses a wallet whose party a share repair moved from this node to another (members-repo.ts replacedBy). */
  private refuseReplaced(walletId: string): void {
    const by = typeof walletId === "string" ? replacedBy(this.db, walletId, this.nodeId) : null;
    if (by)
      throw new CodedError(
        "stale_share",
        `node ${this.nodeId} no longer holds party ${by.partyIndex} of wallet ${walletId}: node ${by.nodeId} holds it since generation ${by.generation}`,
      );
  }

  /**
   * Whether a share repair replaced this node's share of the wallet: on its enclave's verified
   * verdict it deletes its rows and refuses the wallet from now on (share-repair.ts).
   */
  checkReplaced(walletId: string): Promise<{ replaced: boolean }> {
    const source = this.holderSource;
    const proofs = this.proofSource;
    if (!source || !proofs) return Promise.resolve({ replaced: false });
    // Each check costs every holder an enclave signature and this enclave up to
    // MAX_SETS_TRIED set verifications: at most one per wallet per REPLACE_CHECK_INTERVAL_MS.
    const now = Date.now();
    const last = this.replaceChecks.get(walletId);
    if (last !== undefined && now - last < REPLACE_CHECK_INTERVAL_MS)
      return Promise.resolve({ replaced: false });
    // Not while this node runs a DKG or refresh of the wallet (its rows are in use); the claim,
    // held for the whole check, also keeps any from starting until the rows are deleted or kept.
    const held = this.walletCeremony.get(walletId);
    if (held && held.until > now) return Promise.resolve({ replaced: false });
    this.replaceChecks.delete(walletId);
    this.replaceChecks.set(walletId, now);
    this.keepRecent(this.replaceChecks);
    const claim = `replace-check-${randomBytes(8).toString("hex")}`;
    this.walletCeremony.set(walletId, { session: claim, until: now + this.slotMs });
    return checkReplacedHere(
      {
        nodeId: this.nodeId,
        db: this.db,
        holders: source,
        nonce: async (w) => (await this.enclave.supersessionNonce({ walletId: w })).nonce,
        proof: proofs,
        verdict: (req) => this.enclave.supersededShare(req),
        forget: (w) => this.loaded.delete(w),
        log: this.log,
      },
      walletId,
    ).finally(() => {
      if (this.walletCeremony.get(walletId)?.session === claim)
        this.walletCeremony.delete(walletId);
    });
  }

  /**
   * This node's enclave's active proof of the wallet for another node's nonce (node RPC
   * proveActive): its active row at the wallet's current generation loaded (prepare, which
   * loads nothing else), then signed by the enclave for the share it holds loaded; null when
   * this node holds no current share of the wallet.
   */
  async proveActive(walletId: string, nonce: Uint8Array): Promise<{ proof: Uint8Array } | null> {
    const held = this.walletInfo(walletId, false);
    if (!held) return null;
    // What the enclave holds loaded must be this node's committed current row. It may differ
    // from what this host last loaded (an activation whose store commit then failed, say):
    // then the row is loaded afresh, and a proof of anything else is never handed out.
    const matches = (proof: Uint8Array) => {
      const p = parseSignedActiveProofUnverified(proof).proof;
      return p.generation === held.generation && p.partyIndex === held.partyIndex;
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) this.loaded.delete(walletId);
      await this.prepare(walletId);
      try {
        const r = await this.enclave.proveActive({ walletId, nonce });
        if (matches(r.proof)) return r;
      } catch (e) {
        // Evicted from the enclave's memory budget since prepare(): loaded once more.
        if ((e as { code?: string }).code !== "share_not_loaded") throw e;
      }
    }
    return null;
  }

  retiredParty(walletId: string): { partyIndex: number; generation: number } | null {
    return retiredPartyOf(this.db, walletId, this.nodeId);
  }

  /** This node's part of a wallet's retirement (wallet-retirement.ts); a refusal is an outcome, never a throw. */
  retireWallet(a: NodeOpArgs<"retireWallet">): Promise<RetireOutcome> {
    return retireHere(
      {
        nodeId: this.nodeId,
        db: this.db,
        prepare: (walletId) => this.prepare(walletId),
        retireInEnclave: (req) => this.enclave.retireWallet(req),
        forget: (walletId) => {
          this.loaded.delete(walletId);
          this.walletCeremony.delete(walletId);
        },
        log: this.log,
      },
      a,
    );
  }

  ceremonyOutcome(walletId: string, sessionId: Uint8Array): CeremonyOutcomeAnswer {
    const session = toHex(sessionId);
    // Answered from memory and reads: a node whose database is locked still fences a DKG it
    // took part in but could not store, so the holders that did store can roll it back.
    if (this.dkgFenced.has(session)) return { outcome: "rolled_back", generation: 0 };
    if (
      this.walletCeremony.get(walletId)?.session === session &&
      !this.dkgStored(walletId, session)
    ) {
      const held = getWallet(this.db, walletId);
      if (!held || isDkgPending(this.db, walletId, this.nodeId)) {
        this.fenceDkg(session);
        void this.abort(sessionId);
        return { outcome: "rolled_back", generation: held?.currentGeneration ?? 0 };
      }
    }
    return this.db.transaction((): CeremonyOutcomeAnswer => {
      const decided = refreshOutcome(this.db, walletId, this.nodeId, session);
      if (decided) {
        const receipts =
          decided.outcome === "committed"
            ? commitProof(this.db, walletId, this.nodeId, session)
            : undefined;
        return {
          outcome: decided.outcome,
          generation: decided.generation,
          ...(receipts && { receipts }),
        };
      }
      const staged = pendingShares(this.db, this.nodeId, walletId).find(
        (p) => p.sessionId === session,
      );
      if (staged) return { outcome: "pending", generation: staged.generation };
      if (!getWallet(this.db, walletId) || listShares(this.db, walletId, this.nodeId).length === 0)
        return { outcome: "unknown" };
      const next = generationOf(this.db, walletId) + 1;
      recordRefreshOutcome(this.db, walletId, this.nodeId, session, "rolled_back", next);
      return { outcome: "rolled_back", generation: next };
    });
  }

  /**
   * Settles this node's pending refresh shares (of one wallet, or all) whose coordinator is
   * gone, from the other holders' answers to ceremonyOutcome:
   * - one holder says committed and another rolled back: a liar among them; stay pending
   *   (the old share stays active) and log pending_share_contested;
   * - any holder committed the session: commit too (the coordinator commits only after all n
   *   persisted, so every holder has the new share);
   * - else any holder rolled it back (or, never having stored it, fenced it): roll back;
   * - else every other holder (wallet.parties - 1 of them) reports it pending and the share is
   *   older than pendingGraceMs: commit (all n hold the new share and none decided);
   * - else (a holder silent, or still within the grace): leave it pending, ask again later.
   * Each node's decision is recorded and never reversed (commit after rollback and rollback after
   * commit are refused). Every commit needs all n holders to have stored the share (the
   * coordinator's after all n persists, "all pending", or a peer's earlier commit); every rollback
   * starts from a record at a holder that never stored it (ceremonyOutcome's fence, or rollback()
   * there), and such a holder never stores it later. The two cannot both happen, so all holders
   * end on one generation, whenever a coordinator's rollback arrives (rollback() says why). The
   * grace is no longer needed for that: it only lets a live coordinator commit first, handing
   * its enclaves the commit certificate. A session's own live ceremony on this node is skipped.
   */
  async resolvePending(walletId?: string): Promise<PendingResolution[]> {
    const out: PendingResolution[] = [];
    for (const p of pendingShares(this.db, this.nodeId, walletId)) {
      // Rows from before migration 7 name no session: nothing to ask about.
      if (p.sessionId === null) continue;
      const live = this.walletCeremony.get(p.walletId);
      if (live?.session === p.sessionId && live.until > Date.now()) continue;
      out.push({
        walletId: p.walletId,
        sessionId: p.sessionId,
        decision: await this.resolveOne(p, p.sessionId),
      });
    }
    return out;
  }

  private async resolveOne(
    p: StoredShare,
    session: string,
    /** Asked to roll back by the coordinator: it is no longer deciding, so no grace is owed. */
    coordinatorDone = false,
  ): Promise<PendingResolution["decision"]> {
    if (!this.outcomeSource) return "pending";
    const answers = new Map<string, CeremonyOutcomeAnswer["outcome"]>();
    const peers = (await this.outcomeSource(p.walletId, fromHex(session))).filter(
      (a) => a.nodeId !== this.nodeId,
    );
    for (const a of peers) if (a.answer) answers.set(a.nodeId, a.answer.outcome);
    // Who must have stored the share: a reshare's committee by node id, as this node's enclave
    // started it (kept with the pending row), never a count from the wallet row, which still
    // says n_old; otherwise (a refresh: same holders) the other n - 1 of the wallet's. Only the
    // committee's words count then: a node outside it holds no share of the session.
    const committee = pendingShape(this.db, p.walletId, this.nodeId, session)?.committee;
    const said = [...answers]
      .filter(([n]) => !committee || committee.includes(n))
      .map(([, o]) => o);
    const parties = getWallet(this.db, p.walletId)?.parties ?? Number.POSITIVE_INFINITY;
    const othersSay = (ok: readonly string[]) =>
      committee
        ? committee.every((n) => n === this.nodeId || ok.includes(answers.get(n) ?? "silent"))
        : said.filter((o) => ok.includes(o)).length >= parties - 1;
    const allPending =
      othersSay(["pending"]) &&
      (coordinatorDone || Date.now() - p.createdAt >= this.pendingGraceMs);
    // Every other holder says it stored the share (pending, or committed: a peer that commits
    // stored it first): the same word "all pending" rests on, no grace once one committed.
    const everyOtherStored = othersSay(["pending", "committed"]);
    let decision: PendingResolution["decision"] = "pending";
    // Both words cannot both be true (a commit needs all n stored, a rollback starts at a holder
    // that never stored): one of the two peers lies, say a coordinator that committed a session
    // it never persisted everywhere. Neither is followed: the share stays pending, the old one
    // active, so an honest holder is never moved off the generation its peers can sign with.
    const contested = said.includes("committed") && said.includes("rolled_back");
    if (contested) decision = "pending";
    else if (said.includes("committed") || (!said.includes("rolled_back") && allPending))
      decision = "committed";
    else if (said.includes("rolled_back")) decision = "rolled_back";
    this.log(contested ? "pending_share_contested" : "pending_share_resolved", {
      wallet: p.walletId,
      session: session.slice(0, 16),
      decision,
      answers: Object.fromEntries(answers),
    });
    const dkg = isDkgPending(this.db, p.walletId, this.nodeId);
    // A peer's "committed" is followed only with its proof, checked by this node's enclave
    // (settle-proof.ts); "all pending" needs none (every holder says it stored the share).
    if (decision === "committed" && said.includes("committed")) {
      const proven = await activateWithPeerProof(this.enclave, p.walletId, fromHex(session), peers);
      if ("refused" in proven && !everyOtherStored) {
        this.log("pending_share_unproven", {
          wallet: p.walletId,
          session: session.slice(0, 16),
          reason: proven.refused,
        });
        return "pending";
      }
      // Unproven (say the committed peers settled by "all pending", which keeps no receipts),
      // but every other holder stored it: committed in the store as "all pending" would.
      if ("refused" in proven) return this.commitSettled(p, session, dkg);
      try {
        if (dkg) commitDkg(this.db, this.nodeId, p.walletId, session);
        else this.commitLocally(p.walletId, session, p.generation);
      } catch (e) {
        // The enclave holds the new share already: what it holds is asked again at the next prepare.
        this.loaded.delete(p.walletId);
        throw e;
      }
      this.keepProof(p.walletId, session, proven.receipts);
      const a = proven.activated;
      this.loaded.set(p.walletId, {
        walletId: p.walletId,
        generation: a.generation,
        partyIndex: a.partyIndex,
      });
    } else if (decision === "committed") {
      return this.commitSettled(p, session, dkg);
    } else if (decision === "rolled_back") {
      const reason = `its peers rolled the ${dkg ? "DKG" : "refresh"} back`;
      if (dkg) rollbackDkg(this.db, this.nodeId, p.walletId, session, reason);
      else this.rollbackLocally(p.walletId, session, reason);
      await this.abort(fromHex(session));
    }
    return decision;
  }

  /** Commits a settled pending share in the store only; the enclave loads it from there. */
  private async commitSettled(
    p: StoredShare,
    session: string,
    dkg: boolean,
  ): Promise<PendingResolution["decision"]> {
    if (dkg) commitDkg(this.db, this.nodeId, p.walletId, session);
    else this.commitLocally(p.walletId, session, p.generation);
    // The enclave may still hold the session's finished share; the store's is now current.
    this.loaded.delete(p.walletId);
    await this.abort(fromHex(session));
    return "committed";
  }

  /**
   * At start-up: ceremonies this node coordinated, recorded before this host started and still
   * "running", were cut off by its restart; each is marked failed with a ceremony_aborted audit row. Then pending shares are
   * settled with the peers (resolvePending).
   */
  async recover(): Promise<{ staleCeremonies: string[]; pending: PendingResolution[] }> {
    const stale = runningCeremonies(this.db).filter(
      (c) => c.coordinator === this.nodeId && c.createdAt < this.startedAt,
    );
    const lost = new CodedError(
      "ceremony_failed",
      `coordinator ${this.nodeId} restarted before the ceremony ended`,
      { node: this.nodeId },
    );
    for (const c of stale)
      this.db.transaction(() => {
        finishCeremony(this.db, c.ceremonyId, { status: "failed", error: lost.message });
        appendAudit(
          this.db,
          this.nodeId,
          ceremonyAborted(
            {
              ceremonyId: c.ceremonyId,
              kind: c.kind,
              walletId: c.walletId,
              ...(c.requestId === null ? {} : { requestId: c.requestId }),
            },
            lost,
          ),
        );
      });
    return {
      staleCeremonies: stale.map((c) => c.ceremonyId),
      pending: await this.resolvePending(),
    };
  }
}

/**
 * Of the policies a host knows for a refreshed share, the one its enclave sealed it with, as the
 * enclave's statement names it by hash (read unverified: a wrong pick only makes the share fail
 * to load, which the enclave decides); the first known one without a statement.
 */
function sealedWithPolicy(
  final: CeremonyReply,
  candidates: readonly (Uint8Array | undefined)[],
): Uint8Array | undefined {
  const known = candidates.filter((p): p is Uint8Array => p !== undefined);
  if (final.statement === undefined) return known[0];
  let named: Uint8Array | null;
  try {
    named = parseSignedWalletStatementUnverified(final.statement).statement.policyHash;
  } catch {
    return known[0];
  }
  if (named === null) return undefined;
  const hash = toHex(named);
  return known.find((p) => toHex(policyHash(p)) === hash) ?? known[0];
}
