/**
 * Host <-> enclave channel framing, version 1. The same bytes travel over
 * VSOCK (production) and a Unix socket (development, tests).
 *
 * Header (14 bytes, integers big-endian), then the body:
 *
 *   0  magic "TS" (0x54 0x53)
 *   2  version = 1
 *   3  type (FrameType)
 *   4  flags: none are defined in version 1, so every bit must be 0. A receiver
 *      rejects set bits rather than ignore them, so a future flag can never be
 *      silently misread by an old peer.
 *   5  reserved = 0
 *   6  correlation id (u32): chosen by the requester, echoed in the reply;
 *      0 is never used by a request, and marks a connection-level ERROR.
 *  10  body length (u32), at most MAX_BODY_LEN (4 MiB), checked before buffering
 *  14  body (see body.ts), exactly `body length` bytes
 *
 * A byte stream cannot be resynchronised after a malformed header, so a
 * FrameError ends the connection (the server first answers with an ERROR frame).
 */

export const FRAME_MAGIC_0 = 0x54; // "T"
export const FRAME_MAGIC_1 = 0x53; // "S"
export const FRAME_VERSION = 1;
export const FRAME_HEADER_LEN = 14;
/**
 * Hard upper bound on a body, 4 MiB; decoders and encoders may be configured
 * lower, never higher. The largest real bodies are ceremony steps: a DKG or
 * refresh phase-3 point-to-point message is ~140 KiB (143,089 bytes measured),
 * so the phase-3 reply and the phase-4 CEREMONY_STEP request of a 16-party
 * DKG carry 15 of them, ~2.1 MiB (5 parties: ~560 KiB). A sealed share grows
 * ~52 KiB per other party (210 KiB at 5 parties, ~790 KiB at 16; see
 * sealed-share.ts). 1 MiB would cap a DKG at 8 parties.
 */
export const MAX_BODY_LEN = 4 * 1024 * 1024;
export const MAX_CORRELATION_ID = 0xffff_ffff;

/**
 * Frame types. Requests (host -> enclave) live in 0x01..0x7f, replies
 * (enclave -> host) in 0x80..0xff; gaps are left for new types. A header with a
 * code missing from these tables is malformed (it ends the connection); a known
 * request type without a handler gets ERROR "unknown_type" instead.
 */
export const RequestFrameType = {
  // node housekeeping
  HEALTH: 0x01,
  ATTEST: 0x02,
  LOAD_SHARE: 0x03,
  // ceremonies
  CEREMONY_START: 0x10,
  CEREMONY_STEP: 0x11,
  CEREMONY_ABORT: 0x12,
  /** Seal a finished DKG/refresh share under a KMS data key (body carries CiphertextForRecipient). */
  SEAL_SHARE: 0x13,
  /** Make a sealed, stored share the wallet's active one. */
  ACTIVATE_SHARE: 0x14,
  /** Retire a wallet: check the approvals, wipe its share, refuse it from then on (lifecycle-retire.ts). */
  RETIRE_WALLET: 0x15,
  /** Is this node's share superseded by a share repair? The enclave checks the evidence (supersession.ts). */
  SUPERSEDED_SHARE: 0x16,
  /** A fresh single-use nonce the holders' active proofs must name (supersession.ts). */
  SUPERSESSION_NONCE: 0x17,
  /** Sign which share of a wallet is loaded now, for another enclave's nonce (active-proof.ts). */
  PROVE_ACTIVE: 0x18,
} as const;

export const ReplyFrameType = {
  /** Generic success; the body is whatever the request type defines. */
  OK: 0x80,
  /**
   * Body {code: string, message: string, party?: uint 1..16}. An ERROR frame never contains
   * secrets: the server sends only codes and sentences that were written to be
   * public (see src/shared/channel/rpc-errors.ts), never an arbitrary exception's text or any input bytes.
   */
  ERROR: 0xff,
} as const;

export const FrameType = { ...RequestFrameType, ...ReplyFrameType } as const;
export type RequestType = (typeof RequestFrameType)[keyof typeof RequestFrameType];
export type ReplyType = (typeof ReplyFrameType)[keyof typeof ReplyFrameType];
export type FrameType = RequestType | ReplyType;

