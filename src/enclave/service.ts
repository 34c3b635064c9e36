/**
 * The enclave's operations, independent of transport. Holds the node's key
 * shares (inside the wasm core) and its open ceremonies. Reaches nothing but
 * its caller: KMS and storage are the host's business; what the host hands
 * in is checked here and never trusted.
 */
import { createHash } from "node:crypto";
import { decodeAttestationDocument } from "../attestation/cose.ts";
import { DklsError, Dkg, KeyShare, Refresh, Signing, loadDkls, packageInfo } from "./dkls23/binding.ts";
import { parseMessage } from "../shared/wire/protocol-message.ts";
import { toHex } from "../shared/hex.ts";
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
  SealShareReply,
  SealShareRequest,
} from "../shared/wire/enclave-ops.ts";
import { CeremonyRegistry, type PendingShare } from "./ceremony-registry.ts";
import { EnclaveError } from "./errors.ts";
import { RecipientKey } from "./recipient-key.ts";
import { sealShare, unsealShare } from "./seal.ts";
import { PeerKeys } from "./peer-keys.ts";
import { verifyPeer, type PeerIdentity } from "./peer-attestation.ts";
import { PeerSession, PeerMessageError } from "./peer-envelope.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";

export interface Nsm {
  attest(req: { publicKey?: Uint8Array; userData?: Uint8Array; nonce?: Uint8Array }): Uint8Array;
}

export interface EnclaveServiceOptions {
  nsm: Nsm;
  /** PCR0 of this image, reported by health (and by every attestation document). */
  pcr0: Uint8Array;
  /** Deadline for each ceremony phase to arrive. */
  phaseTimeoutMs?: number;
  /** How long a finished DKG/refresh share may wait to be sealed and activated. */
  pendingShareTtlMs?: number;
  /** Structured events without secrets (no shares, keys or message bodies). */
  log?: (event: string, fields: Record<string, unknown>) => void;
  wasm?: Uint8Array;
  /** Roots that peers' attestation documents must chain to. */
  peerRoots: TrustedRoot[];
  /** Accept peers attested by a development root (simulated NSM). */
  allowDevelopment?: boolean;
  /** Images whose enclaves may be peers; default: this enclave's own PCR0 only. */
  allowedPeerPcr0?: Uint8Array[];
  /** Oldest peer attestation document accepted at ceremony start. */
  peerDocumentMaxAgeMs?: number;
}

interface LoadedShare {
  share: KeyShare;
  generation: number;
  partyIndex: number;
  publicKey: Uint8Array;
}

const MAX_WALLETS = 100_000;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function needInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new EnclaveError("bad_request", `${name} must be an integer in ${min}..${max}`);
  return v;
}

function needWalletId(v: unknown): string {
  if (typeof v !== "string" || !/^[A-Za-z0-9._:-]{1,128}$/.test(v)) throw new EnclaveError("bad_request", "walletId must be 1-128 characters of [A-Za-z0-9._:-]");
  return v;
}

export class EnclaveService {
  private readonly recipient = new RecipientKey();
  /** Per-boot channel keys; their binding goes into every attestation document. */
  private readonly peerKeys = new PeerKeys();
  /**
   * Peer documents already verified, by SHA-256 of the document, until they
   * age out: a node reuses its document across sessions, and re-verifying two
   * P-384 chains per peer per signature would dominate signing time.
   */
  private readonly verifiedPeers = new Map<string, { identity: PeerIdentity; until: number }>();
  private readonly shares = new Map<string, LoadedShare>();
  private readonly pending = new Map<string, PendingShare>();
  private readonly registry: CeremonyRegistry;
  private readonly log: NonNullable<EnclaveServiceOptions["log"]>;
  private readonly pendingTtl: number;

  constructor(private readonly opts: EnclaveServiceOptions) {
    loadDkls(opts.wasm);
    this.log = opts.log ?? (() => {});
    this.pendingTtl = opts.pendingShareTtlMs ?? 10 * 60_000;
    this.registry = new CeremonyRegistry(opts.phaseTimeoutMs ?? 120_000, (id, s) =>
      this.log("ceremony_expired", { session: id.slice(0, 16), kind: s.kind, phase: s.nextPhase }),
    );
  }

