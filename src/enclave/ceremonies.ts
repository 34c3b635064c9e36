/**
 * Starting, stepping and aborting DKG, sign and refresh sessions. Every
 * message in or out passes through the ceremony's PeerSession (sealed to,
 * or opened from, the other enclaves); the core sees only opened bodies.
 * Single use, deadlines and fail-closed wiping are the registry's. Every
 * start is checked against its approvals (approval-gate.ts) before a core
 * session exists, so a refused start never reaches phase 1.
 *
 * A share repair (lifecycle-repair.ts) is a `repair` start at every helper
 * and at the target, whose phase 4 leaves the target's hollow share in
 * `repaired`; the complete refresh that must follow is a refresh start that
 * names the repair session (`repairSession`) at the target, and an ordinary
 * refresh at every other holder.
 *
 * A reshare (lifecycle-reshare.ts) is a `reshare` start at every member of the
 * new committee: dealers pin their loaded share, new members take the old
 * package from the start and trust it only once the dealers' signed
 * statements name it (phase 2); phase 4's share is held pending and committed
 * exactly as a refresh's.
 */
import { parseMessage, SESSION_ID_LEN } from "../shared/wire/protocol-message.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import type {
  CeremonyAbortRequest,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
} from "../shared/wire/enclave-ops.ts";
import {
  DklsError,
  Dkg,
  Refresh,
  Signing,
  packageInfo,
  refreshFromHollow,
  type KeyShare,
} from "./dkls23/binding.ts";
import { ApprovalError, policyHash, type ApprovableRequest } from "../shared/wire/approval.ts";
import {
  checkDkgStart,
  checkShareStart,
  policyChangeOf,
  type ApprovalSettings,
} from "./approval-gate.ts";
import { ApprovalReplayCache, type ReplayClaim } from "./approval-replay.ts";
import { openTrustedPolicy, type ApprovalVerdict, type TrustedPolicy } from "./approvals.ts";
import { CeremonyRegistry, type AnySession } from "./ceremony-registry.ts";
import { EnclaveError } from "./errors.ts";
import { PeerMessageError, type PeerSession } from "./peer-envelope.ts";
import type { PeerSessions } from "./peer-sessions.ts";
import { ImportSession, MAX_IMPORT_PARTIES } from "./lifecycle-import.ts";
import {
  checkRepairApproval,
  NO_POLICY_HASH,
  RepairSession,
  type RepairedParty,
} from "./lifecycle-repair.ts";
import { RepairedParties } from "./repaired-parties.ts";
import { checkReshareApproval, checkReshareShape, ReshareCeremony } from "./lifecycle-reshare.ts";
import { isNodeId } from "../shared/wire/patterns.ts";
import type { ReshareMember } from "../shared/wire/reshare.ts";
import { OpenedEnvelopes, type EnvelopeClaim } from "./opened-envelopes.ts";
import { needInt, needWalletId } from "./request-checks.ts";
import {
  checkPeerShareStates,
  ownShareState,
  ownShareStateOf,
  type OwnShareState,
} from "./share-state.ts";
import type { ShareTable } from "./shares.ts";
import { signedWalletStatement } from "./wallet-statements.ts";

/** Messages one step may carry: 15 peers' worth with room to spare. */
const MAX_STEP_MESSAGES = 64;
/** Superseded session ids kept for their next step's error; an older one forgotten only loses that sentence. */
const MAX_SUPERSEDED_REMEMBERED = 1024;
/**
 * Wallets this enclave received an imported share of, remembered so it signs none of them at
 * generation 0; one entry per import (rare), the oldest forgotten beyond this (it then loses
 * only that protection, as a restart does).
 */
const MAX_IMPORTS_REMEMBERED = 65_536;

export class Ceremonies {
  private readonly registry: CeremonyRegistry;
  /** One session per approved request until it expires (approval-replay.ts). */
  private readonly replay = new ApprovalReplayCache();
  /** The replay claim of each open session started by an approved request. */
  private readonly replayClaims = new Map<string, ReplayClaim>();
  /** Sessions dropped for a lower-id session of the same approved request, so their next step says why. */
  private readonly superseded = new Set<string>();
  /** Key import envelopes opened here: each dealt at most once while its approval lasts. */
  private readonly envelopes = new OpenedEnvelopes();
  /**
   * Wallets whose share this enclave got from a key import: their generation-0 shares were all
   * in the dealer's memory, so they sign only once refreshed. In memory only: the sealed share
   * does not say it was imported (docs/ARCHITECTURE.md "Key import").
   */
  private readonly imported = new Set<string>();
  /** Public counts for the HEALTH reply (src/shared/wire/enclave-counters.ts): sessions by kind, no ids. */
  readonly counts = {
    finished: new Map<string, number>(),
    failed: new Map<string, number>(),
    aborted: 0,
  };
  /** Repaired parties (hollow shares) waiting here for the refresh that completes them. */
  private readonly repaired = new RepairedParties();