const REQUESTS = new Set<number>(Object.values(RequestFrameType));
const REPLIES = new Set<number>(Object.values(ReplyFrameType));
const NAMES = new Map<number, string>(
  Object.entries(FrameType).map(([name, code]) => [code, name]),
);
// Catch a misplaced code when someone adds a type: direction is part of the code.
if (
  NAMES.size !== REQUESTS.size + REPLIES.size ||
  [...REQUESTS].some((t) => t < 0x01 || t > 0x7f) ||
  [...REPLIES].some((t) => t < 0x80 || t > 0xff)
) {
  throw new Error("frame type tables overlap or leave their ranges");
}

export function isFrameType(t: number): t is FrameType {
  return NAMES.has(t);
}

export function isRequestType(t: number): t is RequestType {
  return REQUESTS.has(t);
}

export function isReplyType(t: number): t is ReplyType {
  return REPLIES.has(t);
}

/** "HEALTH", or "0x42" for a code outside the tables: for logs and error sentences. */
export function frameTypeName(t: number): string {
  return NAMES.get(t) ?? `0x${t.toString(16).padStart(2, "0")}`;
}

export interface Frame {
  type: FrameType;
  correlationId: number;
  /** Owned by the frame: the decoder allocates a fresh buffer for every body. */
  body: Uint8Array;
}

export type FrameErrorCode =
  | "bad_magic"
  | "bad_version"
  | "unknown_frame_type"
  | "bad_flags"
  | "bad_reserved"
  | "frame_too_large"
  | "frame_timeout"
  | "decoder_failed";

/** The stream is broken: nothing more can be read from this connection. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    /** The offending frame's id when its header was readable, else 0. */
    readonly correlationId: number = 0,
  ) {
    super(message);
  }
}

function checkMaxBodyLen(maxBodyLen: number): number {
  if (!Number.isInteger(maxBodyLen) || maxBodyLen < 0 || maxBodyLen > MAX_BODY_LEN) {
    throw new RangeError(`maxBodyLen must be an integer in 0..${MAX_BODY_LEN}, got ${maxBodyLen}`);
  }
  return maxBodyLen;
}

export function encodeFrame(frame: Frame, maxBodyLen: number = MAX_BODY_LEN): Uint8Array {
  if (!(frame.body instanceof Uint8Array)) throw new TypeError("frame body must be a Uint8Array");
  checkFrame(frame.type, frame.correlationId, frame.body.length, maxBodyLen);
  const out = new Uint8Array(FRAME_HEADER_LEN + frame.body.length);
  out.set(frame.body, FRAME_HEADER_LEN);
  return writeHeader(out, frame.type, frame.correlationId);
}

/**
 * encodeFrame's bytes for a body already written after FRAME_HEADER_LEN free
 * bytes of `buffer` (body.ts encodeBodyAfter): the header is written into
 * them, the body is not copied. Returns `buffer`.
 */
export function encodeFrameAround(
  type: FrameType,
  correlationId: number,
  buffer: Uint8Array,
  maxBodyLen: number = MAX_BODY_LEN,
): Uint8Array {
  if (!(buffer instanceof Uint8Array) || buffer.length < FRAME_HEADER_LEN)
    throw new TypeError("frame buffer must be a Uint8Array with room for the header");
  checkFrame(type, correlationId, buffer.length - FRAME_HEADER_LEN, maxBodyLen);
  return writeHeader(buffer, type, correlationId);
}

function checkFrame(type: number, id: number, bodyLen: number, maxBodyLen: number): void {
  checkMaxBodyLen(maxBodyLen);
  if (!isFrameType(type))
    throw new RangeError(`cannot encode unknown frame type ${frameTypeName(type)}`);
  if (!Number.isInteger(id) || id < 0 || id > MAX_CORRELATION_ID)
    throw new RangeError(`correlation id ${id} is not a u32`);
  if (bodyLen > maxBodyLen)
    throw new RangeError(`frame body of ${bodyLen} bytes exceeds ${maxBodyLen}`);
}

/** The 14-byte header in front of the body `out` already holds. */
function writeHeader(out: Uint8Array, type: number, id: number): Uint8Array {
  const view = new DataView(out.buffer, out.byteOffset, FRAME_HEADER_LEN);
  out[0] = FRAME_MAGIC_0;
  out[1] = FRAME_MAGIC_1;
  out[2] = FRAME_VERSION;
  out[3] = type;
  out[4] = 0; // flags
  out[5] = 0; // reserved
  view.setUint32(6, id);
  view.setUint32(10, out.length - FRAME_HEADER_LEN);
  return out;
}

