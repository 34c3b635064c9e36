/**
 * Request/reply over one channel connection. The host is the client: it tags
 * each request with a fresh correlation id and may have several in flight; the
 * enclave is the server: it runs handlers concurrently and answers in any order.
 *
 * Failure rules:
 *  - A malformed frame header ends the connection: the server answers ERROR
 *    (with the frame's id, or 0 if unreadable) and closes; the client closes.
 *  - A well-framed request with a bad body, an unknown type, or a handler that
 *    throws gets an ERROR reply and the connection keeps serving.
 *  - ERROR bodies are {code, message}. Only RpcError (or what `exposeError`
 *    maps) reaches the wire verbatim; every other exception becomes
 *    "internal" so that no exception text, which may quote secret material,
 *    ever leaves the enclave. The full error goes to the local `log` hook.
 */
import { BodyError, bodyOf, decodeBody, encodeBody, getString, type BodyMap } from "../wire/body.ts";
import {
  encodeFrame,
  FrameDecoder,
  FrameError,
  FrameType,
  frameTypeName,
  isReplyType,
  isRequestType,
  MAX_BODY_LEN,
  MAX_CORRELATION_ID,
  type Frame,
  type FrameType as FrameTypeCode,
  type ReplyType,
  type RequestType,
} from "../wire/frame.ts";
import type { ChannelConnection, ChannelListener } from "./transport.ts";

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_IN_FLIGHT = 16;
export const DEFAULT_MAX_CONCURRENT = 16;
/** A frame must complete this long after its first byte, or the stream is deemed stuck. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;
const MAX_ERROR_MESSAGE = 512;
const ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/;

export interface Reply {
  type: Exclude<ReplyType, typeof FrameType.ERROR>;
  body: BodyMap;
}

/** Thrown by a handler: `code` and `message` go to the host as they are, so they must be public. */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The enclave answered ERROR. */
export class RpcRemoteError extends Error {
  override name = "RpcRemoteError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export class RpcTimeoutError extends Error {
  override name = "RpcTimeoutError";
}

export class RpcClosedError extends Error {
  override name = "RpcClosedError";
}

/** Too many requests in flight; nothing was sent. */
export class RpcBusyError extends Error {
  override name = "RpcBusyError";
}

/** The peer sent something this side cannot accept. */
export class RpcProtocolError extends Error {
  override name = "RpcProtocolError";
}

export function errorBody(code: string, message: string): BodyMap {
  const safeCode = ERROR_CODE.test(code) ? code : "internal";
  const safeMessage = message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}...` : message;
  return bodyOf({ code: safeCode, message: safeMessage });
}

export function readErrorBody(body: BodyMap): { code: string; message: string } {
  return { code: getString(body, "code"), message: getString(body, "message") };
}

// ------------------------------------------------------------------ client

export interface RpcClientOptions {
  /** Per request, overridable per call. Default 30 s. */
  timeoutMs?: number;
  /** Requests beyond this many unanswered ones fail with RpcBusyError. Default 16. */
  maxInFlight?: number;
  maxBodyLen?: number;
}

interface Pending {
  type: RequestType;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class RpcClient {
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: FrameDecoder;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly maxBodyLen: number;
  private nextId = 1;
  private closeReason: Error | null = null;
  private lateReplies = 0;

  constructor(
    private readonly conn: ChannelConnection,
    options: RpcClientOptions = {},
  ) {
    this.maxBodyLen = options.maxBodyLen ?? MAX_BODY_LEN;
    this.decoder = new FrameDecoder({ maxBodyLen: this.maxBodyLen });
    this.timeoutMs = positive(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeoutMs");
    this.maxInFlight = positive(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, "maxInFlight");
    conn.onData((chunk) => this.onData(chunk));
    conn.onClose((err) => this.shutDown(new RpcClosedError(`channel ${conn.label} closed${err ? `: ${err.message}` : ""}`)));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Replies that arrived after their request timed out (or with an id never used), and were dropped. */
  get droppedReplies(): number {
    return this.lateReplies;
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /**
   * Sends a request. Resolves with the reply; rejects with RpcRemoteError for
   * an ERROR reply, or RpcTimeoutError, RpcBusyError, RpcClosedError,
   * RpcProtocolError.
   */
  request(type: RequestType, body: BodyMap = new Map(), options: { timeoutMs?: number } = {}): Promise<Reply> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    if (!isRequestType(type)) return Promise.reject(new RangeError(`${frameTypeName(type)} is not a request type`));
    if (this.pending.size >= this.maxInFlight) {
      return Promise.reject(new RpcBusyError(`${this.pending.size} requests already in flight on ${this.conn.label} (limit ${this.maxInFlight})`));
    }
    const timeoutMs = positive(options.timeoutMs ?? this.timeoutMs, "timeoutMs");
    let bytes: Uint8Array;
    const id = this.allocateId();
    try {
      bytes = encodeFrame({ type, correlationId: id, body: encodeBody(body, this.maxBodyLen) }, this.maxBodyLen);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcTimeoutError(`${frameTypeName(type)} request #${id} on ${this.conn.label} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { type, resolve, reject, timer });
      try {
        this.conn.write(bytes);
      } catch (e) {
        this.settle(id)?.reject(this.closeReason ?? new RpcClosedError(`channel ${this.conn.label} closed: ${(e as Error).message}`));
      }
    });
  }

  close(): void {
    this.shutDown(new RpcClosedError(`channel ${this.conn.label} closed by this side`));
    this.conn.close();
  }

  private allocateId(): number {
    // 0 is reserved for connection-level errors; skip ids still in flight after wrap-around.
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_CORRELATION_ID ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  private onData(chunk: Uint8Array): void {
    const { frames, error } = this.decoder.push(chunk);
    for (const f of frames) this.onFrame(f);
    if (error) {
      this.shutDown(new RpcProtocolError(`enclave sent a malformed frame on ${this.conn.label}: ${error.message}`));
      this.conn.close();
    }
  }

  private onFrame(f: Frame): void {
    if (!isReplyType(f.type)) {
      this.shutDown(new RpcProtocolError(`enclave sent a ${frameTypeName(f.type)} request frame on ${this.conn.label}; only replies are expected`));
      this.conn.close();
      return;
    }
    if (f.correlationId === 0 && f.type === FrameType.ERROR) {
      // The server could not read our stream and is closing the connection.
      const detail = describeError(f.body, this.maxBodyLen);
      this.shutDown(new RpcClosedError(`enclave closed ${this.conn.label} after a protocol error: ${detail}`));
      return;
    }
    const p = this.settle(f.correlationId);
    if (!p) {
      this.lateReplies++;
      return;
    }
    let body: BodyMap;
    try {
      body = decodeBody(f.body, this.maxBodyLen);
    } catch (e) {
      p.reject(new RpcProtocolError(`reply to ${frameTypeName(p.type)} #${f.correlationId} has a malformed body: ${(e as Error).message}`));
      return;
    }
    if (f.type === FrameType.ERROR) {
      try {
        const { code, message } = readErrorBody(body);
        p.reject(new RpcRemoteError(code, message));
      } catch (e) {
        p.reject(new RpcProtocolError(`ERROR reply to #${f.correlationId} is malformed: ${(e as Error).message}`));
      }
      return;
    }
    p.resolve({ type: f.type, body });
  }

  private shutDown(reason: Error): void {
    this.closeReason ??= reason;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(this.closeReason);
  }
}