  constructor(
    private readonly shares: ShareTable,
    private readonly peers: PeerSessions,
    private readonly log: (event: string, fields: Record<string, unknown>) => void,
    phaseTimeoutMs: number,
    /** How long a finished share may wait to be sealed: used session ids are remembered that much longer. */
    pendingShareTtlMs: number,
    /** Whose approvals a start needs (approval-gate.ts); production: built in, always required. */
    private readonly approvals: ApprovalSettings,
    /** Open sessions at once (ceremony-registry.ts DEFAULT_MAX_OPEN_SESSIONS when absent). */
    maxOpenSessions?: number,
    /**
     * This enclave's node identity (PCR4 of its own attestation document): a repair's
     * target checks that the approval names it. Absent: this enclave is no repair target.
     */
    private readonly ownPcr4?: Uint8Array,
  ) {
    this.registry = new CeremonyRegistry(
      phaseTimeoutMs,
      (id, s) =>
        bump(this.counts.failed, s.kind) ||
        this.log("ceremony_expired", {
          session: id.slice(0, 16),
          kind: s.kind,
          phase: s.nextPhase,
        }),
      pendingShareTtlMs,
      Date.now,
      maxOpenSessions,
    );
  }

  /** Sessions open right now. */
  get size(): number {
    return this.registry.size;
  }

