/**
 * The enclave's operations, independent of transport: a small dispatcher
 * over the share table (shares.ts), the ceremonies (ceremonies.ts) and the
 * peer sessions (peer-sessions.ts). Reaches nothing but its caller and, for
 * sealing and loading shares, KMS over TLS through the host's relay
 * (kms/kms-client.ts); storage is the host's business; what the host hands
 * in is checked and never trusted.
 */
import type { Nsm } from "../attestation/nsm.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import { toHex } from "../shared/hex.ts";
import { ceremonyCounterFields } from "../shared/wire/enclave-counters.ts";
import type {
  ActivateShareRequest,
  AttestReply,
  AttestRequest,
  CeremonyAbortRequest,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
  HealthReply,
  LoadShareReply,
  LoadShareRequest,
  RetireWalletReply,
  RetireWalletRequest,
  SealShareReply,
  SealShareRequest,
  ProveActiveReply,
  ProveActiveRequest,
  SupersededShareReply,
  SupersededShareRequest,
  SupersessionNonceReply,
  SupersessionNonceRequest,
} from "../shared/wire/enclave-ops.ts";
import { ADMIN_POLICY_HEX } from "./admin-policy.ts";
import { builtInApprovalSettings, type ApprovalSettings } from "./approval-gate.ts";
import { Ceremonies } from "./ceremonies.ts";
import { verifyCommitCertificate } from "./commit-certificate.ts";
import { loadDkls, wasmMemoryBytes } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { EnclaveKms } from "./kms/kms-client.ts";
import { RetiredWallets } from "./lifecycle-retire.ts";
import { PeerSessions } from "./peer-sessions.ts";
import { RecipientKey } from "./recipient-key.ts";
import type { ShareCacheStats } from "./share-cache.ts";
import { ShareTable } from "./shares.ts";
import { proveActive, SupersessionNonces, verifySupersession } from "./supersession.ts";

export type { Nsm } from "../attestation/nsm.ts";

export interface EnclaveServiceOptions {
  nsm: Nsm;
  /** PCR0 of this image, reported by health (and by every attestation document). */
  pcr0: Uint8Array;
  /** PCR4 from this enclave's own attestation document: its node identity, bound into every share it seals. */
  pcr4: Uint8Array;
  /** This enclave's own KMS client; without it SEAL_SHARE / LOAD_SHARE answer kms_not_configured. */
  kms?: EnclaveKms;
  /** Deadline for each ceremony phase to arrive. */
  phaseTimeoutMs?: number;
  /** How long a finished DKG/refresh share may wait to be sealed and activated. */
  pendingShareTtlMs?: number;
  /** Open ceremony sessions at once (ceremony-registry.ts DEFAULT_MAX_OPEN_SESSIONS). */
  maxOpenSessions?: number;
  /** Memory budget of the loaded shares in bytes (share-cache.ts DEFAULT_SHARE_BUDGET_BYTES; at most MAX_SHARE_BUDGET_BYTES). */
  shareBudgetBytes?: number;
  /** Structured events without secrets (no shares, keys or message bodies). */
  log?: (event: string, fields: Record<string, unknown>) => void;
  wasm?: Uint8Array;
  /** Roots that peers' attestation documents must chain to. */
  peerRoots: TrustedRoot[];
  /** Accept peers attested by a development root (simulated NSM). */
  allowDevelopment?: boolean;
  /** Images whose enclaves may be peers besides this enclave's own (never all zero). */
  allowedPeerPcr0?: Uint8Array[];
  /** Oldest peer attestation document accepted at ceremony start. */
  peerDocumentMaxAgeMs?: number;
  /** Whose approvals ceremonies need (approval-gate.ts); default: none built in, approvals required. */
  approvals?: ApprovalSettings;
}

export class EnclaveService {
  /** Per-boot KMS recipient key: its public half goes into every attestation document. */
  private readonly recipient = new RecipientKey();
  private readonly shares: ShareTable;
  private readonly peers: PeerSessions;
  private readonly ceremonies: Ceremonies;
  private readonly retired: RetiredWallets;

  constructor(private readonly opts: EnclaveServiceOptions) {
    loadDkls(opts.wasm);
    const log = opts.log ?? (() => {});
    const pendingTtlMs = opts.pendingShareTtlMs ?? 10 * 60_000;
    const owner = opts.kms
      ? { kms: opts.kms, recipient: this.recipient, attest: () => this.attest({}).document }
      : null;
    this.shares = new ShareTable(owner, toHex(opts.pcr4), log, pendingTtlMs, opts.shareBudgetBytes);
    this.peers = new PeerSessions({
      roots: opts.peerRoots,
      allowDevelopment: opts.allowDevelopment,
      allowedPcr0: peerImages(opts.pcr0, opts.allowedPeerPcr0 ?? []),
      documentMaxAgeMs: opts.peerDocumentMaxAgeMs ?? 10 * 60_000,
    });
    const approvals = opts.approvals ?? builtInApprovalSettings(ADMIN_POLICY_HEX);
    this.ceremonies = new Ceremonies(
      this.shares,
      this.peers,
      log,
      opts.phaseTimeoutMs ?? 120_000,
      pendingTtlMs,
      approvals,
      opts.maxOpenSessions,
      opts.pcr4,
    );
    this.retired = new RetiredWallets(this.shares, approvals, log);
  }

