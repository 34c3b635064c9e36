/**
 * The enclave's side of the channel: runs request handlers concurrently on
 * each connection and answers in any order.
 *
 * Failure rules:
 *  - A malformed frame header ends the connection: the server answers ERROR
 *    (with the frame's id, or 0 if unreadable) and closes; a byte stream
 *    cannot resynchronise.
 *  - A well-framed request with a bad body, an unknown type, or a handler that
 *    throws gets an ERROR reply and the connection keeps serving.
 *  - ERROR bodies are {code, message, party?} (rpc-errors.ts). Only RpcError
 *    (or what `exposeError` maps) reaches the wire verbatim; every other
 *    exception becomes "internal" so that no exception text, which may quote
 *    secret material, ever leaves the enclave. The full error goes to the
 *    local `log` hook.
 */
import { BodyError, decodeBody, encodeBodyAfter, type BodyMap } from "../wire/body.ts";
import {
  encodeFrameAround,
  FRAME_HEADER_LEN,
  FrameDecoder,
  FrameError,
  FrameType,
  frameTypeName,
  isReplyType,
  isRequestType,
  MAX_BODY_LEN,
  type Frame,
  type FrameType as FrameTypeCode,
  type RequestType,
} from "../wire/frame.ts";
import type { Reply } from "./rpc-client.ts";
import { errorBody, positiveOption, RpcError, type PublicError } from "./rpc-errors.ts";
import type { ChannelConnection, ChannelListener } from "./transport.ts";

export const DEFAULT_MAX_CONCURRENT = 16;
/** A frame must complete this long after its first byte, or the stream is deemed stuck. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;

export interface RequestContext {
  type: RequestType;
  correlationId: number;
  connection: ChannelConnection;
}

/** Returns the OK body, or a Reply to choose another reply type. Throw RpcError for a public failure. */
export type Handler = (
  body: BodyMap,
  ctx: RequestContext,
) => Promise<BodyMap | Reply> | BodyMap | Reply;
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
   * Maps a thrown error to a public {code, message, party?}, or null to hide
   * it as "internal". RpcError is always public. Use it for error classes
   * whose text is written to be safe to show, e.g. the core's protocol
   * errors; `party` is the protocol party (1..16) they blame.
   */
  exposeError?: (error: unknown) => PublicError | null;
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
  private readonly counters: ServerStats = {
    connections: 0,
    requests: 0,
    errorReplies: 0,
    protocolErrors: 0,
  };

  constructor(handlers: HandlerMap, options: RpcServerOptions = {}) {
    for (const t of Object.keys(handlers)) {
      if (!isRequestType(Number(t)))
        throw new RangeError(
          `handler registered for ${frameTypeName(Number(t))}, which is not a request type`,
        );
    }
    this.handlers = { ...handlers };
    this.maxBodyLen = options.maxBodyLen ?? MAX_BODY_LEN;
    this.maxConcurrent = positiveOption(
      options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
      "maxConcurrent",
    );
    this.frameTimeoutMs = positiveOption(
      options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS,
      "frameTimeoutMs",
    );
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
      // One allocation for the whole frame: the body is written after room for the header.
      const bytes = encodeFrameAround(
        type,
        correlationId,
        encodeBodyAfter(FRAME_HEADER_LEN, body, this.maxBodyLen),
        this.maxBodyLen,
      );
      if (conn.closed) return;
      if (type === FrameType.ERROR) this.counters.errorReplies++;
      conn.write(bytes);
    };
    const sendError = (
      correlationId: number,
      code: string,
      message: string,
      party?: number,
      reason?: string,
    ) => send(FrameType.ERROR, correlationId, errorBody(code, message, party, reason));

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
        sendError(f.correlationId, pub.code, pub.message, pub.party, pub.reason);
        return;
      } finally {
        running--;
      }
      try {
        const { type: replyType, body }: { type: number; body: BodyMap } =
          reply instanceof Map ? { type: FrameType.OK, body: reply } : (reply as Reply);
        if (!isReplyType(replyType) || replyType === FrameType.ERROR)
          throw new Error(`handler returned reply type ${frameTypeName(replyType)}`);
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
        sendError(
          f.correlationId,
          "unknown_type",
          `no handler for frame type ${frameTypeName(f.type)}`,
        );
      } else if (running >= this.maxConcurrent) {
        sendError(
          f.correlationId,
          "busy",
          `${running} requests already running on this connection`,
        );
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
          protocolError(
            decoder.fail(
              new FrameError(
                "frame_timeout",
                `frame incomplete ${this.frameTimeoutMs} ms after it started`,
                decoder.partialCorrelationId,
              ),
            ),
          );
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

  private publicError(e: unknown, name: string): PublicError {
    if (e instanceof RpcError) return { code: e.code, message: e.message, party: e.blame.party };
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