function describeError(body: Uint8Array, maxBodyLen: number): string {
  try {
    const { code, message } = readErrorBody(decodeBody(body, maxBodyLen));
    return `${code}: ${message}`;
  } catch {
    return "(unreadable ERROR body)";
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got ${n}`);
  return n;
}

// ------------------------------------------------------------------ server

export interface RequestContext {
  type: RequestType;
  correlationId: number;
  connection: ChannelConnection;
}

/** Returns the OK body, or a Reply to choose another reply type. Throw RpcError for a public failure. */
export type Handler = (body: BodyMap, ctx: RequestContext) => Promise<BodyMap | Reply> | BodyMap | Reply;
export type HandlerMap = Partial<Record<RequestType, Handler>>;

export type ServerEvent =
  | { kind: "protocol_error"; connection: string; error: FrameError }
  | { kind: "handler_error"; connection: string; type: FrameTypeCode; error: unknown }
  | { kind: "connection_error"; connection: string; error: Error };

export interface RpcServerOptions {
  maxBodyLen?: number;
  /** Handlers running at once per connection; more get ERROR "busy". Default 16. */
  maxConcurrent?: number;
  /** Default 10 s. */
  frameTimeoutMs?: number;
  /**
   * Maps a thrown error to a public {code, message}, or null to hide it as
   * "internal". RpcError is always public. Use it for error classes whose
   * text is written to be safe to show, e.g. the core's protocol errors.
   */
  exposeError?: (error: unknown) => { code: string; message: string } | null;
  /** Local diagnostics (never sent to the peer). Default: none. */
  log?: (event: ServerEvent) => void;
}

export interface ServerStats {
  connections: number;
  requests: number;
  errorReplies: number;
  protocolErrors: number;
}

export class RpcServer {
  private readonly handlers: HandlerMap;
  private readonly maxBodyLen: number;
  private readonly maxConcurrent: number;
  private readonly frameTimeoutMs: number;
  private readonly exposeError: NonNullable<RpcServerOptions["exposeError"]>;
  private readonly log: NonNullable<RpcServerOptions["log"]>;
  private readonly conns = new Set<ChannelConnection>();
  private readonly counters: ServerStats = { connections: 0, requests: 0, errorReplies: 0, protocolErrors: 0 };

  constructor(handlers: HandlerMap, options: RpcServerOptions = {}) {
    for (const t of Object.keys(handlers)) {
      if (!isRequestType(Number(t))) throw new RangeError(`handler registered for ${frameTypeName(Number(t))}, which is not a request type`);
    }
    this.handlers = { ...handlers };
    this.maxBodyLen = options.maxBodyLen ?? MAX_BODY_LEN;
    this.maxConcurrent = positive(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT, "maxConcurrent");
    this.frameTimeoutMs = positive(options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS, "frameTimeoutMs");
    this.exposeError = options.exposeError ?? (() => null);
    this.log = options.log ?? (() => {});
  }

  get stats(): ServerStats {
    return { ...this.counters };
  }

  serve(listener: ChannelListener): void {
    listener.onConnection((conn) => this.attach(conn));
  }

  /** Serves one connection until it closes. */
  attach(conn: ChannelConnection): void {
    this.conns.add(conn);
    this.counters.connections++;
    const decoder = new FrameDecoder({ maxBodyLen: this.maxBodyLen });
    let running = 0;
    let stallTimer: ReturnType<typeof setTimeout> | null = null;

    const send = (type: FrameTypeCode, correlationId: number, body: BodyMap) => {
      // Encoding happens first so a bad reply body becomes an ERROR, not a broken stream.
      const bytes = encodeFrame({ type, correlationId, body: encodeBody(body, this.maxBodyLen) }, this.maxBodyLen);
      if (conn.closed) return;
      if (type === FrameType.ERROR) this.counters.errorReplies++;
      conn.write(bytes);
    };
    const sendError = (correlationId: number, code: string, message: string) => send(FrameType.ERROR, correlationId, errorBody(code, message));

    const protocolError = (error: FrameError) => {
      this.counters.protocolErrors++;
      this.log({ kind: "protocol_error", connection: conn.label, error });
      sendError(error.correlationId, error.code, error.message);
      conn.close();
    };

    const run = async (f: Frame, type: RequestType, handler: Handler) => {
      const name = frameTypeName(type);
      let request: BodyMap;
      try {
        request = decodeBody(f.body, this.maxBodyLen);
      } catch (e) {
        sendError(f.correlationId, "bad_body", `${name} body: ${(e as Error).message}`);
        return;
      }
      let reply: BodyMap | Reply;
      running++;
      try {
        reply = await handler(request, { type, correlationId: f.correlationId, connection: conn });
      } catch (e) {
        this.log({ kind: "handler_error", connection: conn.label, type, error: e });
        const pub = this.publicError(e, name);
        sendError(f.correlationId, pub.code, pub.message);
        return;
      } finally {
        running--;
      }
      try {
        const { type: replyType, body }: { type: number; body: BodyMap } = reply instanceof Map ? { type: FrameType.OK, body: reply } : (reply as Reply);
        if (!isReplyType(replyType) || replyType === FrameType.ERROR) throw new Error(`handler returned reply type ${frameTypeName(replyType)}`);
        send(replyType, f.correlationId, body);
      } catch (e) {
        this.log({ kind: "handler_error", connection: conn.label, type, error: e });
        sendError(f.correlationId, "internal", `${name} produced a reply that cannot be sent`);
      }
    };

    const onFrame = (f: Frame) => {
      this.counters.requests++;
      const handler = isRequestType(f.type) ? this.handlers[f.type] : undefined;
      if (!isRequestType(f.type) || !handler) {
        sendError(f.correlationId, "unknown_type", `no handler for frame type ${frameTypeName(f.type)}`);
      } else if (running >= this.maxConcurrent) {
        sendError(f.correlationId, "busy", `${running} requests already running on this connection`);
      } else {
        void run(f, f.type, handler);
      }
    };

    conn.onData((chunk) => {
      if (decoder.error) return;
      const { frames, error } = decoder.push(chunk);
      for (const f of frames) onFrame(f);
      if (error) {
        protocolError(error);
        return;
      }
      // A frame must complete within frameTimeoutMs of its start: a stalled or
      // trickled frame would otherwise hold the connection while the host
      // learns nothing. Completed frames count as progress and restart it.
      if (stallTimer && (!decoder.partial || frames.length > 0)) {
        clearTimeout(stallTimer);
        stallTimer = null;
      }
      if (decoder.partial && !stallTimer) {
        stallTimer = setTimeout(() => {
          stallTimer = null;
          if (!decoder.partial || decoder.error || conn.closed) return;
          protocolError(decoder.fail(new FrameError("frame_timeout", `frame incomplete ${this.frameTimeoutMs} ms after it started`, decoder.partialCorrelationId)));
        }, this.frameTimeoutMs);
      }
    });
    conn.onClose((err) => {
      this.conns.delete(conn);
      if (stallTimer) clearTimeout(stallTimer);
      if (err) this.log({ kind: "connection_error", connection: conn.label, error: err });
    });
  }

  /** Closes every connection being served; listeners belong to the caller. */
  close(): void {
    for (const c of [...this.conns]) c.close();
  }

  private publicError(e: unknown, name: string): { code: string; message: string } {
    if (e instanceof RpcError) return { code: e.code, message: e.message };
    // Field-access errors on the request name fields and kinds, never values.
    if (e instanceof BodyError) return { code: "bad_body", message: `${name} body: ${e.message}` };
    try {
      const mapped = this.exposeError(e);
      if (mapped) return mapped;
    } catch {
      // a failing mapper must not turn into a leak; fall through to internal
    }
    return { code: "internal", message: `${name} failed inside the enclave` };
  }
}
