/**
 * The host's side of the channel: request/reply over one connection. Each
 * request gets a fresh correlation id and several may be in flight; replies
 * are matched by id in any order.
 *
 * Failure rules (the server's are in rpc-server.ts):
 *  - A malformed frame, or a request-type frame, from the enclave ends the
 *    connection: every pending request fails with RpcProtocolError.
 *  - An ERROR reply rejects its request with RpcRemoteError (code, sentence,
 *    blamed party); an ERROR with correlation id 0 means the enclave could
 *    not read this side's stream and is closing.
 *  - A reply after its request timed out is counted and dropped.
 */
import { decodeBody, encodeBodyAfter, type BodyMap } from "../wire/body.ts";
import {
  encodeFrameAround,
  FRAME_HEADER_LEN,
  FrameDecoder,
  FrameType,
  frameTypeName,
  isReplyType,
  isRequestType,
  MAX_BODY_LEN,
  MAX_CORRELATION_ID,
  type Frame,
  type ReplyType,
  type RequestType,
} from "../wire/frame.ts";
import {
  positiveOption,
  readErrorBody,
  RpcBusyError,
  RpcClosedError,
  RpcProtocolError,
  RpcRemoteError,
  RpcTimeoutError,
} from "./rpc-errors.ts";
import type { ChannelConnection } from "./transport.ts";

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_IN_FLIGHT = 16;

export interface Reply {
  type: Exclude<ReplyType, typeof FrameType.ERROR>;
  body: BodyMap;
}

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
    this.timeoutMs = positiveOption(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, "timeoutMs");
    this.maxInFlight = positiveOption(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, "maxInFlight");
    conn.onData((chunk) => this.onData(chunk));
    conn.onClose((err) =>
      this.shutDown(
        new RpcClosedError(`channel ${conn.label} closed${err ? `: ${err.message}` : ""}`),
      ),
    );
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
  request(
    type: RequestType,
    body: BodyMap = new Map(),
    options: { timeoutMs?: number } = {},
  ): Promise<Reply> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    if (!isRequestType(type))
      return Promise.reject(new RangeError(`${frameTypeName(type)} is not a request type`));
    if (this.pending.size >= this.maxInFlight) {
      return Promise.reject(
        new RpcBusyError(
          `${this.pending.size} requests already in flight on ${this.conn.label} (limit ${this.maxInFlight})`,
        ),
      );
    }
    const timeoutMs = positiveOption(options.timeoutMs ?? this.timeoutMs, "timeoutMs");
    let bytes: Uint8Array;
    const id = this.allocateId();
    try {
      // One allocation for the whole frame: the body is written after room for the header.
      bytes = encodeFrameAround(
        type,
        id,
        encodeBodyAfter(FRAME_HEADER_LEN, body, this.maxBodyLen),
        this.maxBodyLen,
      );
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new RpcTimeoutError(
            `${frameTypeName(type)} request #${id} on ${this.conn.label} got no reply within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { type, resolve, reject, timer });
      try {
        this.conn.write(bytes);
      } catch (e) {
        this.settle(id)?.reject(
          this.closeReason ??
            new RpcClosedError(`channel ${this.conn.label} closed: ${(e as Error).message}`),
        );
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
      this.shutDown(
        new RpcProtocolError(
          `enclave sent a malformed frame on ${this.conn.label}: ${error.message}`,
        ),
      );
      this.conn.close();
    }
  }

  private onFrame(f: Frame): void {
    if (!isReplyType(f.type)) {
      this.shutDown(
        new RpcProtocolError(
          `enclave sent a ${frameTypeName(f.type)} request frame on ${this.conn.label}; only replies are expected`,
        ),
      );
      this.conn.close();
      return;
    }
    if (f.correlationId === 0 && f.type === FrameType.ERROR) {
      // The server could not read our stream and is closing the connection.
      const detail = describeError(f.body, this.maxBodyLen);
      this.shutDown(
        new RpcClosedError(`enclave closed ${this.conn.label} after a protocol error: ${detail}`),
      );
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
      p.reject(
        new RpcProtocolError(
          `reply to ${frameTypeName(p.type)} #${f.correlationId} has a malformed body: ${(e as Error).message}`,
        ),
      );
      return;
    }
    if (f.type === FrameType.ERROR) {
      try {
        const { code, message, party, reason } = readErrorBody(body);
        p.reject(new RpcRemoteError(code, message, party, reason));
      } catch (e) {
        p.reject(
          new RpcProtocolError(
            `ERROR reply to #${f.correlationId} is malformed: ${(e as Error).message}`,
          ),
        );
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