  start(req: CeremonyStartRequest): CeremonyReply {
    const walletId = needWalletId(req.walletId);
    this.registry.checkRoom();
    // Held until the session ends, so its share is never evicted mid-ceremony. Taken
    // before the id is claimed: a start refused with share_not_loaded (evicted) produced
    // nothing, so the host may reload the share and start the same session.
    // A repair's target, and the refresh completing it there, have no loaded share.
    const repairRefresh = req.kind === "refresh" && req.repairSession !== undefined;
    const repairHelper = req.kind === "repair" && req.partyIndex !== req.repairTarget;
    // A reshare's dealers are the members with a seat among reshareSeats; new members load nothing.
    const reshareDealer =
      req.kind === "reshare" &&
      Array.isArray(req.reshareSeats) &&
      req.reshareSeats.includes(req.partyIndex as number);
    const pin =
      req.kind === "sign" ||
      (req.kind === "refresh" && !repairRefresh) ||
      repairHelper ||
      reshareDealer
        ? this.shares.pin(walletId)
        : undefined;
    let id: string;
    try {
      id = this.registry.claim(req.sessionId);
    } catch (e) {
      pin?.release();
      throw e;
    }
    let session: AnySession;
    let generation = 0;
    let policy: TrustedPolicy | null = null;
    /** A policy change's new policy: its refresh's shares are sealed with it. */
    let newPolicy: TrustedPolicy | null = null;
    let replay: ReplayClaim | undefined;
    /** The open session of the same approved request this start superseded, if any. */
    const superseded: string[] = [];
    /** Who this enclave is in a session without a loaded share (repair, its refresh), and what it states. */
    let own: { me: number; shareState?: OwnShareState } | undefined;
    /** The repaired party a completing refresh took: freed if its start fails. */
    let taken: RepairedParty | undefined;
    try {
      if (req.kind === "repair") {
        const parties = needInt(req.parties, "parties", 2, 16);
        const threshold = needInt(req.threshold, "threshold", 2, parties);
        const me = needInt(req.partyIndex, "partyIndex", 1, parties);
        const target = needInt(req.repairTarget, "repairTarget", 1, parties);
        const helpers = req.repairHelpers;
        if (!Array.isArray(helpers) || helpers.length > 16)
          throw new EnclaveError("bad_request", "repairHelpers must be a list of party indices");
        let targetPcr4: Uint8Array;
        if (me !== target) {
          const loaded = pin!.entry;
          this.shares.refuseIfStale(walletId, loaded.generation);
          if (loaded.partyIndex !== me)
            throw new EnclaveError(
              "bad_request",
              `this enclave holds party ${loaded.partyIndex} of wallet ${walletId}, not ${me}`,
            );
          generation = loaded.generation;
          policy = loaded.policy;
          targetPcr4 = this.repairTargetPcr4(req, target);
        } else {
          if (this.shares.current(walletId) !== undefined)
            throw new EnclaveError(
              "bad_request",
              `this enclave already holds a share of wallet ${walletId}: it cannot be a repair's target`,
            );
          // What makes it the wallet's is that every helper reports its hash.
          policy = this.startPolicy(req);
          if (this.ownPcr4 === undefined)
            throw new EnclaveError(
              "bad_request",
              "this enclave knows no node identity to repair to",
            );
          targetPcr4 = this.ownPcr4;
          this.refuseMachineAmongPeers(req, targetPcr4, -1, target);
        }
        const verdict = this.approved(req, () =>
          this.repairApproval(req, policy, target, targetPcr4),
        );
        replay = this.claimReplay(req, id, verdict.request, superseded);
        session = new RepairSession({
          me,
          target,
          helpers,
          threshold,
          parties,
          sessionId: req.sessionId,
          ...(me === target
            ? { expectedPolicyHash: policy?.hash ?? NO_POLICY_HASH }
            : { share: pin!.entry.share, policyHash: policy?.hash ?? NO_POLICY_HASH }),
        });
        own = { me };
      } else if (req.kind === "reshare") {
        const parties = needInt(req.parties, "parties", 2, 16);
        const threshold = needInt(req.threshold, "threshold", 2, parties);
        const me = needInt(req.partyIndex, "partyIndex", 1, parties);
        let publicPackage: Uint8Array;
        let share: KeyShare | undefined;
        if (reshareDealer) {
          const loaded = pin!.entry;
          // Older than a commit certificate this enclave verified: refused, as a refresh is.
          this.shares.refuseIfStale(walletId, loaded.generation);
          share = loaded.share;
          publicPackage = share.publicPackage();
          policy = loaded.policy;
          generation = loaded.generation;
          if (req.publicPackage !== undefined || req.policy !== undefined)
            throw new EnclaveError(
              "bad_request",
              "a reshare's dealer deals from its sealed share: no package or policy is given to it",
            );
        } else {
          if (this.shares.current(walletId) !== undefined)
            throw new EnclaveError(
              "bad_request",
              `this enclave holds a share of wallet ${walletId}: it deals in a reshare, it cannot join as a new member`,
            );
          const pkg = req.publicPackage;
          if (!(pkg instanceof Uint8Array) || pkg.length < 1 || pkg.length > 64 * 1024)
            throw new EnclaveError("bad_request", "a new member needs the old publicPackage");
          publicPackage = pkg;
          // What makes it the wallet's is that every dealer states its hash (phase 2).
          policy = this.startPolicy(req);
          generation = (() => {
            try {
              return packageInfo(publicPackage).generation;
            } catch {
              throw new EnclaveError("bad_request", "the old publicPackage does not parse");
            }
          })();
        }
        const { dealers, seats } = checkReshareShape({
          me,
          dealers: req.reshareDealers,
          seats: req.reshareSeats,
          threshold,
          parties,
          oldThreshold: packageInfo(publicPackage).threshold,
        });
        if (reshareDealer && share!.index !== dealers[seats.indexOf(me)])
          throw new EnclaveError(
            "bad_request",
            `this enclave holds party ${share!.index} of wallet ${walletId}, not dealer ${dealers[seats.indexOf(me)]}`,
          );
        const members = this.reshareMembers(req, me, parties);
        const verdict = this.approved(req, () =>
          this.walletOrAdminApproval(req, policy, "reshare", (p) =>
            checkReshareApproval({
              policy: p,
              walletId,
              requestId: req.requestId as string,
              // The generation this member deals from or was given (checked at phase 2).
              fromGeneration: generation,
              threshold,
              members,
              approvalRequest: req.approvalRequest as Uint8Array,
              approvals: req.approvals ?? [],
            }),
          ),
        );
        replay = this.claimReplay(req, id, verdict.request, superseded);
        session = new ReshareCeremony({
          me,
          dealers,
          seats,
          threshold,
          parties,
          sessionId: req.sessionId,
          walletId,
          publicPackage,
          policyHash: policy?.hash ?? null,
          ...(share ? { share } : {}),
        });
        own = {
          me,
          ...(share && {
            shareState: ownShareStateOf(
              (m) => this.peers.signWithChannelKey(m),
              // Binds the dealers' seating too (reshare.ts reshareStatementTag).
              session.statementTag,
              "reshare",
              walletId,
              { index: me, generation },
              publicPackage,
              policy,
            ),
          }),
        };
      } else if (repairRefresh) {
        const repairId = req.repairSession;
        if (!(repairId instanceof Uint8Array) || repairId.length !== SESSION_ID_LEN)
          throw new EnclaveError("bad_request", `repairSession must be ${SESSION_ID_LEN} bytes`);
        if (req.policy !== undefined)
          throw new EnclaveError(
            "bad_request",
            "the refresh that completes a repair changes no policy",
          );
        // Approved first: a refused start leaves the party for a correctly approved one.
        const waiting = this.repaired.peek(walletId, repairId);
        this.shares.refuseIfStale(walletId, waiting.hollow.generation);
        policy = waiting.policy ?? null;
        const approved = this.approved(req, () => checkShareStart(this.approvals, req, policy));
        replay = this.claimReplay(req, id, approved, superseded);
        const held = this.repaired.take(walletId, repairId);
        taken = held;
        generation = held.hollow.generation;
        // Stated from the package it was assembled against: what the lost holder's would say.
        own = {
          me: held.hollow.index,
          shareState: ownShareStateOf(
            (m) => this.peers.signWithChannelKey(m),
            req.sessionId,
            "refresh",
            walletId,
            held.hollow,
            held.publicPackage,
            policy,
          ),
        };
        session = refreshFromHollow({ hollow: held.hollow, sessionId: req.sessionId });
      } else if (req.kind === "dkg") {
        if (req.importEnvelope !== undefined)
          throw new EnclaveError("bad_request", "a key import starts through startImport");
        const parties = needInt(req.parties, "parties", 2, 16);
        const threshold = needInt(req.threshold, "threshold", 2, parties);
        const started = this.approved(req, () =>
          checkDkgStart(this.approvals, req, threshold, parties),
        );
        replay = this.claimReplay(req, id, started?.approved, superseded);
        policy = started?.policy ?? null;
        session = new Dkg({
          threshold,
          parties,
          index: needInt(req.partyIndex, "partyIndex", 1, parties),
          sessionId: req.sessionId,
        });
      } else if (req.kind === "sign" || req.kind === "refresh") {
        const loaded = pin!.entry;
        // Older than a commit certificate this enclave verified: refused outright.
        this.shares.refuseIfStale(walletId, loaded.generation);
        // What the host believes decides nothing (a stale coordinator must not get current
        // participants blamed): the peers' share-state statements decide at phase 2.
        if (req.expectedGeneration !== undefined && req.expectedGeneration !== loaded.generation)
          this.log("generation_claim_differs", {
            walletId,
            loaded: loaded.generation,
            claimed: req.expectedGeneration,
          });
        generation = loaded.generation;
        if (req.kind === "sign" && generation === 0 && this.imported.has(walletId))
          throw new EnclaveError(
            "bad_request",
            `wallet ${walletId} was imported and is still at generation 0, whose shares the dealing enclave saw: refresh it before signing`,
          );
        const approved = this.approved(req, () =>
          checkShareStart(this.approvals, req, loaded.policy),
        );
        replay = this.claimReplay(req, id, approved, superseded);
        policy = loaded.policy;
        newPolicy = this.approved(req, () => policyChangeOf(req));
        if (req.kind === "sign") {
          if (!Array.isArray(req.signers) || req.signers.length > 16)
            throw new EnclaveError("bad_request", "signers must be a list of party indices");
          if (!(req.digest instanceof Uint8Array) || req.digest.length !== 32)
            throw new EnclaveError("bad_request", "digest must be 32 bytes");
          session = new Signing({
            share: loaded.share,
            sessionId: req.sessionId,
            parties: req.signers,
            digest: req.digest,
            path: req.path,
          });
        } else {
          session = new Refresh({ share: loaded.share, sessionId: req.sessionId });
        }
      } else {
        throw new EnclaveError("bad_request", `unknown ceremony kind ${String(req.kind)}`);
      }
      const reply = this.launch(
        req,
        id,
        session,
        generation,
        newPolicy ?? policy,
        pin,
        replay,
        undefined,
        own,
      );
      // For the host's audit: which session this start cancelled here (node-host.ts).
      return superseded.length > 0 ? { ...reply, superseded: fromHex(superseded[0]!) } : reply;
    } catch (e) {
      pin?.release();
      replay?.release();
      // A consumed hollow share is already gone; one not yet consumed is freed.
      taken?.hollow.free();
      throw ceremonyError(e);
    }
  }

