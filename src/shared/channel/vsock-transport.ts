/**
 * The channel over AF_VSOCK, the enclave's only link to its host: listen and
 * dial on non-blocking sockets driven by the poller (socket-poller.ts) through
 * libc (socket-libc.ts).
 *
 * The socket code is address-family agnostic; AF_UNIX addresses are accepted
 * too so that machines without vsock loopback (CI, development) can exercise
 * exactly this code path end to end. Production uses AF_VSOCK only.
 */
import { unlinkSync } from "node:fs";
import { getPoller, type PollTarget } from "./socket-poller.ts";
import {
  c,
  decodeVsockAddress,
  EINPROGRESS,
  EINTR,
  EAGAIN,
  EMFILE,
  ENFILE,
  encodeAddress,
  formatAddress,
  MSG_NOSIGNAL,
  newSocket,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SocketError,
  SO_ERROR,
  SOL_SOCKET,
  sysError,
  VMADDR_CID_ANY,
  VMADDR_PORT_ANY,
  type SocketAddress,
} from "./socket-libc.ts";
// The same transport imports as unix-transport.ts: both implement the one channel interface.
import {
  ConnectionRegistry,
  StreamConnection,
  type ChannelConnection,
  type ChannelListener,
  type ListenOptions,
} from "./transport.ts";

export {
  AF_VSOCK,
  formatAddress,
  SocketError,
  VMADDR_CID_ANY,
  VMADDR_CID_HOST,
  VMADDR_CID_LOCAL,
  VMADDR_PORT_ANY,
  type SocketAddress,
} from "./socket-libc.ts";
export { POLL_IDLE_MS } from "./socket-poller.ts";

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

const ACCEPT_PAUSE_MS = 100;
const READ_CHUNK = 64 * 1024;
/** Per poll round, per socket: bounds how long one busy peer can hold the thread. */
const MAX_READS_PER_TICK = 16;
const MAX_ACCEPTS_PER_TICK = 8;

// ------------------------------------------------------------------ connection

let scratch: Uint8Array | null = null;

class FdConnection extends StreamConnection implements PollTarget {
  private fdClosed = false;

  constructor(
    readonly fd: number,
    label: string,
  ) {
    super(label);
    getPoller().add(this);
  }

  interest(): number {
    if (this.fdClosed) return 0;
    return POLLIN | (this.hasQueuedWrites ? POLLOUT : 0);
  }

  ready(revents: number): void {
    if (revents & POLLNVAL) {
      this.abort(
        new SocketError(`connection ${this.label}: descriptor no longer valid`, "EBADF", 9),
      );
      return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) this.readAvailable();
    if (!this.fdClosed && revents & POLLOUT) this.flush();
  }

  protected rawWrite(bytes: Uint8Array): number {
    for (;;) {
      const n = c().send(this.fd, bytes, bytes.length, MSG_NOSIGNAL) as number;
      if (n >= 0) {
        // A request out usually means a reply soon (or POLLOUT, if n is short).
        getPoller().kick();
        return n;
      }
      const errno = c().errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return 0;
      throw sysError(`connection ${this.label}: send failed`, errno);
    }
  }

  protected rawClose(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    getPoller().remove(this);
    c().close(this.fd);
    this.transportClosed(null);
  }

  private readAvailable(): void {
    const buf = (scratch ??= new Uint8Array(READ_CHUNK));
    for (let i = 0; i < MAX_READS_PER_TICK && !this.fdClosed; i++) {
      const n = c().recv(this.fd, buf, buf.length, 0) as number;
      if (n > 0) {
        this.deliver(buf.slice(0, n));
        continue;
      }
      if (n === 0) {
        // Orderly shutdown by the peer; half-open connections are not used.
        this.abort(null);
        return;
      }
      const errno = c().errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return;
      this.abort(sysError(`connection ${this.label}: recv failed`, errno));
      return;
    }
  }
}

// ------------------------------------------------------------------ listener

class FdListener implements ChannelListener, PollTarget {
  private closed = false;
  private pausedUntil = 0;

  constructor(
    readonly fd: number,
    readonly address: string,
    private readonly addr: SocketAddress,
    private readonly registry: ConnectionRegistry,
  ) {
    getPoller().add(this);
  }

  interest(): number {
    return this.closed || Date.now() < this.pausedUntil ? 0 : POLLIN;
  }

  ready(): void {
    const peer = new Uint8Array(128);
    const peerLen = new Uint32Array(1);
    for (let i = 0; i < MAX_ACCEPTS_PER_TICK && !this.closed; i++) {
      peerLen[0] = peer.length;
      const fd = c().accept4(this.fd, peer, peerLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const errno = c().errno();
        if (errno === EINTR) continue;
        // Out of descriptors: the pending connection stays readable, so pause
        // rather than spin on it; it is retried when the pause ends.
        if (errno === EMFILE || errno === ENFILE) this.pausedUntil = Date.now() + ACCEPT_PAUSE_MS;
        // EAGAIN: drained. ECONNABORTED and the like concern one connection only.
        return;
      }
      const vm =
        this.addr.family === "vsock" ? decodeVsockAddress(peer.subarray(0, peerLen[0])) : null;
      const label = vm ? `vsock:${vm.cid}:${vm.port}` : `${this.address}#${fd}`;
      this.registry.add(new FdConnection(fd, label));
    }
  }

