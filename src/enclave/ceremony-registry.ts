/**
 * Open ceremony sessions in the enclave. A session id is single-use; each
 * phase must arrive before its deadline; any error, abort or timeout wipes
 * the session's keep-state and every later call for it is refused.
 */
import type { ReshareCeremony } from "./lifecycle-reshare.ts";
import type { Dkg, Refresh, Signing } from "./dkls23/binding.ts";
import type { ImportSession } from "./lifecycle-import.ts";
import type { RepairSession } from "./lifecycle-repair.ts";
import { toHex } from "../shared/hex.ts";
import type { CeremonyKind } from "../shared/wire/enclave-ops.ts";
import { EnclaveError } from "./errors.ts";
import type { TrustedPolicy } from "./approvals.ts";
import type { PeerSession } from "./peer-envelope.ts";
import type { OwnShareState } from "./share-state.ts";

/** A key import's dealing (lifecycle-import.ts) runs as a session too, under the DKG's kind. */
export type AnySession = Dkg | Signing | Refresh | ImportSession | RepairSession | ReshareCeremony;

export interface OpenSession {
  kind: CeremonyKind;
  walletId: string;
  session: AnySession;
  /** The next phase this session accepts (2..4). */
  nextPhase: number;
  generation: number;
  /** The wallet's approval policy, sealed with the share the session produces (dkg, refresh); null: none. */
  policy?: TrustedPolicy | null;
  /** End-to-end protection of this session's messages with the other enclaves. */
  peer: PeerSession;
  /** Sign and refresh: what this enclave stated it loaded, checked against its peers' statements at phase 2 (share-state.ts). */
  shareState?: OwnShareState;
  /** Releases the loaded share this session holds in the share cache (sign, refresh). */
  release?: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Ids remembered at once. Beyond it new sessions are refused (fail closed)
 * rather than an id forgotten while a session under it could still be valid.
 */
export const MAX_REMEMBERED_IDS = 1_000_000;
/**
 * Open sessions at once by default. Each holds a core session's keep-state
 * (and, for sign and refresh, a pinned share) in the enclave's fixed memory;
 * 64 is far above what one node's ceremonies need yet small against it.
 */
export const DEFAULT_MAX_OPEN_SESSIONS = 64;
/** A ceremony's phases (start + 3 steps), each with its own deadline. */
const PHASES = 4;

export class CeremonyRegistry {
  private readonly open = new Map<string, OpenSession>();
  /** Used id -> when it may be forgotten; insertion order is expiry order (one constant lifetime). */
  private readonly used = new Map<string, number>();
  private readonly rememberMs: number;

  constructor(
    private readonly phaseTimeoutMs: number,
    private readonly onExpire: (id: string, s: OpenSession) => void = () => {},
    /**
     * How long a used id is remembered: as long as a session under it could
     * still be valid anywhere (every phase's deadline, plus the time its
     * finished share may wait to be sealed and activated).
     */
    pendingShareTtlMs = 0,
    private readonly now: () => number = Date.now,
    /** Open sessions at once; one more start is refused with too_many_sessions. */
    readonly maxOpen: number = DEFAULT_MAX_OPEN_SESSIONS,
  ) {
    this.rememberMs = phaseTimeoutMs * PHASES + pendingShareTtlMs;
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Refuses a start while maxOpen sessions are open. Checked before the id is
   * claimed and the share pinned, so a refused start uses up nothing and the
   * same session may be started once there is room.
   */
  checkRoom(): void {
    if (this.open.size >= this.maxOpen)
      throw new EnclaveError(
        "too_many_sessions",
        `this enclave already has its maximum of ${this.maxOpen} open ceremony sessions`,
      );
  }

  /** Claims a fresh session id; a reused one is refused even if its session ended long ago. */
  claim(sessionId: Uint8Array): string {
    if (!(sessionId instanceof Uint8Array) || sessionId.length !== 32)
      throw new EnclaveError("bad_request", "session id must be 32 bytes");
    const id = toHex(sessionId);
    const now = this.now();
    this.forgetExpiredIds(now);
    if (this.used.has(id))
      throw new EnclaveError("session_reused", `session ${id.slice(0, 16)}… was already used`);
    if (this.used.size >= MAX_REMEMBERED_IDS)
      throw new EnclaveError("bad_request", "too many sessions started recently; try again later");
    this.used.set(id, now + this.rememberMs);
    return id;
  }

  /** The wallet of open session `sessionId`, if one is open (nothing is taken or changed). */
  walletOf(sessionId: unknown): string | undefined {
    if (!(sessionId instanceof Uint8Array)) return undefined;
    return this.open.get(toHex(sessionId))?.walletId;
  }

  add(id: string, s: Omit<OpenSession, "timer" | "nextPhase">): void {
    this.open.set(id, { ...s, nextPhase: 2, timer: this.arm(id) });
  }

  /** The session expecting `phase`; a wrong phase wipes it (fail closed). */
  take(sessionId: Uint8Array, phase: number): [string, OpenSession] {
    const id = toHex(sessionId);
    const s = this.open.get(id);
    if (!s)
      throw new EnclaveError(
        "unknown_session",
        `no open session ${id.slice(0, 16)}… (never started, finished, aborted or expired)`,
      );
    if (phase !== s.nextPhase) {
      this.drop(id);
      throw new EnclaveError(
        "phase_out_of_order",
        `session ${id.slice(0, 16)}… expected phase ${s.nextPhase}, got ${phase}; session dropped`,
      );
    }
    return [id, s];
  }

  advance(id: string): void {
    const s = this.open.get(id);
    if (!s) return;
    clearTimeout(s.timer);
    s.nextPhase += 1;
    s.timer = this.arm(id);
  }

  /** Wipes keep-state and forgets the session. Idempotent. */
  drop(id: string): boolean {
    const s = this.open.get(id);
    if (!s) return false;
    clearTimeout(s.timer);
    s.session.close();
    s.peer.close();
    s.release?.();
    this.open.delete(id);
    return true;
  }

  dropAll(): void {
    for (const id of [...this.open.keys()]) this.drop(id);
  }

  private forgetExpiredIds(now: number): void {
    for (const [id, until] of this.used) {
      if (until > now) break;
      this.used.delete(id);
    }
  }

  private arm(id: string): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      const s = this.open.get(id);
      if (s && this.drop(id)) this.onExpire(id, s);
    }, this.phaseTimeoutMs);
    // A pending deadline must not keep a finished process alive.
    (t as { unref?: () => void }).unref?.();
    return t;
  }
}
