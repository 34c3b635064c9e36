/**
 * The key shares this enclave holds: the loaded (current) share per wallet,
 * and the shares a finished DKG/refresh produced that wait to be sealed and
 * then activated. Shares arrive sealed under a KMS data key that only this
 * enclave's recipient key unwraps; what the host hands in is checked here.
 */
import { bytesEqual } from "../attestation/verifier.ts";
import { toHex } from "../shared/hex.ts";
import type {
  ActivateShareRequest,
  LoadShareReply,
  LoadShareRequest,
  SealShareReply,
  SealShareRequest,
} from "../shared/wire/enclave-ops.ts";
import { KeyShare, packageInfo } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { RecipientKey } from "./recipient-key.ts";
import { needInt, needWalletId } from "./request-checks.ts";
import { sealShare, unsealShare } from "./seal.ts";

export interface LoadedShare {
  share: KeyShare;
  generation: number;
  partyIndex: number;
  publicKey: Uint8Array;
}

/** A share produced by DKG/refresh, waiting to be sealed and then activated. */
export interface PendingShare {
  walletId: string;
  share: KeyShare;
  sealed: boolean;
  expires: number;
}

const MAX_WALLETS = 100_000;

export class ShareTable {
  private readonly loaded = new Map<string, LoadedShare>();
  /** By session id (hex) of the ceremony that produced them. */
  private readonly pending = new Map<string, PendingShare>();

  constructor(
    private readonly recipient: RecipientKey,
    private readonly log: (event: string, fields: Record<string, unknown>) => void,
    /** How long a finished DKG/refresh share may wait to be sealed and activated. */
    private readonly pendingTtlMs: number,
  ) {}

  /** Wallets with a loaded share. */
  get size(): number {
    return this.loaded.size;
  }

  current(walletId: string): LoadedShare | undefined {
    return this.loaded.get(walletId);
  }

  load(req: LoadShareRequest): LoadShareReply {
    const walletId = needWalletId(req.walletId);
    const partyIndex = needInt(req.partyIndex, "partyIndex", 1, 16);
    const generation = needInt(req.generation, "generation", 0, 2 ** 32 - 1);
    const dataKey = this.dataKey(req.ciphertextForRecipient);
    let plain: Uint8Array;
    try {
      plain = unsealShare({
        dataKey,
        sealed: req.sealed,
        binding: { walletId, nodeId: req.nodeId, partyIndex, generation, publicKey: req.publicKey },
      });
    } catch (e) {
      throw new EnclaveError(
        "unseal_failed",
        `sealed share for wallet ${walletId} does not open with this key and binding: ${(e as Error).message}`,
      );
    } finally {
      dataKey.fill(0);
    }
    let share: KeyShare;
    try {
      share = KeyShare.fromBytes(plain); // wipes `plain`
    } catch (e) {
      throw new EnclaveError(
        "share_mismatch",
        `unsealed bytes are not a valid key share: ${(e as Error).message}`,
      );
    }
    // CiphertextForRecipient is unauthenticated: a host could swap in another
    // data key that opens a different (older, foreign) sealed share. The share
    // must belong to this wallet's key, party and current generation.
    if (
      share.generation !== generation ||
      share.index !== partyIndex ||
      !bytesEqual(share.publicKey, req.publicKey)
    ) {
      const got = `generation ${share.generation}, party ${share.index}`;
      share.free();
      throw new EnclaveError(
        "share_mismatch",
        `unsealed share (${got}) is not wallet ${walletId}'s generation ${generation} share for party ${partyIndex}`,
      );
    }
    this.put(walletId, { share, generation, partyIndex, publicKey: share.publicKey });
    this.log("share_loaded", { walletId, generation, partyIndex });
    return { walletId, generation, partyIndex };
  }

  /** Keeps the share a ceremony (session `id`) produced until it is sealed and activated, or expires. */
  holdPending(id: string, walletId: string, share: KeyShare): void {
    this.sweepPending();
    this.pending.set(id, {
      walletId,
      share,
      sealed: false,
      expires: Date.now() + this.pendingTtlMs,
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

  seal(req: SealShareRequest): SealShareReply {
    const id = toHex(req.sessionId);
    const p = this.pending.get(id);
    if (!p || p.expires < Date.now())
      throw new EnclaveError(
        "unknown_session",
        `no finished key share waits for session ${id.slice(0, 16)}…`,
      );
    if (p.walletId !== req.walletId)
      throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    const dataKey = this.dataKey(req.ciphertextForRecipient);
    const bytes = p.share.toBytes();
    try {
      const binding = {
        walletId: p.walletId,
        nodeId: req.nodeId,
        partyIndex: p.share.index,
        generation: p.share.generation,
        publicKey: p.share.publicKey,
      };
      const sealed = sealShare({ dataKey, shareBytes: bytes, binding });
      p.sealed = true;
      return {
        sealed,
        generation: binding.generation,
        partyIndex: binding.partyIndex,
        publicKey: binding.publicKey,
      };
    } finally {
      bytes.fill(0);
      dataKey.fill(0);
    }
  }

  /** The host stored the sealed share (and, for refresh, committed): use it from now on. */
  activate(req: ActivateShareRequest): LoadShareReply {
    const id = toHex(req.sessionId);
    const p = this.pending.get(id);
    if (!p || !p.sealed)
      throw new EnclaveError(
        "unknown_session",
        `no sealed key share waits for session ${id.slice(0, 16)}…`,
      );
    if (p.walletId !== req.walletId)
      throw new EnclaveError("bad_request", "walletId does not match the ceremony's");
    this.pending.delete(id);
    const info = packageInfo(p.share.publicPackage());
    this.put(p.walletId, {
      share: p.share,
      generation: p.share.generation,
      partyIndex: p.share.index,
      publicKey: info.publicKey,
    });
    this.log("share_activated", { walletId: p.walletId, generation: p.share.generation });
    return { walletId: p.walletId, generation: p.share.generation, partyIndex: p.share.index };
  }

  /** Frees every share (shutdown). */
  clear(): void {
    for (const s of this.loaded.values()) s.share.free();
    for (const p of this.pending.values()) p.share.free();
    this.loaded.clear();
    this.pending.clear();
  }

  private put(walletId: string, s: LoadedShare): void {
    const old = this.loaded.get(walletId);
    if (old && old.share !== s.share) old.share.free();
    if (!old && this.loaded.size >= MAX_WALLETS)
      throw new EnclaveError("bad_request", "too many wallets loaded");
    this.loaded.set(walletId, s);
  }

  private dataKey(cfr: Uint8Array): Uint8Array {
    try {
      return this.recipient.dataKey(cfr);
    } catch (e) {
      throw new EnclaveError(
        "kms_key_rejected",
        `CiphertextForRecipient does not decrypt for this enclave: ${(e as Error).message}`,
      );
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
}