  health(): HealthReply {
    return { status: "ok", pcr0: toHex(this.opts.pcr0), loadedWallets: this.shares.size, openSessions: this.registry.size };
  }

  /**
   * user_data is always this enclave's channel-key binding: a host-chosen
   * value would let the host obtain a genuine document vouching for keys it
   * holds, and sit in the middle of enclave-to-enclave traffic.
   */
  attest(req: AttestRequest): AttestReply {
    if (req.userData !== undefined) throw new EnclaveError("bad_request", "user_data is set by the enclave (its channel keys), not by the host");
    return { document: this.opts.nsm.attest({ publicKey: this.recipient.spkiDer, userData: this.peerKeys.channelKeyBinding(), nonce: req.nonce }) };
  }

  /** Verifies every other participant's document and opens an end-to-end session with them. */
  private peerSession(sessionId: Uint8Array, me: number, docs: unknown, parties: unknown): PeerSession {
    if (!Array.isArray(docs) || !Array.isArray(parties) || docs.length !== parties.length || docs.length > 15) {
      throw new EnclaveError("bad_request", "peerDocuments and peerParties must be lists of equal length (at most 15)");
    }
    const peers = new Map<number, PeerIdentity>();
    for (let k = 0; k < docs.length; k++) {
      const party = needInt(parties[k], "peer party index", 1, 16);
      if (party === me || peers.has(party)) throw new EnclaveError("bad_request", `peer party ${party} is duplicated or this enclave's own`);
      try {
        peers.set(party, this.verifiedPeer(docs[k] as Uint8Array));
      } catch (e) {
        throw new EnclaveError("ceremony_failed", `attestation of party ${party} refused: ${(e as Error).message}`, party);
      }
    }
    return new PeerSession({ sessionId, me, keys: this.peerKeys, peers });
  }

  private verifiedPeer(doc: Uint8Array): PeerIdentity {
    if (!(doc instanceof Uint8Array)) throw new EnclaveError("bad_request", "peer document must be bytes");
    const key = createHash("sha256").update(doc).digest("hex");
    const now = Date.now();
    const hit = this.verifiedPeers.get(key);
    if (hit && hit.until > now) return hit.identity;
    const maxAgeMs = this.opts.peerDocumentMaxAgeMs ?? 10 * 60_000;
    const identity = verifyPeer(doc, {
      roots: this.opts.peerRoots,
      allowDevelopment: this.opts.allowDevelopment,
      now: new Date(now),
      allowedPcr0: this.opts.allowedPeerPcr0 ?? [this.opts.pcr0],
      maxAgeMs,
    });
    if (this.verifiedPeers.size > 1024) this.verifiedPeers.clear();
    // Trusted until the document would be refused as stale (its leaf lasts hours longer).
    this.verifiedPeers.set(key, { identity, until: now + Math.max(0, maxAgeMs - (now - documentTimestamp(doc, now))) });
    return identity;
  }

  loadShare(req: LoadShareRequest): LoadShareReply {
    const walletId = needWalletId(req.walletId);
    const partyIndex = needInt(req.partyIndex, "partyIndex", 1, 16);
    const generation = needInt(req.generation, "generation", 0, 2 ** 32 - 1);
    const dataKey = this.dataKey(req.ciphertextForRecipient);
    let plain: Uint8Array;
    try {
      plain = unsealShare({ dataKey, sealed: req.sealed, binding: { walletId, nodeId: req.nodeId, partyIndex, generation, publicKey: req.publicKey } });
    } catch (e) {
      throw new EnclaveError("unseal_failed", `sealed share for wallet ${walletId} does not open with this key and binding: ${(e as Error).message}`);
    } finally {
      dataKey.fill(0);
    }
    let share: KeyShare;
    try {
      share = KeyShare.fromBytes(plain); // wipes `plain`
    } catch (e) {
      throw new EnclaveError("share_mismatch", `unsealed bytes are not a valid key share: ${(e as Error).message}`);
    }
    // CiphertextForRecipient is unauthenticated: a host could swap in another
    // data key that opens a different (older, foreign) sealed share. The share
    // must belong to this wallet's key, party and current generation.
    if (share.generation !== generation || share.index !== partyIndex || !equalBytes(share.publicKey, req.publicKey)) {
      const got = `generation ${share.generation}, party ${share.index}`;
      share.free();
      throw new EnclaveError("share_mismatch", `unsealed share (${got}) is not wallet ${walletId}'s generation ${generation} share for party ${partyIndex}`);
    }
    this.putShare(walletId, { share, generation, partyIndex, publicKey: share.publicKey });
    this.log("share_loaded", { walletId, generation, partyIndex });
    return { walletId, generation, partyIndex };
  }

