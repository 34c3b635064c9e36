/**
 * The channel over AF_VSOCK, the enclave's only link to its host. Bun has no
 * vsock sockets, so this drives libc through bun:ffi.
 *
 * Event loop: every socket is non-blocking (SOCK_NONBLOCK), and one poller per
 * JS thread calls poll(2) with a zero timeout from a timer, so no call ever
 * blocks. The timer runs immediately again while sockets are busy and backs
 * off to POLL_IDLE_MS when idle (about a hundred cheap syscalls a second), and a
 * write or dial switches it back to busy because a reply is likely soon. The
 * cost is up to POLL_IDLE_MS of added latency on the first message after a
 * quiet spell, small next to a ceremony's network round trips.
 *
 * The socket code is address-family agnostic; AF_UNIX addresses are accepted
 * too so that machines without vsock loopback (CI, development) can exercise
 * exactly this code path end to end. Production uses AF_VSOCK only.
 *
 * sockaddr_vm (linux/vm_sockets.h), 16 bytes, host byte order:
 *   u16 svm_family = 40 | u16 svm_reserved1 | u32 svm_port | u32 svm_cid | u8 svm_zero[4]
 */
import { existsSync, unlinkSync } from "node:fs";
import { endianness } from "node:os";
import { dlopen, FFIType, read } from "bun:ffi";
import { ConnectionRegistry, StreamConnection, type ChannelConnection, type ChannelListener, type ListenOptions } from "./transport.ts";

export const AF_VSOCK = 40;
/** Bind to every CID this machine has. */
export const VMADDR_CID_ANY = 0xffff_ffff;
/** The local CID, for loopback where the kernel provides it. */
export const VMADDR_CID_LOCAL = 1;
/** The parent instance, seen from inside an enclave. */
export const VMADDR_CID_HOST = 2;
export const VMADDR_PORT_ANY = 0xffff_ffff;

export const POLL_IDLE_MS = 10;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const MSG_NOSIGNAL = 0x4000; // a closed peer must not SIGPIPE the process
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;
const EMFILE = 24;
const ENFILE = 23;
const ACCEPT_PAUSE_MS = 100;
const READ_CHUNK = 64 * 1024;
/** Per poll round, per socket: bounds how long one busy peer can hold the thread. */
const MAX_READS_PER_TICK = 16;
const MAX_ACCEPTS_PER_TICK = 8;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EAGAIN", 13: "EACCES", 19: "ENODEV", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 32: "EPIPE", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 101: "ENETUNREACH",
  104: "ECONNRESET", 107: "ENOTCONN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH", 115: "EINPROGRESS",
};

export type SocketAddress = { family: "vsock"; cid: number; port: number } | { family: "unix"; path: string };