  /**
   * The repair target's node identity as a helper verified it: PCR4 from the
   * target's attestation document in this start, never a host-given name.
   */
  private repairTargetPcr4(req: CeremonyStartRequest, target: number): Uint8Array {
    const at = Array.isArray(req.peerParties) ? req.peerParties.indexOf(target) : -1;
    if (at < 0 || !Array.isArray(req.peerDocuments))
      throw new EnclaveError("bad_request", "the repair's target must be among the peers");
    let pcr4: Uint8Array | undefined;
    try {
      pcr4 = this.peers.peerIdentity(req.peerDocuments[at]).pcr4;
    } catch (e) {
      throw new EnclaveError(
        "ceremony_failed",
        `attestation of the repair's target (party ${target}) refused: ${(e as Error).message}`,
        target,
      );
    }
    if (pcr4 === undefined || pcr4.length !== 48 || pcr4.every((b) => b === 0))
      throw new EnclaveError(
        "ceremony_failed",
        `the repair's target (party ${target}) is attested without a node identity (PCR4)`,
        target,
      );
    // The target's "no share yet" check sees only its loaded shares; a machine that is already in
    // this session (a helper, this enclave) holds a share of the wallet: never its target too.
    if (this.ownPcr4 !== undefined && toHex(this.ownPcr4) === toHex(pcr4))
      throw new EnclaveError(
        "bad_request",
        `the repair's target (party ${target}) runs on this helper's machine (same PCR4)`,
        target,
      );
    this.refuseMachineAmongPeers(req, pcr4, at, target);
    return pcr4;
  }