  startCeremony(req: CeremonyStartRequest): CeremonyReply {
    const walletId = needWalletId(req.walletId);
    const id = this.registry.claim(req.sessionId);
    let session: Dkg | Signing | Refresh;
    let generation = 0;
    try {
      if (req.kind === "dkg") {
        const parties = needInt(req.parties, "parties", 2, 16);
        session = new Dkg({ threshold: needInt(req.threshold, "threshold", 2, parties), parties, index: needInt(req.partyIndex, "partyIndex", 1, parties), sessionId: req.sessionId });
      } else if (req.kind === "sign" || req.kind === "refresh") {
        const loaded = this.shares.get(walletId);
        if (!loaded) throw new EnclaveError("share_not_loaded", `no share of wallet ${walletId} is loaded in this enclave`);
        // The enclave confirms the generation it unsealed: a host that loaded an
        // old share cannot get it used.
        if (req.expectedGeneration !== loaded.generation) {
          throw new EnclaveError("generation_mismatch", `wallet ${walletId}: loaded share is generation ${loaded.generation}, request expects ${req.expectedGeneration}`);
        }
        generation = loaded.generation;
        if (req.kind === "sign") {
          if (!Array.isArray(req.signers) || req.signers.length > 16) throw new EnclaveError("bad_request", "signers must be a list of party indices");
          if (!(req.digest instanceof Uint8Array) || req.digest.length !== 32) throw new EnclaveError("bad_request", "digest must be 32 bytes");
          session = new Signing({ share: loaded.share, sessionId: req.sessionId, parties: req.signers, digest: req.digest, path: req.path });
        } else {
          session = new Refresh({ share: loaded.share, sessionId: req.sessionId });
        }
      } else {
        throw new EnclaveError("bad_request", `unknown ceremony kind ${String(req.kind)}`);
      }
      const me = req.kind === "dkg" ? (req.partyIndex as number) : this.shares.get(walletId)!.partyIndex;
      let peer: PeerSession;
      try {
        peer = this.peerSession(req.sessionId, me, req.peerDocuments, req.peerParties);
      } catch (e) {
        session.close();
        throw e;
      }
      const messages = session.phase1().map((m) => peer.seal(m.bytes));
      this.registry.add(id, { kind: req.kind, walletId, session, generation, peer });
      this.log("ceremony_started", { session: id.slice(0, 16), kind: req.kind, walletId, generation });
      return { messages, generation };
    } catch (e) {
      throw this.ceremonyError(e);
    }
  }

  stepCeremony(req: CeremonyStepRequest): CeremonyReply {
    const [id, s] = this.registry.take(req.sessionId, req.phase);
    try {
      if (!Array.isArray(req.messages) || req.messages.length > 64) throw new EnclaveError("bad_request", "messages must be a list of at most 64");
      // Opened (authenticated, decrypted, replay-checked) before the core sees them.
      const inbox = req.messages.map((b) => parseMessage(s.peer.open(b, req.phase - 1)));
      let final;
      try {
        if (req.phase < 4) {
          const out = req.phase === 2 ? s.session.phase2(inbox) : s.session.phase3(inbox);
          this.registry.advance(id);
          return { messages: out.map((m) => s.peer.seal(m.bytes)), generation: s.generation };
        }
        final = s.session.phase4(inbox);
      } finally {
        // Opened bodies can hold secrets (fragments, seeds); the core has copied them.
        for (const m of inbox) m.bytes.fill(0);
      }
      this.registry.drop(id);
      this.log("ceremony_finished", { session: id.slice(0, 16), kind: s.kind, walletId: s.walletId });
      if (s.session instanceof Signing) {
        const sig = final as { r: Uint8Array; s: Uint8Array; recoveryId: number };
        return { messages: [], generation: s.generation, signature: Uint8Array.from([...sig.r, ...sig.s, sig.recoveryId]) };
      }
      const share = final as KeyShare;
      this.sweepPending();
      this.pending.set(id, { walletId: s.walletId, share, sealed: false, expires: Date.now() + this.pendingTtl });
      const pkg = share.publicPackage();
      return { messages: [], generation: share.generation, publicKey: share.publicKey, publicPackage: pkg, chainCode: packageInfo(pkg).chainCode, partyIndex: share.index };
    } catch (e) {
      this.registry.drop(id);
      this.log("ceremony_failed", { session: id.slice(0, 16), kind: s.kind, phase: req.phase, reason: (e as Error).message });
      throw this.ceremonyError(e);
    }
  }

