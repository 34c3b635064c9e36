/**
 * The enclave's memory of the approved requests it has started a session
 * for, so one approval starts at most one ceremony here until it expires
 * (approvals carry their own expiry, at most MAX_VALIDITY_SECONDS ahead).
 *
 * Keyed by SHA-256 of the approved request's canonical encoding with its
 * validity times zeroed: operation, wallet, client request id, digest, path,
 * policy hashes, t and n. So "the same approved request" is what the
 * approvers approved, however often they approve it again: a resubmission
 * with freshly signed approvals of the same request id and parameters is the
 * same request (at most once per request id), while the same request id with
 * another digest is another request (the host refuses that with `conflict`
 * for one client user; two users may pick the same id).
 *
 * Rules, each for a reason:
 *  - A second start of a remembered request is refused (`approval_replayed`)
 *    while the first session is open, and for good once that session has
 *    emitted its last messages (phase 3, `spend`): from then on its peers may
 *    finish, so a second session could produce a second signature. A key
 *    import's dealer spends at phase 1, when its dealt shares leave.
 *  - Except that a start with a lower session id supersedes the open
 *    session (the caller drops it) while that session is still waiting for
 *    its phase-2 step and is younger than SUPERSEDE_WINDOW_MS: concurrent
 *    duplicates reach the enclaves of both quorums in different orders, and
 *    without one order-free rule each enclave in the intersection could keep
 *    a different one and both fail. With it every such enclave keeps the
 *    lowest session id it saw, so exactly one of two concurrent duplicates
 *    signs (when they start together). Only then: anyone who can start
 *    sessions at a node (one node's broker credentials) could otherwise
 *    cancel every honest session of an approval, again and again, with a
 *    duplicate of a tiny id. Bounded to a just-started session, that costs
 *    the attacker a race it must win within seconds of each honest start,
 *    and a session that is already running is never cancelled by anyone.
 *    Duplicates that arrive later than that keep the first session at each
 *    enclave; two intersecting quorums may then both fail (liveness only:
 *    never two signatures), and the client resubmits.
 *  - Never for a request whose caller passes no `supersede` (a key import:
 *    its dealer deals at phase 1, so a superseded import would already have
 *    handed out a sharing of the key, ceremonies.ts).
 *  - A session that ends before it emitted its last messages (aborted,
 *    expired, failed: `release`) is forgotten at once: without those messages
 *    no peer can finish it, so running the request again is still at most
 *    once, and a request whose coordinator died can be resubmitted.
 *  - An entry is forgotten when the latest-expiring approval of it that this
 *    enclave has verified expires (a refused replay's later expiry extends
 *    it): until then the approval check would accept one of them (same
 *    clock). Approvals signed anew after that start the request afresh.
 *  - Bounded: at MAX_REMEMBERED_APPROVALS unexpired entries a new start is
 *    refused (`replay_cache_full`, a rate limit to the client) rather than an
 *    entry forgotten early.
 *
 * What this gives across the cluster: every enclave emits the last messages
 * of at most one session per approved request, and a signature needs them
 * from all t signers, so two sessions whose signer sets share an enclave
 * cannot both sign. With 2t > n any two sets of t holders intersect, so a
 * request runs at most once however many coordinators receive it; with
 * 2t <= n two disjoint quorums could each sign it once (docs/RELIABILITY.md).
 * An enclave restart forgets this memory (it lives in enclave memory only).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../shared/hex.ts";
import { ApprovalError, encodeRequest, type ApprovableRequest } from "../shared/wire/approval.ts";
import { EnclaveError } from "./errors.ts";

/**
 * Unexpired approved requests remembered at once: about 150 bytes each, so
 * some 10 MB at most; over one MAX_VALIDITY_SECONDS hour that is 18 starts a
 * second at this enclave, above what one node's ceremonies reach.
 */
export const MAX_REMEMBERED_APPROVALS = 65_536;

/**
 * How long after its start a session may still be superseded by a concurrent
 * duplicate with a lower id. Two coordinators' starts of one request reach an
 * enclave within one start fan-out of each other (a node-RPC round trip plus
 * the peers' attestation checks: well under a second on a loaded cluster);
 * 5 s covers a slow broker with room to spare while leaving an attacker only
 * that long (and only before phase 2, normally much sooner) to cancel an
 * honest session.
 */
export const SUPERSEDE_WINDOW_MS = 5_000;

/** One remembered request, held by the session it started. */
export interface ReplayClaim {
  /** The session emitted its last messages: remember the request until it expires. */
  spend(): void;
  /** The session took its phase-2 step: no duplicate supersedes it from now on. */
  progress(): void;
  /** The session ended; forget the request unless it was spent. Idempotent. */
  release(): void;
}

interface Entry {
  /** Unix seconds: forgotten from this second on. */
  expiresAt: number;
  /** The session (hex id) the request started. */
  session: string;
  spent: boolean;
  /** Unix milliseconds of the start: superseded only within SUPERSEDE_WINDOW_MS of it. */
  startedAtMs: number;
  /** Past phase 1 (its phase-2 step was taken): never superseded. */
  running: boolean;
}

export class ApprovalReplayCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly capacity: number = MAX_REMEMBERED_APPROVALS,
    private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Unexpired requests remembered now (expired ones may still be counted until the next sweep). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Remembers the verified approved `request` (valid until its expiresAt)
   * for `session` (hex id), about to start; refuses one already remembered,
   * unless `supersede` may end its session with a higher id (unspent, not
   * yet past phase 1, started less than SUPERSEDE_WINDOW_MS ago): then
   * `supersede` is called with that session's id and must drop it.
   */
  claim(
    request: ApprovableRequest,
    session: string,
    supersede?: (session: string) => void,
  ): ReplayClaim {
    const key = requestKey(request);
    const expiresAt = request.expiresAt;
    const now = this.nowSeconds();
    const held = this.entries.get(key);
    if (held !== undefined && held.expiresAt > now) {
      const supersedable =
        !held.spent &&
        !held.running &&
        this.nowMs() - held.startedAtMs < SUPERSEDE_WINDOW_MS &&
        supersede !== undefined &&
        session < held.session;
      if (!supersedable) {
        // This approval was valid too: remember the request at least as long as it is.
        held.expiresAt = Math.max(held.expiresAt, expiresAt);
        throw new ApprovalError(
          "replayed",
          held.spent
            ? "this approved request already ran in this enclave; approve a new request id"
            : "this approved request has a session open in this enclave already",
        );
      }
      supersede!(held.session);
    }
    if (this.entries.get(key) === held) this.entries.delete(key);
    if (this.entries.size >= this.capacity) this.sweep(now);
    if (this.entries.size >= this.capacity)
      throw new EnclaveError(
        "replay_cache_full",
        `this enclave remembers its maximum of ${this.capacity} approved requests until they expire; retry later`,
      );
    const entry: Entry = {
      expiresAt,
      session,
      spent: false,
      startedAtMs: this.nowMs(),
      running: false,
    };
    this.entries.set(key, entry);
    return {
      spend: () => {
        entry.spent = true;
      },
      progress: () => {
        entry.running = true;
      },
      release: () => {
        // Only this claim's entry: a later claim of the same key owns its own.
        if (!entry.spent && this.entries.get(key) === entry) this.entries.delete(key);
      },
    };
  }

  private sweep(now: number): void {
    for (const [key, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(key);
  }
}

/** What identifies an approved request across approvals of it: its encoding with the times zeroed. */
function requestKey(r: ApprovableRequest): string {
  return toHex(sha256(encodeRequest({ ...r, issuedAt: 0, expiresAt: 1 })));
}
