/**
 * Admission limits of a node's host, all answered at once and never queued:
 *
 * - per client user (the Response Topic's client id, which the broker binds
 *   to the username): a token bucket of requests per second with a burst,
 *   and a cap on requests in flight (taken, final answer not yet sent);
 * - per node: a cap on concurrent ceremonies it participates in, each held
 *   from `start` until its last phase, its abort, or a deadline (so a
 *   coordinator that vanishes mid-ceremony cannot hold a slot forever).
 *
 * A refusal is a CodedError `rate_limited` whose sentence says which limit.
 * Every map here is bounded: clients with a full bucket and nothing in flight
 * are forgotten (they are indistinguishable from new ones), and the number of
 * clients remembered at once is capped. The clock is injected for tests.
 */
import { CodedError } from "../shared/wire/errors.ts";

export type Clock = () => number;

/** A token bucket: `burst` tokens at most, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket is full again (nothing to remember about its owner). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    // A clock that steps back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.at);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
    this.at = Math.max(this.at, now);
  }
}

export interface ClientLimitSettings {
  /** Sustained requests per second per client user. */
  requestsPerSecond: number;
  /** Requests a client user may send at once after being idle. */
  burst: number;
  /** Requests of one client user taken and not yet answered. */
  maxInFlight: number;
}

export const DEFAULT_CLIENT_LIMITS: ClientLimitSettings = {
  requestsPerSecond: 10,
  burst: 20,
  maxInFlight: 8,
};

/** Client users tracked at once; beyond it new ones are refused (fail closed) until some go idle. */
export const MAX_TRACKED_CLIENTS = 100_000;

/** One admitted request: release it exactly once when its final answer is sent. */
export interface Admission {
  release(): void;
}

interface ClientState {
  bucket: TokenBucket;
  inFlight: number;
}

export class RateLimitError extends CodedError {
  override name = "RateLimitError";
  constructor(message: string) {
    super("rate_limited", message);
  }
}

export class ClientLimits {
  private readonly clients = new Map<string, ClientState>();
  /** The most requests any one client had in flight at once (for tests and metrics). */
  peakInFlight = 0;
  /** Requests refused so far. */
  refused = 0;

  constructor(
    readonly settings: ClientLimitSettings = DEFAULT_CLIENT_LIMITS,
    private readonly now: Clock = Date.now,
    private readonly maxClients = MAX_TRACKED_CLIENTS,
  ) {
    checkPositive("requestsPerSecond", settings.requestsPerSecond, false);
    checkPositive("burst", settings.burst, true);
    checkPositive("maxInFlight", settings.maxInFlight, true);
  }

  /** Requests of this client in flight now. */
  inFlight(client: string): number {
    return this.clients.get(client)?.inFlight ?? 0;
  }

  /** Admits one request of `client` or throws rate_limited; the in-flight cap is checked first so a refusal spends no token. */
  admit(client: string): Admission {
    const now = this.now();
    let s = this.clients.get(client);
    if (!s) {
      if (this.clients.size >= this.maxClients) this.forgetIdle(now);
      if (this.clients.size >= this.maxClients)
        throw this.refuse("this node serves too many client users right now; retry later");
      s = {
        bucket: new TokenBucket(this.settings.requestsPerSecond, this.settings.burst, now),
        inFlight: 0,
      };
      this.clients.set(client, s);
    }
    if (s.inFlight >= this.settings.maxInFlight)
      throw this.refuse(
        `client ${client} already has ${s.inFlight} requests in flight on this node (limit ${this.settings.maxInFlight})`,
      );
    if (!s.bucket.take(now))
      throw this.refuse(
        `client ${client} exceeds ${this.settings.requestsPerSecond} requests per second (burst ${this.settings.burst})`,
      );
    s.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, s.inFlight);
    const state = s;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        state.inFlight -= 1;
        if (state.inFlight === 0 && state.bucket.isFull(this.now())) this.clients.delete(client);
      },
    };
  }

  private refuse(message: string): RateLimitError {
    this.refused += 1;
    return new RateLimitError(message);
  }

  private forgetIdle(now: number): void {
    for (const [id, s] of this.clients)
      if (s.inFlight === 0 && s.bucket.isFull(now)) this.clients.delete(id);
  }
}

/**
 * A cap on things held at once under a key (a node's ceremonies by session
 * id), each with a deadline after which it counts no more: its holder may
 * never say it ended.
 */
export class ConcurrencyCap {
  /** Key -> deadline; insertion order is deadline order (one constant lifetime). */
  private readonly held = new Map<string, number>();
  /** The most held at once (for tests and metrics). */
  peak = 0;

  constructor(
    readonly max: number,
    private readonly lifetimeMs: number,
    private readonly now: Clock = Date.now,
  ) {
    checkPositive("max", max, true);
    checkPositive("lifetimeMs", lifetimeMs, false);
  }

  get size(): number {
    this.expire(this.now());
    return this.held.size;
  }

  /** Holds `key` or throws rate_limited with the sentence `what`; holding a held key again is a no-op. */
  acquire(key: string, what: string): void {
    const now = this.now();
    this.expire(now);
    if (this.held.has(key)) return;
    if (this.held.size >= this.max)
      throw new RateLimitError(`${what} (${this.held.size} at once, limit ${this.max})`);
    this.held.set(key, now + this.lifetimeMs);
    this.peak = Math.max(this.peak, this.held.size);
  }

  release(key: string): void {
    this.held.delete(key);
  }

  private expire(now: number): void {
    for (const [key, until] of this.held) {
      if (until > now) break;
      this.held.delete(key);
    }
  }
}

function checkPositive(name: string, v: number, integer: boolean): void {
  if (!(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v))))
    throw new Error(`${name} must be a positive ${integer ? "integer" : "number"}`);
}

/**
 * Ceremonies a node takes part in at once by default: half the enclave's
 * default open-session cap (src/enclave/ceremony-registry.ts, 64), so the
 * host refuses with a clear sentence before its enclave has to.
 */
export const DEFAULT_MAX_CEREMONIES = 32;