  abortCeremony(req: CeremonyAbortRequest): { dropped: boolean } {
    const id = toHex(req.sessionId);
    const dropped = this.registry.drop(id);
    const p = this.pending.get(id);
    if (p) {
      p.share.free();
      this.pending.delete(id);
    }
    if (dropped || p) this.log("ceremony_aborted", { session: id.slice(0, 16) });
    return { dropped: dropped || Boolean(p) };
  }

  sealShare(req: SealShareRequest): SealShareReply {
    const id = toHex(req.sessionId);
    const p = this.pending.get(id);
    if (!p || p.expires < Date.now()) throw new EnclaveError("unknown_session", `no finished key share waits for session ${id.slice(0, 16)}…`);
    if (p.walletId !== req.walletId) throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    const dataKey = this.dataKey(req.ciphertextForRecipient);
    const bytes = p.share.toBytes();
    try {
      const binding = { walletId: p.walletId, nodeId: req.nodeId, partyIndex: p.share.index, generation: p.share.generation, publicKey: p.share.publicKey };
      const sealed = sealShare({ dataKey, shareBytes: bytes, binding });
      p.sealed = true;
      return { sealed, generation: binding.generation, partyIndex: binding.partyIndex, publicKey: binding.publicKey };
    } finally {
      bytes.fill(0);
      dataKey.fill(0);
    }
  }

  /** The host stored the sealed share (and, for refresh, committed): use it from now on. */
  activateShare(req: ActivateShareRequest): LoadShareReply {
    const id = toHex(req.sessionId);
    const p = this.pending.get(id);
    if (!p || !p.sealed) throw new EnclaveError("unknown_session", `no sealed key share waits for session ${id.slice(0, 16)}…`);
    if (p.walletId !== req.walletId) throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    this.pending.delete(id);
    const info = packageInfo(p.share.publicPackage());
    this.putShare(p.walletId, { share: p.share, generation: p.share.generation, partyIndex: p.share.index, publicKey: info.publicKey });
    this.log("share_activated", { walletId: p.walletId, generation: p.share.generation });
    return { walletId: p.walletId, generation: p.share.generation, partyIndex: p.share.index };
  }

  shutdown(): void {
    this.registry.dropAll();
    this.peerKeys.destroy();
    for (const s of this.shares.values()) s.share.free();
    for (const p of this.pending.values()) p.share.free();
    this.shares.clear();
    this.pending.clear();
  }

  private putShare(walletId: string, s: LoadedShare): void {
    const old = this.shares.get(walletId);
    if (old && old.share !== s.share) old.share.free();
    if (!old && this.shares.size >= MAX_WALLETS) throw new EnclaveError("bad_request", "too many wallets loaded");
    this.shares.set(walletId, s);
  }

  private dataKey(cfr: Uint8Array): Uint8Array {
    try {
      return this.recipient.dataKey(cfr);
    } catch (e) {
      throw new EnclaveError("kms_key_rejected", `CiphertextForRecipient does not decrypt for this enclave: ${(e as Error).message}`);
    }
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

  private ceremonyError(e: unknown): Error {
    if (e instanceof EnclaveError) return e;
    if (e instanceof DklsError) return new EnclaveError("ceremony_failed", `${e.code}: ${e.message}`, e.party);
    if (e instanceof PeerMessageError) return new EnclaveError("ceremony_failed", `peer message refused (${e.code}): ${e.message}`);
    return new EnclaveError("ceremony_failed", (e as Error).message ?? String(e));
  }
}

/** The document's own timestamp (ms); it verified just before, so it parses. */
function documentTimestamp(doc: Uint8Array, fallback: number): number {
  try {
    return decodeAttestationDocument(doc).document.timestamp;
  } catch {
    return fallback;
  }
}