  health(): HealthReply {
    return {
      status: "ok",
      pcr0: toHex(this.opts.pcr0),
      pcr4: toHex(this.opts.pcr4),
      loadedWallets: this.shares.size,
      openSessions: this.ceremonies.size,
      ...shareCacheHealth(this.shares.cacheStats()),
      // Counts only, no ids: the host exports them as metrics (src/host/metrics.ts).
      ...ceremonyCounterFields(this.ceremonies.counts),
    };
  }

  /**
   * user_data is always this enclave's channel-key binding: a host-chosen
   * value would let the host obtain a genuine document vouching for keys it
   * holds, and sit in the middle of enclave-to-enclave traffic.
   */
  attest(req: AttestRequest): AttestReply {
    if (req.userData !== undefined)
      throw new EnclaveError(
        "bad_request",
        "user_data is set by the enclave (its channel keys), not by the host",
      );
    return {
      document: this.opts.nsm.attest({
        publicKey: this.recipient.spkiDer,
        userData: this.peers.channelKeyBinding(),
        nonce: req.nonce,
      }),
    };
  }

  async loadShare(req: LoadShareRequest): Promise<LoadShareReply> {
    this.retired.refuse(req.walletId);
    const reply = await this.shares.load(req);
    // Retired while KMS answered: the share just loaded goes too.
    if (this.retired.isRetired(reply.walletId)) this.shares.forget(reply.walletId);
    this.retired.refuse(reply.walletId);
    return reply;
  }

  startCeremony(req: CeremonyStartRequest): CeremonyReply {
    this.retired.refuse(req.walletId);
    return this.ceremonies.start(req);
  }

  /** A key import: a DKG start carrying the client's envelope, which the dealer opens (lifecycle-import.ts). */
  startImport(req: CeremonyStartRequest): Promise<CeremonyReply> {
    this.retired.refuse(req.walletId);
    const envelope = req.importEnvelope;
    if (!(envelope instanceof Uint8Array))
      throw new EnclaveError("bad_request", "a key import needs its importEnvelope");
    return this.ceremonies.startImport(req, (context) =>
      this.peers.openImportedKey(envelope, context),
    );
  }

  /** Checks the approvals, wipes the wallet's share and refuses the wallet from now on (lifecycle-retire.ts). */
  retireWallet(req: RetireWalletRequest): RetireWalletReply {
    const reply = this.retired.retire(req);
    this.ceremonies.dropRepaired(reply.walletId);
    return reply;
  }

  stepCeremony(req: CeremonyStepRequest): CeremonyReply {
    // A session open when its wallet was retired goes no further: a sign would
    // otherwise still return its signature at phase 4. Dropped, then refused.
    const walletId = this.ceremonies.walletOf(req.sessionId);
    if (walletId !== undefined && this.retired.isRetired(walletId)) {
      this.ceremonies.abort({ sessionId: req.sessionId });
      this.retired.refuse(walletId);
    }
    return this.ceremonies.step(req);
  }

  abortCeremony(req: CeremonyAbortRequest): { dropped: boolean } {
    return this.ceremonies.abort(req);
  }

  sealShare(req: SealShareRequest): Promise<SealShareReply> {
    // A ceremony that was open when its wallet was retired produces nothing usable.
    this.retired.refuse(req.walletId);
    return this.shares.seal(req);
  }

  activateShare(req: ActivateShareRequest): LoadShareReply {
    this.retired.refuse(req.walletId);
    return this.shares.activate(req, (subject) =>
      verifyCommitCertificate(req.certificateStatements, req.certificateDocuments, subject, {
        attested: (doc) => this.peers.attestedAtIssue(doc),
        ownKey: this.peers.ownSigningKey(),
      }),
    );
  }

  /** Whether verified evidence shows this node's share superseded by a share repair (supersession.ts). */
  supersededShare(req: SupersededShareRequest): SupersededShareReply {
    this.retired.refuse(req.walletId);
    return verifySupersession(req, this.shares, this.supersessionNonces, {
      attested: (doc) => this.peers.attestedAtIssue(doc),
      ownPcr4: this.opts.pcr4,
    });
  }

  /** A fresh single-use nonce for the wallet's next SUPERSEDED_SHARE (supersession.ts). */
  supersessionNonce(req: SupersessionNonceRequest): SupersessionNonceReply {
    return this.supersessionNonces.issue(req);
  }
  private readonly supersessionNonces = new SupersessionNonces();

  /** Signs which share of the wallet is loaded here now, for another enclave's nonce (supersession.ts). */
  proveActive(req: ProveActiveRequest): ProveActiveReply {
    this.retired.refuse(req.walletId);
    return proveActive(req, this.shares, (m) => this.peers.signWithChannelKey(m));
  }

  shutdown(): void {
    this.ceremonies.closeAll();
    this.peers.destroy();
    this.shares.clear();
  }
}

/**
 * This image plus the configured others, each once. An all-zero PCR0 (a
 * debug enclave, whose memory its host reads) is never among them: a debug
 * enclave of our own admits no peer at all.
 */
export function peerImages(own: Uint8Array, others: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of [own, ...others]) {
    if (p.every((b) => b === 0)) continue;
    if (!out.some((q) => toHex(q) === toHex(p))) out.push(p);
  }
  return out;
}

function shareCacheHealth(s: ShareCacheStats): Partial<HealthReply> {
  return {
    shareBudgetBytes: s.budgetBytes,
    shareBytesUsed: s.usedBytes,
    sharesPinned: s.pinned,
    shareHits: s.hits,
    shareMisses: s.misses,
    shareEvictions: s.evictions,
    shareLoadsRefused: s.refused,
    wasmMemoryBytes: wasmMemoryBytes(),
  };
}