  /** Refuses a repair whose target machine (`pcr4`) is also another member's (every peer but `skip`). */
  private refuseMachineAmongPeers(
    req: CeremonyStartRequest,
    pcr4: Uint8Array,
    skip: number,
    target: number,
  ): void {
    const machine = toHex(pcr4);
    (Array.isArray(req.peerDocuments) ? req.peerDocuments : []).forEach((doc, k) => {
      if (k === skip) return;
      const party = String(Array.isArray(req.peerParties) ? req.peerParties[k] : "?");
      let other: Uint8Array | undefined;
      try {
        other = this.peers.peerIdentity(doc).pcr4;
      } catch (e) {
        throw new EnclaveError(
          "ceremony_failed",
          `attestation of the repair's party ${party} refused: ${(e as Error).message}`,
        );
      }
      if (other !== undefined && toHex(other) === machine)
        throw new EnclaveError(
          "bad_request",
          `the repair's target (party ${target}) runs on the machine (same PCR4) of its party ${party}`,
          target,
        );
    });
  }

  /**
   * A repair's approvals: under the wallet's policy (a helper's sealed one; the
   * target's from the start, which every helper must confirm) or, failing that,
   * the administrators' (a cluster whose operators replace a node for the
   * wallet's owners). Never waived, whatever the settings.
   */
  private repairApproval(
    req: CeremonyStartRequest,
    policy: TrustedPolicy | null,
    party: number,
    targetPcr4: Uint8Array,
  ): ApprovalVerdict {
    return this.walletOrAdminApproval(req, policy, "repair", (p) =>
      checkRepairApproval({
        policy: p,
        walletId: req.walletId,
        requestId: req.requestId as string,
        party,
        targetPcr4,
        approvalRequest: req.approvalRequest as Uint8Array,
        approvals: req.approvals ?? [],
      }),
    );
  }

  /**
   * A repair's or reshare's approvals: under the wallet's policy or, failing that, the
   * administrators' (operators who replace or add machines for the wallet's owners). Never
   * waived, whatever the settings.
   */
  private walletOrAdminApproval(
    req: CeremonyStartRequest,
    policy: TrustedPolicy | null,
    what: "repair" | "reshare",
    check: (p: TrustedPolicy) => ApprovalVerdict,
  ): ApprovalVerdict {
    if (typeof req.requestId !== "string")
      throw new ApprovalError("malformed", "an approved start must carry the client's request id");
    const admin = this.approvals.adminPolicy;
    if (policy === null) {
      if (admin === null)
        throw new ApprovalError(
          "unknown_signer",
          `the wallet has no policy and no administrators' policy is built in: no one can approve its ${what}`,
        );
      return check(admin);
    }
    try {
      return check(policy);
    } catch (e) {
      if (!(e instanceof ApprovalError) || admin === null) throw e;
      try {
        return check(admin);
      } catch {
        // The wallet's own refusal says more than the administrators'.
        throw e;
      }
    }
  }

  /**
   * The policy a start hands a member without a sealed share (a repair's target, a reshare's
   * new member), opened under its own hash: the peers' statements must then name that hash.
   */
  private startPolicy(req: CeremonyStartRequest): TrustedPolicy | null {
    const encoding = req.policy;
    if (encoding === undefined) return null;
    return this.approved(req, () => {
      if (!(encoding instanceof Uint8Array))
        throw new ApprovalError("malformed", "policy must be bytes");
      return openTrustedPolicy(encoding, policyHash(encoding));
    });
  }

  /**
   * The new committee as a reshare's approval names it: every seat's node id (from the start)
   * with its machine's PCR4 as this enclave verified it (its own for its own seat, every other
   * seat's from that seat's attestation document in this start). Every seat must be a peer of
   * the session, attested with a node identity, on a machine of its own.
   */
  private reshareMembers(req: CeremonyStartRequest, me: number, parties: number): ReshareMember[] {
    const ids = typeof req.reshareNodes === "string" ? req.reshareNodes.split(",") : [];
    if (ids.length !== parties || !ids.every((n) => isNodeId(n)) || new Set(ids).size !== parties)
      throw new EnclaveError(
        "bad_request",
        `reshareNodes must name the ${parties} members' distinct node ids in seat order`,
      );
    const peerParties = Array.isArray(req.peerParties) ? req.peerParties : [];
    const docs = Array.isArray(req.peerDocuments) ? req.peerDocuments : [];
    if (
      peerParties.length !== parties - 1 ||
      new Set([...peerParties, me]).size !== parties ||
      docs.length !== peerParties.length
    )
      throw new EnclaveError(
        "bad_request",
        "every seat of the new committee must be a peer of the reshare",
      );
    if (this.ownPcr4 === undefined)
      throw new EnclaveError("bad_request", "this enclave knows no node identity to reshare to");
    const machines = new Set<string>();
    return ids.map((nodeId, k) => {
      const seat = k + 1;
      let pcr4: Uint8Array | undefined;
      if (seat === me) pcr4 = this.ownPcr4;
      else
        try {
          pcr4 = this.peers.peerIdentity(docs[peerParties.indexOf(seat)]).pcr4;
        } catch (e) {
          throw new EnclaveError(
            "ceremony_failed",
            `attestation of the reshare's seat ${seat} refused: ${(e as Error).message}`,
            seat,
          );
        }
      if (pcr4 === undefined || pcr4.length !== 48 || pcr4.every((b) => b === 0))
        throw new EnclaveError(
          "ceremony_failed",
          `the reshare's seat ${seat} is attested without a node identity (PCR4)`,
          seat,
        );
      if (machines.has(toHex(pcr4)))
        throw new EnclaveError(
          "bad_request",
          `the reshare's seat ${seat} runs on the machine (same PCR4) of another seat`,
          seat,
        );
      machines.add(toHex(pcr4));
      return { nodeId, pcr4 };
    });
  }

