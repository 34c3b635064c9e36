/**
 * Production path: ask the real Nitro Security Module for an attestation document
 * through /dev/nsm. Only works inside a Nitro Enclave; everywhere else it throws
 * NsmUnavailableError (development enclaves run src/dev/enclave-main.ts, with a
 * simulated NSM).
 *
 * The kernel driver (drivers/misc/nsm.c, uapi linux/nsm.h) takes one ioctl,
 * NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw), where nsm_raw is two iovecs
 * {request, response} of {u64 addr, u64 len}; the driver rewrites response.len with
 * the size of the CBOR reply. Request and reply are CBOR in the NSM API's encoding:
 *   {"Attestation": {"user_data": bstr|null, "nonce": bstr|null, "public_key": bstr|null}}
 *   -> {"Attestation": {"document": bstr}} or {"Error": text}
 */
import { existsSync } from "node:fs";
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { CborError, decodeCbor, encodeCbor, MAX_USER_FIELD_BYTES, type Cbor } from "./cose.ts";
import type { AttestRequest } from "./nsm.ts";

export const NSM_DEVICE = "/dev/nsm";
const NSM_REQUEST_MAX_SIZE = 0x1000;
const NSM_RESPONSE_MAX_SIZE = 0x3000;
/** _IOWR(0x0A, 0, 32-byte struct) = (3 << 30) | (32 << 16) | (0x0A << 8) | 0. */
const NSM_IOCTL_RAW = 0xc0200a00;
const O_RDWR = 2;

export class NsmUnavailableError extends Error {
  override name = "NsmUnavailableError";
}

export class NsmRequestError extends Error {
  override name = "NsmRequestError";
}

/** Requests a signed attestation document from the NSM. Synchronous, like the ioctl. */
export function requestNsmAttestation(
  req: AttestRequest = {},
  device: string = NSM_DEVICE,
): Uint8Array {
  if (!existsSync(device)) {
    throw new NsmUnavailableError(
      `${device} does not exist: not running inside an AWS Nitro Enclave`,
    );
  }
  const request = encodeCbor(
    new Map([
      [
        "Attestation",
        new Map<string, Cbor>([
          ["user_data", field(req.userData, "userData")],
          ["nonce", field(req.nonce, "nonce")],
          ["public_key", field(req.publicKey, "publicKey")],
        ]),
      ],
    ]),
  );
  if (request.length > NSM_REQUEST_MAX_SIZE)
    throw new NsmRequestError(
      `NSM request of ${request.length} bytes exceeds ${NSM_REQUEST_MAX_SIZE}`,
    );
  return parseResponse(rawIoctl(device, request));
}

function field(v: Uint8Array | undefined, name: string): Uint8Array | null {
  if (v === undefined) return null;
  if (v.length > MAX_USER_FIELD_BYTES)
    throw new NsmRequestError(`${name} of ${v.length} bytes exceeds ${MAX_USER_FIELD_BYTES}`);
  return v;
}

function rawIoctl(device: string, request: Uint8Array): Uint8Array {
  // Enclave images are often Alpine (musl); everything else here is glibc.
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  const libcName = existsSync(`/lib/ld-musl-${arch}.so.1`) ? `libc.musl-${arch}.so.1` : "libc.so.6";
  const libc = dlopen(libcName, {
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  const errno = () => {
    const p = libc.symbols.__errno_location();
    return p === null ? -1 : read.i32(p);
  };
  try {
    const path = new TextEncoder().encode(`${device}\0`);
    const fd = libc.symbols.open(ptr(path), O_RDWR);
    if (fd < 0) throw new NsmUnavailableError(`cannot open ${device} (errno ${errno()})`);
    try {
      const response = new Uint8Array(NSM_RESPONSE_MAX_SIZE);
      const msg = new BigUint64Array([
        BigInt(ptr(request)),
        BigInt(request.length),
        BigInt(ptr(response)),
        BigInt(response.length),
      ]);
      if (libc.symbols.ioctl(fd, NSM_IOCTL_RAW, ptr(msg)) !== 0)
        throw new NsmRequestError(`NSM ioctl failed (errno ${errno()})`);
      const len = Number(msg[3]);
      if (len > response.length)
        throw new NsmRequestError(
          `NSM reported a ${len}-byte reply for a ${response.length}-byte buffer`,
        );
      return response.slice(0, len);
    } finally {
      libc.symbols.close(fd);
    }
  } finally {
    libc.close();
  }
}

function parseResponse(bytes: Uint8Array): Uint8Array {
  let r: Cbor;
  try {
    r = decodeCbor(bytes);
  } catch (e) {
    if (e instanceof CborError)
      throw new NsmRequestError(`NSM reply is not valid CBOR: ${e.message}`);
    throw e;
  }
  if (r instanceof Map && typeof r.get("Error") === "string")
    throw new NsmRequestError(`NSM refused the request: ${r.get("Error") as string}`);
  const att = r instanceof Map ? r.get("Attestation") : undefined;
  const doc = att instanceof Map ? att.get("document") : undefined;
  if (!(doc instanceof Uint8Array))
    throw new NsmRequestError("NSM reply carries no attestation document");
  return doc;
}