export interface DecodeResult {
  /** Complete frames, in stream order, found before any error. */
  frames: Frame[];
  /** Set once the stream is broken; every later push returns it again. */
  error: FrameError | null;
}

/**
 * Incremental decoder for one connection. Accepts any chunking. Memory is
 * bounded by one header plus one body of at most `maxBodyLen`: the body buffer
 * is allocated only after its announced length has passed the bound, and
 * header fields are checked as each byte arrives so garbage fails fast.
 */
export class FrameDecoder {
  readonly maxBodyLen: number;
  private readonly header = new Uint8Array(FRAME_HEADER_LEN);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private type: FrameType = FrameType.HEALTH;
  private correlationId = 0;
  private failure: FrameError | null = null;

  constructor(options: { maxBodyLen?: number } = {}) {
    this.maxBodyLen = checkMaxBodyLen(options.maxBodyLen ?? MAX_BODY_LEN);
  }

  get error(): FrameError | null {
    return this.failure;
  }

  /** True while a frame has started but not completed. */
  get partial(): boolean {
    return this.headerFill > 0;
  }

  /** The id of the frame in progress once its header got that far, else 0. */
  get partialCorrelationId(): number {
    return this.headerFill >= 10 ? this.correlationId : 0;
  }

  /** Bytes held for the frame in progress (header and body). */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  push(chunk: Uint8Array): DecodeResult {
    const frames: Frame[] = [];
    if (this.failure) return { frames, error: this.failure };
    let at = 0;
    while (at < chunk.length) {
      if (this.body === null) {
        const take = Math.min(FRAME_HEADER_LEN - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFill);
        const from = this.headerFill;
        this.headerFill += take;
        at += take;
        const err = this.checkHeader(from);
        if (err) return { frames, error: this.fail(err) };
        if (this.headerFill < FRAME_HEADER_LEN) break;
        const bodyLen = new DataView(this.header.buffer).getUint32(10);
        if (bodyLen > this.maxBodyLen) {
          return {
            frames,
            error: this.fail(
              new FrameError(
                "frame_too_large",
                `frame announces a ${bodyLen}-byte body; the limit is ${this.maxBodyLen}`,
                this.correlationId,
              ),
            ),
          };
        }
        this.body = new Uint8Array(bodyLen);
        this.bodyFill = 0;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - at);
      this.body.set(chunk.subarray(at, at + take), this.bodyFill);
      this.bodyFill += take;
      at += take;
      if (this.bodyFill === this.body.length) {
        frames.push({ type: this.type, correlationId: this.correlationId, body: this.body });
        this.body = null;
        this.bodyFill = 0;
        this.headerFill = 0;
      }
    }
    return { frames, error: null };
  }

  /** Marks the stream broken from outside, e.g. when a partial frame stalls. */
  fail(error: FrameError): FrameError {
    this.failure ??= error;
    this.body = null;
    this.bodyFill = 0;
    this.headerFill = 0;
    return this.failure;
  }

  /** Checks header bytes [from, headerFill): each field as soon as it is complete. */
  private checkHeader(from: number): FrameError | null {
    const h = this.header;
    const has = (i: number) => from <= i && i < this.headerFill;
    if ((has(0) && h[0] !== FRAME_MAGIC_0) || (has(1) && h[1] !== FRAME_MAGIC_1)) {
      return new FrameError("bad_magic", 'stream does not start a frame with the magic "TS"');
    }
    if (has(2) && h[2] !== FRAME_VERSION)
      return new FrameError(
        "bad_version",
        `unsupported frame version ${h[2]}; this side speaks ${FRAME_VERSION}`,
      );
    if (has(3)) {
      if (!isFrameType(h[3]!))
        return new FrameError("unknown_frame_type", `unknown frame type ${frameTypeName(h[3]!)}`);
      this.type = h[3] as FrameType;
    }
    if (has(4) && h[4] !== 0)
      return new FrameError("bad_flags", `unknown frame flags 0x${h[4]!.toString(16)}`);
    if (has(5) && h[5] !== 0)
      return new FrameError("bad_reserved", "reserved header byte is not 0");
    if (has(9)) this.correlationId = new DataView(h.buffer).getUint32(6);
    return null;
  }
}