  /**
   * A key import (lifecycle-import.ts): a DKG start that carries the client's
   * envelope. Checked like a DKG start against the administrators' `import`
   * approval (of the envelope's hash) before anything is opened; then the
   * dealer opens the envelope (`open`: async, HPKE) and every participant
   * runs an ImportSession instead of a DKG.
   *
   * An import is dealt at most once per envelope and approval here: its
   * replay claim is never superseded (a superseded dealer session would
   * already have sent its shares), the dealer marks the approval used and
   * the envelope dealt the moment its phase-1 messages (the dealt shares)
   * leave, and an envelope is opened only while no other start holds it.
   * Without that a coordinator could start a session of its own choosing at
   * the dealer with the client's envelope and approvals, let it deal, abort
   * it and run the real import: two independent sharings of one key.
   */
  async startImport(
    req: CeremonyStartRequest,
    open: (context: {
      walletId: string;
      requestId: string;
      threshold: number;
      parties: number;
    }) => Promise<KeyShare[]>,
  ): Promise<CeremonyReply> {
    const walletId = needWalletId(req.walletId);
    if (req.kind !== "dkg")
      throw new EnclaveError("bad_request", "a key import is a DKG start with an importEnvelope");
    this.registry.checkRoom();
    const id = this.registry.claim(req.sessionId);
    let replay: ReplayClaim | undefined;
    let envelope: EnvelopeClaim | undefined;
    let session: ImportSession | undefined;
    try {
      const parties = needInt(req.parties, "parties", 2, MAX_IMPORT_PARTIES);
      const threshold = needInt(req.threshold, "threshold", 2, parties);
      const me = needInt(req.partyIndex, "partyIndex", 1, parties);
      const dealer = needInt(req.importDealer, "importDealer", 1, parties);
      const started = this.approved(req, () =>
        checkDkgStart(this.approvals, req, threshold, parties),
      );
      // checkDkgStart never waives an import's approvals: a null here is a bug, refused.
      if (!started) throw new EnclaveError("unauthorised", "a key import needs approvals");
      // Never superseded: no list to report a superseded session in.
      replay = this.claimReplay(req, id, started.approved);
      const context = { walletId, requestId: req.requestId as string, threshold, parties };
      if (me === dealer) envelope = this.claimEnvelope(req, started.approved.expiresAt);
      const shares = me === dealer ? await open(context) : undefined;
      session = new ImportSession({
        me,
        dealer,
        threshold,
        parties,
        sessionId: req.sessionId,
        ...(shares === undefined ? {} : { shares }),
      });
      // The registry may have filled while the envelope was opened.
      this.registry.checkRoom();
      const dealt = envelope;
      return this.launch(req, id, session, 0, started.policy, undefined, replay, () => {
        // The dealt shares leave with these messages: the approval is used and the
        // envelope dealt from here on, whatever becomes of this session.
        replay?.spend();
        dealt?.deal();
      });
    } catch (e) {
      session?.close();
      replay?.release();
      envelope?.release();
      throw ceremonyError(e);
    }
  }

  /** Opens the session's peer channel, runs phase 1 and registers the session (every kind). */
  private launch(
    req: CeremonyStartRequest,
    id: string,
    session: AnySession,
    generation: number,
    /** What the session's new share is sealed with (a policy change's: the new policy). */
    policy: TrustedPolicy | null,
    pin: ReturnType<ShareTable["pin"]> | undefined,
    replay: ReplayClaim | undefined,
    /** Called once phase 1 produced messages, before any leaves (a key import's dealing). */
    onPhase1Messages?: () => void,
    /** A session without a loaded share (repair, the refresh completing it): its party index and statement. */
    own?: { me: number; shareState?: OwnShareState },
  ): CeremonyReply {
    const walletId = req.walletId;
    const me =
      own?.me ??
      (req.kind === "dkg" ? (req.partyIndex as number) : this.shares.current(walletId)!.partyIndex);
    let peer: PeerSession;
    try {
      peer = this.peers.open(req.sessionId, me, req.peerDocuments, req.peerParties);
    } catch (e) {
      session.close();
      throw e;
    }
    // What this enclave loaded, signed for this session: every peer checks it at phase 2.
    const shareState = own
      ? own.shareState
      : req.kind === "dkg"
        ? undefined
        : ownShareState(
            (m) => this.peers.signWithChannelKey(m),
            req.sessionId,
            req.kind as "sign" | "refresh",
            walletId,
            pin!.entry.share,
            pin!.entry.policy,
          );
    const out = session.phase1();
    if (out.length > 0) onPhase1Messages?.();
    const messages = out.map((m) => {
      const sealed = peer.seal(m.bytes);
      // A dealt share is in clear in its message until sealed (lifecycle-import.ts).
      if (session instanceof ImportSession) m.bytes.fill(0);
      return sealed;
    });
    this.registry.add(id, {
      kind: req.kind,
      walletId,
      session,
      generation,
      // What the session's new share is sealed with: a policy change's new policy.
      policy,
      peer,
      shareState,
      release: () => {
        pin?.release();
        replay?.release();
        this.replayClaims.delete(id);
      },
    });
    if (replay) this.replayClaims.set(id, replay);
    this.log("ceremony_started", {
      session: id.slice(0, 16),
      kind: req.kind,
      walletId,
      generation,
    });
    return { messages, generation, ...(shareState && { shareState: shareState.signed }) };
  }

