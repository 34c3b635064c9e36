/**
 * The host's typed handle on its enclave, over the framed channel. Dials a
 * Unix socket in development or the enclave's VSOCK CID:port in production.
 *
 * Supervised: the enclave exits on a wasm trap (and may be killed), so the
 * channel closing is the signal that it is gone. The client then fails every
 * call at once with `enclave_unavailable`, tells its listeners (the host
 * publishes itself as `degraded`), and redials with capped exponential
 * backoff until the enclave (restarted by its service manager) listens
 * again; listeners hear `restored` once the new channel answers HEALTH.
 */
import { FrameType, type RequestType } from "../shared/wire/frame.ts";
import { RpcClient } from "../shared/channel/rpc-client.ts";
import { RpcRemoteError } from "../shared/channel/rpc-errors.ts";
import { dialUnix } from "../shared/channel/unix-transport.ts";
import { dialVsock } from "../shared/channel/vsock-transport.ts";
import { fromBody, toBody } from "../shared/wire/enclave-codec.ts";
import type * as Api from "../shared/wire/enclave-ops.ts";
import { CodedError, type Blame } from "../shared/wire/errors.ts";
import type { ChannelConnection } from "../shared/channel/transport.ts";

/** An error the enclave reported: its code, sentence (never secret) and the party it blamed, if any. */
export class EnclaveRequestError extends CodedError {
  override name = "EnclaveRequestError";
  constructor(
    code: string,
    message: string,
    blame: Blame = {},
    /** An approval refusal's reason (approval.ts APPROVAL_REFUSALS), as the enclave named it. */
    readonly reason?: string,
  ) {
    super(code, message, blame);
  }
}

export type EnclaveAddress =
  | { kind: "unix"; path: string }
  | { kind: "vsock"; cid: number; port: number };

export function parseEnclaveAddress(s: string): EnclaveAddress {
  if (s.startsWith("unix:") && s.length > 5) return { kind: "unix", path: s.slice(5) };
  const m = /^vsock:(\d+):(\d+)$/.exec(s);
  if (m) return { kind: "vsock", cid: Number(m[1]), port: Number(m[2]) };
  throw new Error(`enclave address must be unix:PATH or vsock:CID:PORT, got ${JSON.stringify(s)}`);
}

/** Redial backoff after the channel drops: first attempt after MIN, doubling up to MAX. */
export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 5_000;

export type EnclaveChannelEvent =
  | { state: "lost"; error: string }
  | { state: "restored"; health: Api.HealthReply };

export interface EnclaveClientOptions {
  timeoutMs?: number;
  /** Redial after the channel drops (default true); false makes a lost channel final (tests). */
  reconnect?: boolean;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

function dial(addr: EnclaveAddress): Promise<ChannelConnection> {
  return addr.kind === "unix" ? dialUnix(addr.path) : dialVsock(addr.cid, addr.port);
}

function label(addr: EnclaveAddress): string {
  return addr.kind === "unix" ? `unix:${addr.path}` : `vsock:${addr.cid}:${addr.port}`;
}

/** `p`, telling `report` how long it took and how it failed, if it did. */
function timed<T>(p: Promise<T>, report: (ms: number, error?: unknown) => void): Promise<T> {
  const t0 = performance.now();
  return p.then(
    (v) => (report(performance.now() - t0), v),
    (e: unknown) => {
      report(performance.now() - t0, e);
      throw e;
    },
  );
}

export class EnclaveClient {
  private rpc: RpcClient | null = null;
  private closing = false;
  private lostSince: number | null = null;
  private reconnects = 0;
  private readonly listeners = new Set<(e: EnclaveChannelEvent) => void>();
  /** Hears each call's frame type, round trip (ms) and error, if any (metrics.ts); null: nobody. */
  onCall: ((type: RequestType, ms: number, error?: unknown) => void) | null = null;

  private constructor(
    private readonly addr: EnclaveAddress,
    private readonly opts: EnclaveClientOptions,
  ) {}

  static async connect(
    addr: EnclaveAddress,
    opts: EnclaveClientOptions = {},
  ): Promise<EnclaveClient> {
    const c = new EnclaveClient(addr, opts);
    c.attach(await dial(addr));
    return c;
  }

  /** Whether the channel is up; false from the moment it drops until a redial answers HEALTH. */
  get available(): boolean {
    return this.rpc !== null && this.lostSince === null;
  }

  /** For health reports: the channel state, since when it is down, and how often it came back. */
  status(): { available: boolean; lostSince: number | null; reconnects: number } {
    return { available: this.available, lostSince: this.lostSince, reconnects: this.reconnects };
  }

  /** Hears every loss and restoration of the channel; returns a function that stops it. */
  onChannelEvent(cb: (e: EnclaveChannelEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(e: EnclaveChannelEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not stop supervision.
      }
    }
  }

