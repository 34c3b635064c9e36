/**
 * Byte-stream transport between host and enclave. Two implementations share
 * this interface: AF_VSOCK (production, vsock-transport.ts) and Unix domain
 * sockets (development and tests, unix-transport.ts). Framing and RPC sit on
 * top and never know which one they run on.
 *
 * Both are callback based and never block the event loop. Writes are queued
 * when the kernel buffer is full and flushed as the peer reads; a peer that
 * stops reading gets its connection closed once MAX_QUEUED_WRITE bytes wait.
 */

/** Generous for a bounded number of 1 MiB frames in flight; beyond it the peer is not reading. */
export const MAX_QUEUED_WRITE = 32 * 1024 * 1024;
/** Data that arrives before onData is registered is held up to this many bytes. */
export const MAX_HELD_READ = 2 * 1024 * 1024;
/** How long close() waits for queued bytes to drain before dropping them. */
export const CLOSE_FLUSH_MS = 2_000;

export interface ChannelConnection {
  /** The peer, for logs and error sentences: "unix:/run/tss.sock", "vsock:16:5000". */
  readonly label: string;
  readonly closed: boolean;
  /** Queues bytes in order. Throws ChannelClosedError once closing has begun. Do not mutate `bytes` afterwards. */
  write(bytes: Uint8Array): void;
  /** Registers the single reader. Chunks are borrowed for the callback's duration; copy to keep. */
  onData(cb: (chunk: Uint8Array) => void): void;
  /** Called once, with the error that ended the connection or null for an orderly close. */
  onClose(cb: (error: Error | null) => void): void;
  /** Sends what is queued (waiting at most CLOSE_FLUSH_MS), then closes. Idempotent. */
  close(): void;
}

export interface ChannelListener {
  /** Where it listens: "unix:/run/tss.sock", "vsock:any:5000". */
  readonly address: string;
  /** Registers the single acceptor; connections accepted earlier are handed over at once. */
  onConnection(cb: (conn: ChannelConnection) => void): void;
  /** Stops accepting and closes every connection it accepted. */
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Connections beyond this many open ones are accepted and closed at once. Default 16. */
  maxConnections?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 16;

export class ChannelClosedError extends Error {
  override name = "ChannelClosedError";
}

/**
 * The bookkeeping both transports share: single reader with a bounded hold
 * queue, close callbacks fired exactly once, and the write queue with
 * graceful close. A subclass supplies the raw socket operations and calls
 * `deliver`, `flush` and `transportClosed` from its event handlers.
 */
export abstract class StreamConnection implements ChannelConnection {
  private reader: ((chunk: Uint8Array) => void) | null = null;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private closeCbs: ((error: Error | null) => void)[] = [];
  private endError: Error | null = null;
  private state: "open" | "closing" | "closed" = "open";
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private released = false;

  constructor(readonly label: string) {}

  /** Writes as much as the kernel takes now; returns the count (0 if it would block). Throws on a broken socket. */
  protected abstract rawWrite(bytes: Uint8Array): number;
  /** Releases the socket at once; must lead to transportClosed. */
  protected abstract rawClose(): void;

  get closed(): boolean {
    return this.state !== "open";
  }

  protected get hasQueuedWrites(): boolean {
    return this.queuedBytes > 0;
  }

  write(bytes: Uint8Array): void {
    if (this.state !== "open") throw new ChannelClosedError(`connection ${this.label} is closed`);
    if (this.queue.length === 0) {
      const n = this.tryWrite(bytes);
      if (n < 0 || n === bytes.length) return;
      bytes = new Uint8Array(bytes.subarray(n)); // copy: `bytes` may be a Buffer, whose slice() is a view
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > MAX_QUEUED_WRITE) {
      this.abort(
        new ChannelClosedError(
          `connection ${this.label}: peer is not reading (${this.queuedBytes} bytes queued)`,
        ),
      );
    }
  }

  onData(cb: (chunk: Uint8Array) => void): void {
    if (this.reader) throw new Error(`connection ${this.label} already has a reader`);
    this.reader = cb;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const chunk of held) cb(chunk);
  }

  onClose(cb: (error: Error | null) => void): void {
    if (this.state === "closed") queueMicrotask(() => cb(this.endError));
    else this.closeCbs.push(cb);
  }

  close(): void {
    if (this.state !== "open") return;
    this.state = "closing";
    if (this.queue.length === 0) {
      this.release();
      return;
    }
    this.flushTimer = setTimeout(() => this.abort(null), CLOSE_FLUSH_MS);
  }

  /** Closes at once, dropping queued bytes. */
  protected abort(error: Error | null): void {
    if (this.state === "closed") return;
    this.endError ??= error;
    this.queue = [];
    this.queuedBytes = 0;
    this.state = "closing";
    this.release();
  }

  protected deliver(chunk: Uint8Array): void {
    if (this.state === "closed") return;
    if (this.reader) {
      this.reader(chunk);
      return;
    }
    this.heldBytes += chunk.length;
    if (this.heldBytes > MAX_HELD_READ) {
      this.abort(
        new ChannelClosedError(
          `connection ${this.label}: more than ${MAX_HELD_READ} bytes arrived before a reader was attached`,
        ),
      );
      return;
    }
    this.held.push(new Uint8Array(chunk));
  }

  /** Called when the socket is writable again. */
  protected flush(): void {
    while (this.queue.length > 0 && this.state !== "closed") {
      const head = this.queue[0]!;
      const n = this.tryWrite(head);
      if (n < 0) return;
      this.queuedBytes -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    if (this.state === "closing" && this.queue.length === 0) this.release();
  }

  /** Called exactly when the underlying socket is gone (idempotent). */
  protected transportClosed(error: Error | null): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.endError ??= error;
    this.queue = [];
    this.queuedBytes = 0;
    this.held = [];
    if (this.flushTimer) clearTimeout(this.flushTimer);
    const cbs = this.closeCbs;
    this.closeCbs = [];
    for (const cb of cbs) cb(this.endError);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.rawClose();
  }

  /** rawWrite that turns a socket failure into closing the connection; -1 then. */
  private tryWrite(bytes: Uint8Array): number {
    try {
      return this.rawWrite(bytes);
    } catch (e) {
      this.abort(e instanceof Error ? e : new Error(String(e)));
      return -1;
    }
  }
}

/** Accepted connections, the acceptor callback and the connection cap, for both listeners. */
export class ConnectionRegistry {
  private acceptor: ((conn: ChannelConnection) => void) | null = null;
  private waiting: ChannelConnection[] = [];
  private readonly open = new Set<ChannelConnection>();
  private readonly max: number;

  constructor(options: ListenOptions = {}) {
    this.max = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (!Number.isInteger(this.max) || this.max < 1)
      throw new RangeError(`maxConnections must be a positive integer, got ${this.max}`);
  }

  setAcceptor(cb: (conn: ChannelConnection) => void): void {
    if (this.acceptor) throw new Error("listener already has a connection callback");
    this.acceptor = cb;
    const waiting = this.waiting;
    this.waiting = [];
    for (const c of waiting) if (!c.closed) cb(c);
  }

  /** Takes ownership of a new connection; closes it if over the cap. */
  add(conn: ChannelConnection): void {
    if (this.open.size >= this.max) {
      conn.close();
      return;
    }
    this.open.add(conn);
    conn.onClose(() => this.open.delete(conn));
    if (this.acceptor) this.acceptor(conn);
    else this.waiting.push(conn);
  }

  closeAll(): void {
    for (const c of [...this.open]) c.close();
    this.waiting = [];
  }
}