export class SocketError extends Error {
  override name = "SocketError";
  constructor(
    message: string,
    /** Symbolic errno ("ETIMEDOUT"), or "ETIMEDOUT" for our own connect deadline too. */
    readonly code: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

// ------------------------------------------------------------------ libc

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | null = null;

function openLibc() {
  // Enclave images are often Alpine (musl); everything else here is glibc.
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  const name = existsSync(`/lib/ld-musl-${arch}.so.1`) ? `libc.musl-${arch}.so.1` : "libc.so.6";
  const { symbols } = dlopen(name, {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    accept4: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
    send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    strerror: { args: [FFIType.i32], returns: FFIType.cstring },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  const errnoCell = symbols.__errno_location();
  if (errnoCell === null) throw new Error("libc returned no errno location");
  // errno is thread-local; the cell's address is stable for this JS thread.
  return { ...symbols, errno: () => read.i32(errnoCell) };
}

function c(): Libc {
  libc ??= openLibc();
  return libc;
}

function sysError(what: string, errno: number, hint = ""): SocketError {
  const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
  return new SocketError(`${what}: ${code} (${String(c().strerror(errno))})${hint}`, code, errno);
}

// ------------------------------------------------------------------ addresses

const LE = endianness() === "LE";

function encodeAddress(addr: SocketAddress): Uint8Array {
  if (addr.family === "vsock") {
    for (const [name, v] of [["cid", addr.cid], ["port", addr.port]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`vsock ${name} ${v} is not a u32`);
    }
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint16(0, AF_VSOCK, LE);
    v.setUint32(4, addr.port, LE);
    v.setUint32(8, addr.cid, LE);
    return b;
  }
  const path = new TextEncoder().encode(addr.path);
  // sun_path is 108 bytes including the terminating NUL.
  if (path.length === 0 || path.length > 107 || path.includes(0)) throw new RangeError(`unix socket path must be 1..107 bytes without NUL: ${addr.path}`);
  const b = new Uint8Array(2 + path.length + 1);
  new DataView(b.buffer).setUint16(0, AF_UNIX, LE);
  b.set(path, 2);
  return b;
}

function familyCode(addr: SocketAddress): number {
  return addr.family === "vsock" ? AF_VSOCK : AF_UNIX;
}

function cidName(cid: number): string {
  return cid === VMADDR_CID_ANY ? "any" : String(cid);
}

export function formatAddress(addr: SocketAddress): string {
  return addr.family === "vsock" ? `vsock:${cidName(addr.cid)}:${addr.port}` : `unix:${addr.path}`;
}

/** Reads a peer or local sockaddr back; vsock only (unix peers are unnamed). */
function decodeVsockAddress(b: Uint8Array): { cid: number; port: number } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 16 || v.getUint16(0, LE) !== AF_VSOCK) return null;
  return { port: v.getUint32(4, LE), cid: v.getUint32(8, LE) };
}

function newSocket(addr: SocketAddress): number {
  const fd = c().socket(familyCode(addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const errno = c().errno();
    const hint = addr.family === "vsock" && ERRNO_NAMES[errno] === "EAFNOSUPPORT" ? ": this kernel has no vsock support (modprobe vsock?)" : "";
    throw sysError(`cannot create ${addr.family} socket`, errno, hint);
  }
  return fd;
}

// ------------------------------------------------------------------ poller

interface PollTarget {
  readonly fd: number;
  /** Events wanted now; 0 to skip this round. */
  interest(): number;
  ready(revents: number): void;
}

/** One per JS thread (module instances are per thread). */
class Poller {
  private readonly targets = new Set<PollTarget>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerDelay = 0;
  private delay = 0;

  add(t: PollTarget): void {
    this.targets.add(t);
    this.kick();
  }

  remove(t: PollTarget): void {
    this.targets.delete(t);
    if (this.targets.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Poll soon: something is expected to happen. */
  kick(): void {
    this.delay = 0;
    if (this.timer && this.timerDelay === 0) return;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDelay = ms;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = null;
    const list = [...this.targets].filter((t) => t.interest() !== 0);
    let active = false;
    if (list.length > 0) {
      // struct pollfd { int fd; short events; short revents; }, host byte order.
      const fds = new Int32Array(list.length * 2);
      const ev = new Int16Array(fds.buffer);
      list.forEach((t, i) => {
        fds[2 * i] = t.fd;
        ev[4 * i + 2] = t.interest();
      });
      const n = c().poll(fds, list.length, 0);
      if (n > 0) {
        active = true;
        list.forEach((t, i) => {
          const revents = ev[4 * i + 3]!;
          if (revents === 0 || !this.targets.has(t)) return;
          try {
            t.ready(revents);
          } catch (e) {
            // A throwing callback upstream is a bug to surface, but it must
            // not stop the loop every other socket depends on.
            queueMicrotask(() => {
              throw e;
            });
          }
        });
      }
    }
    if (this.targets.size === 0) return;
    this.delay = active ? 0 : Math.min(POLL_IDLE_MS, Math.max(1, this.delay * 2));
    // A kick during dispatch has already scheduled an immediate round.
    if (!this.timer) this.schedule(this.delay);
  }
}

let poller: Poller | null = null;
const getPoller = (): Poller => (poller ??= new Poller());

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
      this.abort(new SocketError(`connection ${this.label}: descriptor no longer valid`, "EBADF", 9));
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
      const vm = this.addr.family === "vsock" ? decodeVsockAddress(peer.subarray(0, peerLen[0])) : null;
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
export function dialVsock(cid: number, port: number, options: { connectTimeoutMs?: number } = {}): Promise<ChannelConnection> {
  return dialSocket({ family: "vsock", cid, port }, options);
}

/** The generic form: AF_VSOCK, or AF_UNIX to test this code path without vsock loopback. */
export function listenSocket(addr: SocketAddress, options: VsockListenOptions = {}): ChannelListener {
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

export function dialSocket(addr: SocketAddress, options: { connectTimeoutMs?: number } = {}): Promise<ChannelConnection> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const sa = encodeAddress(addr);
  const where = formatAddress(addr);
  const fd = newSocket(addr);
  const hint = addr.family === "vsock" ? ": nothing accepted the connection; is the enclave running and listening on that port?" : "";
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
      reject(new SocketError(`cannot connect to ${where}: no answer within ${timeoutMs} ms${hint}`, "ETIMEDOUT", 110));
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