  private attach(conn: ChannelConnection): RpcClient {
    const rpc = new RpcClient(conn, {
      timeoutMs: this.opts.timeoutMs ?? 180_000,
      maxInFlight: 256,
    });
    this.rpc = rpc;
    conn.onClose((err) => {
      if (this.closing || this.rpc !== rpc) return;
      this.lostSince = Date.now();
      this.emit({ state: "lost", error: err?.message ?? "the enclave closed the channel" });
      if (this.opts.reconnect !== false) void this.redial();
    });
    return rpc;
  }

  private async redial(): Promise<void> {
    const max = this.opts.reconnectMaxMs ?? RECONNECT_MAX_MS;
    let wait = this.opts.reconnectMinMs ?? RECONNECT_MIN_MS;
    while (!this.closing) {
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, max);
      if (this.closing) return;
      let conn: ChannelConnection;
      try {
        conn = await dial(this.addr);
      } catch {
        continue;
      }
      if (this.closing) return conn.close();
      const rpc = this.attach(conn);
      try {
        const reply = await rpc.request(FrameType.HEALTH, toBody({}), { timeoutMs: 10_000 });
        this.lostSince = null;
        this.reconnects++;
        this.emit({ state: "restored", health: fromBody<Api.HealthReply>(reply.body) });
        return;
      } catch {
        // A half-started enclave: drop this channel quietly and dial again.
        this.rpc = null;
        rpc.close();
      }
    }
  }

  private async call<Rep>(type: RequestType, req: object): Promise<Rep> {
    const rpc = this.rpc;
    if (!rpc || this.lostSince !== null)
      throw new EnclaveRequestError(
        "enclave_unavailable",
        `the enclave at ${label(this.addr)} is not reachable; the host is redialling it`,
      );
    try {
      const reply = await timed(rpc.request(type, toBody(req)), (ms, e) =>
        this.onCall?.(type, ms, e),
      );
      return fromBody<Rep>(reply.body);
    } catch (e) {
      if (e instanceof RpcRemoteError)
        throw new EnclaveRequestError(e.code, e.message, e.blame, e.reason);
      // The channel dropped under this call: the enclave is gone, not the request bad.
      if (rpc.closed) throw new EnclaveRequestError("enclave_unavailable", (e as Error).message);
      throw e;
    }
  }

  health(): Promise<Api.HealthReply> {
    return this.call(FrameType.HEALTH, {});
  }
  attest(req: Api.AttestRequest = {}): Promise<Api.AttestReply> {
    return this.call(FrameType.ATTEST, req);
  }
  loadShare(req: Api.LoadShareRequest): Promise<Api.LoadShareReply> {
    return this.call(FrameType.LOAD_SHARE, req);
  }
  startCeremony(req: Api.CeremonyStartRequest): Promise<Api.CeremonyReply> {
    return this.call(FrameType.CEREMONY_START, req);
  }
  stepCeremony(req: Api.CeremonyStepRequest): Promise<Api.CeremonyReply> {
    return this.call(FrameType.CEREMONY_STEP, req);
  }
  abortCeremony(req: Api.CeremonyAbortRequest): Promise<{ dropped: boolean }> {
    return this.call(FrameType.CEREMONY_ABORT, req);
  }
  sealShare(req: Api.SealShareRequest): Promise<Api.SealShareReply> {
    return this.call(FrameType.SEAL_SHARE, req);
  }
  activateShare(req: Api.ActivateShareRequest): Promise<Api.LoadShareReply> {
    return this.call(FrameType.ACTIVATE_SHARE, req);
  }
  retireWallet(req: Api.RetireWalletRequest): Promise<Api.RetireWalletReply> {
    return this.call(FrameType.RETIRE_WALLET, req);
  }
  /** The enclave's verdict on a share repair's evidence (src/enclave/supersession.ts); refused: an error. */
  supersededShare(req: Api.SupersededShareRequest): Promise<Api.SupersededShareReply> {
    return this.call(FrameType.SUPERSEDED_SHARE, req);
  }
  /** A fresh nonce for the next SUPERSEDED_SHARE of the wallet (single use). */
  supersessionNonce(req: Api.SupersessionNonceRequest): Promise<Api.SupersessionNonceReply> {
    return this.call(FrameType.SUPERSESSION_NONCE, req);
  }
  /** This enclave's signed word on which share of the wallet it holds loaded now (active-proof.ts). */
  proveActive(req: Api.ProveActiveRequest): Promise<Api.ProveActiveReply> {
    return this.call(FrameType.PROVE_ACTIVE, req);
  }

  close(): void {
    this.closing = true;
    this.rpc?.close();
  }
}