  /** The wallet an open session is of (service.ts refuses steps of a retired wallet). */
  walletOf(sessionId: unknown): string | undefined {
    return this.registry.walletOf(sessionId);
  }

  step(req: CeremonyStepRequest): CeremonyReply {
    const asked = req.sessionId instanceof Uint8Array ? toHex(req.sessionId) : "";
    if (this.superseded.delete(asked))
      throw new EnclaveError(
        "approval_replayed",
        "a concurrent session of the same approved request superseded this one in this enclave",
        null,
        "replayed",
      );
    const [id, s] = this.registry.take(req.sessionId, req.phase);
    // Running from now on: no duplicate start cancels it (approval-replay.ts).
    this.replayClaims.get(id)?.progress();
    try {
      if (!Array.isArray(req.messages) || req.messages.length > MAX_STEP_MESSAGES)
        throw new EnclaveError(
          "bad_request",
          `messages must be a list of at most ${MAX_STEP_MESSAGES}`,
        );
      // Before the core reads a peer's byte: every peer loaded what this enclave did.
      if (req.phase === 2 && s.session instanceof ReshareCeremony)
        s.session.checkStates(req.shareStates ?? [], s.peer.peerSigningKeys());
      else if (req.phase === 2 && s.shareState)
        checkPeerShareStates(s.shareState.state, req.shareStates, s.peer.peerSigningKeys());
      else if (req.shareStates !== undefined && req.shareStates.length > 0)
        throw new EnclaveError("bad_request", "shareStates belong to phase 2 of a sign or refresh");
      // Opened (authenticated, decrypted, replay-checked) before the core sees them.
      const inbox = req.messages.map((b) => parseMessage(s.peer.open(b, req.phase - 1)));
      let final;
      try {
        if (req.phase < 4) {
          const out = req.phase === 2 ? s.session.phase2(inbox) : s.session.phase3(inbox);
          // Phase 3's messages let the peers finish: from here the approved request counts as run.
          if (req.phase === 3) this.replayClaims.get(id)?.spend();
          this.registry.advance(id);
          return { messages: out.map((m) => s.peer.seal(m.bytes)), generation: s.generation };
        }
        final = s.session.phase4(inbox);
      } finally {
        // Opened bodies can hold secrets (fragments, seeds); the core has copied them.
        for (const m of inbox) m.bytes.fill(0);
      }
      this.registry.drop(id);
      bump(this.counts.finished, s.kind);
      this.log("ceremony_finished", {
        session: id.slice(0, 16),
        kind: s.kind,
        walletId: s.walletId,
      });
      if (s.session instanceof RepairSession) {
        // The target's hollow share waits here for the refresh that must follow at once.
        const party = final as RepairedParty | null;
        if (party) {
          party.policy = s.policy ?? null;
          this.repaired.put(s.walletId, fromHex(id), party);
        }
        return {
          messages: [],
          generation: s.generation,
          ...(party && { partyIndex: party.hollow.index, publicKey: party.hollow.publicKey }),
        };
      }
      if (s.session instanceof Signing) {
        const sig = final as { r: Uint8Array; s: Uint8Array; recoveryId: number };
        return {
          messages: [],
          generation: s.generation,
          signature: Uint8Array.from([...sig.r, ...sig.s, sig.recoveryId]),
        };
      }
      const share = final as KeyShare;
      if (s.session instanceof ImportSession) {
        this.imported.add(s.walletId);
        if (this.imported.size > MAX_IMPORTS_REMEMBERED)
          this.imported.delete(this.imported.values().next().value!);
      }
      this.shares.holdPending(id, s.walletId, share, s.policy ?? null, {
        // A reshare's new share is committed as a refresh's (all n_new holders, commit certificate).
        ceremony: s.kind === "refresh" || s.kind === "reshare" ? "refresh" : "dkg",
        keys: new Map([...s.peer.peerSigningKeys(), [share.index, this.peers.ownSigningKey()]]),
        sign: (m) => this.peers.signWithChannelKey(m),
      });
      const pkg = share.publicPackage();
      return {
        messages: [],
        generation: share.generation,
        publicKey: share.publicKey,
        publicPackage: pkg,
        chainCode: packageInfo(pkg).chainCode,
        partyIndex: share.index,
        // What this enclave vouches for, for the client to verify (wallet-statements.ts).
        statement: signedWalletStatement(
          (m) => this.peers.signWithChannelKey(m),
          s.walletId,
          share,
          s.policy ?? null,
        ),
      };
    } catch (e) {
      this.registry.drop(id);
      bump(this.counts.failed, s.kind);
      this.log("ceremony_failed", {
        session: id.slice(0, 16),
        kind: s.kind,
        phase: req.phase,
        reason: (e as Error).message,
      });
      throw ceremonyError(e);
    }
  }