  onConnection(cb: (conn: ChannelConnection) => void): void {
    this.registry.setAcceptor(cb);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    getPoller().remove(this);
    c().close(this.fd);
    this.registry.closeAll();
    if (this.addr.family === "unix") {
      try {
        unlinkSync(this.addr.path);
      } catch {
        // already gone
      }
    }
  }
}

// ------------------------------------------------------------------ public API

export interface VsockListenOptions extends ListenOptions {
  /** Default VMADDR_CID_ANY. */
  cid?: number;
  /** listen(2) backlog. Default 16. */
  backlog?: number;
}

/** Enclave side: listen for the host on a vsock port. */
export function listenVsock(port: number, options: VsockListenOptions = {}): ChannelListener {
  return listenSocket({ family: "vsock", cid: options.cid ?? VMADDR_CID_ANY, port }, options);
}

/** Host side: dial the enclave at `cid` (from `nitro-cli describe-enclaves`) and `port`. */
export function dialVsock(
  cid: number,
  port: number,
  options: { connectTimeoutMs?: number } = {},
): Promise<ChannelConnection> {
  return dialSocket({ family: "vsock", cid, port }, options);
}

/** The generic form: AF_VSOCK, or AF_UNIX to test this code path without vsock loopback. */
export function listenSocket(
  addr: SocketAddress,
  options: VsockListenOptions = {},
): ChannelListener {
  const registry = new ConnectionRegistry(options);
  const sa = encodeAddress(addr);
  const fd = newSocket(addr);
  const where = formatAddress(addr);
  const fail = (what: string, hint = "") => {
    const err = sysError(`cannot ${what} ${where}`, c().errno(), hint);
    c().close(fd);
    return err;
  };
  if (c().bind(fd, sa, sa.length) !== 0) throw fail("bind", "");
  if (c().listen(fd, options.backlog ?? 16) !== 0) throw fail("listen on");
  let address = where;
  if (addr.family === "vsock" && addr.port === VMADDR_PORT_ANY) {
    const local = new Uint8Array(16);
    const len = new Uint32Array([16]);
    if (c().getsockname(fd, local, len) === 0) {
      const vm = decodeVsockAddress(local);
      if (vm) address = formatAddress({ family: "vsock", cid: addr.cid, port: vm.port });
    }
  }
  return new FdListener(fd, address, addr, registry);
}

export function dialSocket(
  addr: SocketAddress,
  options: { connectTimeoutMs?: number } = {},
): Promise<ChannelConnection> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const sa = encodeAddress(addr);
  const where = formatAddress(addr);
  const fd = newSocket(addr);
  const hint =
    addr.family === "vsock"
      ? ": nothing accepted the connection; is the enclave running and listening on that port?"
      : "";
  if (c().connect(fd, sa, sa.length) === 0) return Promise.resolve(new FdConnection(fd, where));
  const errno = c().errno();
  if (errno !== EINPROGRESS && errno !== EINTR) {
    c().close(fd);
    return Promise.reject(sysError(`cannot connect to ${where}`, errno, hint));
  }
  // Non-blocking connect: writability signals completion, SO_ERROR the outcome.
  return new Promise((resolve, reject) => {
    const waiter: PollTarget = {
      fd,
      interest: () => POLLOUT,
      ready: () => {
        const err = new Int32Array(1);
        const len = new Uint32Array([4]);
        const rc = c().getsockopt(fd, SOL_SOCKET, SO_ERROR, err, len);
        finish(rc === 0 ? err[0]! : c().errno());
      },
    };
    const timer = setTimeout(() => {
      getPoller().remove(waiter);
      c().close(fd);
      reject(
        new SocketError(
          `cannot connect to ${where}: no answer within ${timeoutMs} ms${hint}`,
          "ETIMEDOUT",
          110,
        ),
      );
    }, timeoutMs);
    const finish = (soError: number) => {
      clearTimeout(timer);
      getPoller().remove(waiter);
      if (soError === 0) {
        resolve(new FdConnection(fd, where));
      } else {
        c().close(fd);
        reject(sysError(`cannot connect to ${where}`, soError, hint));
      }
    };
    getPoller().add(waiter);
  });
}

/** Whether this kernel lets us create AF_VSOCK sockets at all (not whether a peer is reachable). */
export function vsockSupport(): { available: true } | { available: false; reason: string } {
  try {
    c().close(newSocket({ family: "vsock", cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY }));
    return { available: true };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}
