/**
 * libc through bun:ffi, for the socket transport in vsock-transport.ts (Bun
 * has no vsock sockets): the symbols, the syscall constants, errno as a
 * SocketError, and the sockaddr layouts.
 *
 * sockaddr_vm (linux/vm_sockets.h), 16 bytes, host byte order:
 *   u16 svm_family = 40 | u16 svm_reserved1 | u32 svm_port | u32 svm_cid | u8 svm_zero[4]
 * sockaddr_un: u16 sun_family = 1 | sun_path (NUL-terminated, at most 108 bytes)
 */
import { existsSync } from "node:fs";
import { endianness } from "node:os";
import { dlopen, FFIType, read } from "bun:ffi";

export const AF_VSOCK = 40;
/** Bind to every CID this machine has. */
export const VMADDR_CID_ANY = 0xffff_ffff;
/** The local CID, for loopback where the kernel provides it. */
export const VMADDR_CID_LOCAL = 1;
/** The parent instance, seen from inside an enclave. */
export const VMADDR_CID_HOST = 2;
export const VMADDR_PORT_ANY = 0xffff_ffff;

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const MSG_NOSIGNAL = 0x4000; // a closed peer must not SIGPIPE the process
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const EINTR = 4;
export const EAGAIN = 11;
export const EINPROGRESS = 115;
export const EMFILE = 24;
export const ENFILE = 23;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  13: "EACCES",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  32: "EPIPE",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  104: "ECONNRESET",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
  115: "EINPROGRESS",
};

export type SocketAddress =
  | { family: "vsock"; cid: number; port: number }
  | { family: "unix"; path: string };

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
    getsockopt: {
      args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
      returns: FFIType.i32,
    },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    strerror: { args: [FFIType.i32], returns: FFIType.cstring },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  const errnoCell = symbols.__errno_location();
  if (errnoCell === null) throw new Error("libc returned no errno location");
  // errno is thread-local; the cell's address is stable for this JS thread.
  return { ...symbols, errno: () => read.i32(errnoCell) };
}

/** The libc bindings, opened on first use. */
export function c(): Libc {
  libc ??= openLibc();
  return libc;
}

export function sysError(what: string, errno: number, hint = ""): SocketError {
  const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
  return new SocketError(`${what}: ${code} (${String(c().strerror(errno))})${hint}`, code, errno);
}

// ------------------------------------------------------------------ addresses

const LE = endianness() === "LE";

export function encodeAddress(addr: SocketAddress): Uint8Array {
  if (addr.family === "vsock") {
    for (const [name, v] of [
      ["cid", addr.cid],
      ["port", addr.port],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
        throw new RangeError(`vsock ${name} ${v} is not a u32`);
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
  if (path.length === 0 || path.length > 107 || path.includes(0))
    throw new RangeError(`unix socket path must be 1..107 bytes without NUL: ${addr.path}`);
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
export function decodeVsockAddress(b: Uint8Array): { cid: number; port: number } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 16 || v.getUint16(0, LE) !== AF_VSOCK) return null;
  return { port: v.getUint32(4, LE), cid: v.getUint32(8, LE) };
}

export function newSocket(addr: SocketAddress): number {
  const fd = c().socket(familyCode(addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const errno = c().errno();
    const hint =
      addr.family === "vsock" && ERRNO_NAMES[errno] === "EAFNOSUPPORT"
        ? ": this kernel has no vsock support (modprobe vsock?)"
        : "";
    throw sysError(`cannot create ${addr.family} socket`, errno, hint);
  }
  return fd;
}