  /**
   * Remembers the approved request a start carries (just verified) for its
   * session; a replay is refused like any approval check. Nothing to
   * remember for a development start without approvals.
   */
  private claimReplay(
    req: CeremonyStartRequest,
    id: string,
    approved: ApprovableRequest | null | undefined,
    /**
     * Receives the id of the session this start superseded. Absent (a key import,
     * startImport): this start supersedes nothing.
     */
    superseded?: string[],
  ): ReplayClaim | undefined {
    if (!approved) return undefined;
    const supersede = (older: string) => {
      superseded?.push(older);
      // Still before its phase-2 step (so before its phase-3 messages): no peer can finish it (approval-replay.ts).
      this.registry.drop(older);
      this.superseded.add(older);
      if (this.superseded.size > MAX_SUPERSEDED_REMEMBERED)
        this.superseded.delete(this.superseded.values().next().value!);
      // The enclave cannot tell which node started either session (hosts relay the
      // start); each node's host audits the starts it relayed (node-host.ts).
      this.log("ceremony_superseded", {
        session: older.slice(0, 16),
        by: id.slice(0, 16),
        kind: req.kind,
        walletId: req.walletId,
      });
    };
    return this.approved(req, () =>
      this.replay.claim(approved, id, superseded ? supersede : undefined),
    );
  }

  /** Holds the import envelope `req` carries for the dealer's open; a second open is refused (opened-envelopes.ts). */
  private claimEnvelope(req: CeremonyStartRequest, expiresAt: number): EnvelopeClaim {
    try {
      return this.envelopes.claim(req.importEnvelope as Uint8Array, expiresAt);
    } catch (e) {
      if (e instanceof EnclaveError)
        this.log("ceremony_refused", {
          kind: req.kind,
          walletId: req.walletId,
          code: e.code,
          reason: e.reason ?? e.message,
        });
      throw e;
    }
  }

  /**
   * Runs an approval check; a refusal is logged (the host's audit sees the
   * code and reason too) and becomes an EnclaveError carrying both.
   */
  private approved<T>(req: CeremonyStartRequest, check: () => T): T {
    try {
      return check();
    } catch (e) {
      if (!(e instanceof ApprovalError)) throw e;
      this.log("ceremony_refused", {
        kind: req.kind,
        walletId: req.walletId,
        code: e.code,
        reason: e.reason,
      });
      throw new EnclaveError(e.code, e.message, null, e.reason);
    }
  }

  /** Wipes the session and any share it produced that was not activated. */
  abort(req: CeremonyAbortRequest): { dropped: boolean } {
    const id = toHex(req.sessionId);
    const dropped = this.registry.drop(id);
    const pending = this.shares.dropPending(id);
    this.superseded.delete(id);
    if (dropped || pending) this.counts.aborted++;
    if (dropped || pending) this.log("ceremony_aborted", { session: id.slice(0, 16) });
    return { dropped: dropped || pending };
  }

  /** Wipes every open session (shutdown). */
  closeAll(): void {
    this.registry.dropAll();
    this.repaired.clear();
  }

  /** Frees a repaired party of the wallet waiting here (a retirement). */
  dropRepaired(walletId: string): void {
    this.repaired.drop(walletId);
  }
}

/** Adds one to `kind`'s count; returns false, so `bump(...) || log(...)` runs both. */
function bump(counts: Map<string, number>, kind: string): false {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return false;
}

/** Every failure of a ceremony reaches the host as ceremony_failed unless it has a closer enclave code; blame stays a field. */
function ceremonyError(e: unknown): Error {
  if (e instanceof EnclaveError) return e;
  if (e instanceof DklsError)
    return new EnclaveError("ceremony_failed", `${e.code}: ${e.message}`, e.blame.party ?? null);
  if (e instanceof PeerMessageError)
    return new EnclaveError(
      "ceremony_failed",
      `peer message refused (${e.code}): ${e.message}`,
      e.party ?? null,
    );
  return new EnclaveError("ceremony_failed", (e as Error).message ?? String(e));
}
