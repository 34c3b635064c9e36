/**
 * The host <-> enclave channel: framing, bodies, RPC, the Unix-socket
 * transport, the FFI socket transport (AF_UNIX end to end, AF_VSOCK
 * create/bind/listen/close and dial errors), garbage against a live server,
 * and a server in a separate process without a network.
 *
 * vsock dials in this file go to CID 1 (local) only.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BodyError,
  bodyOf,
  decodeBody,
  encodeBody,
  getBytes,
  getString,
  getUint,
  MAX_DEPTH,
  MAX_ENTRIES,
  type BodyMap,
  type BodyValue,
} from "../../src/shared/wire/body.ts";
import {
  encodeFrame,
  FRAME_HEADER_LEN,
  FrameDecoder,
  FrameError,
  FrameType,
  MAX_BODY_LEN,
  type Frame,
} from "../../src/shared/wire/frame.ts";
import { CodedError } from "../../src/shared/wire/errors.ts";
import { RpcClient } from "../../src/shared/channel/rpc-client.ts";
import {
  errorBody,
  readErrorBody,
  RpcBusyError,
  RpcError,
  RpcRemoteError,
} from "../../src/shared/channel/rpc-errors.ts";
import { RpcServer, type HandlerMap } from "../../src/shared/channel/rpc-server.ts";
import type { ChannelConnection, ChannelListener } from "../../src/shared/channel/transport.ts";
import { dialUnix, listenUnix } from "../../src/shared/channel/unix-transport.ts";
import {
  dialSocket,
  dialVsock,
  listenSocket,
  listenVsock,
  SocketError,
  VMADDR_CID_LOCAL,
  vsockSupport,
} from "../../src/shared/channel/vsock-transport.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const DIR = mkdtempSync(join(tmpdir(), "channel-test-"));
const sock = (name: string) => join(DIR, `${name}.sock`);
const listeners: ChannelListener[] = [];
const children = new Set<ChildProcess>();

afterAll(async () => {
  for (const l of listeners) await l.close();
  for (const p of children) p.kill("SIGTERM");
  rmSync(DIR, { recursive: true, force: true });
});

/** Deterministic PRNG (mulberry32) so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** toEqual walks typed arrays element by element: far too slow for megabytes. */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

const frame = (type: Frame["type"], correlationId: number, body: BodyMap): Uint8Array =>
  encodeFrame({ type, correlationId, body: encodeBody(body) });

/** The handlers every in-process test server uses. */
const echoHandlers: HandlerMap = {
  [FrameType.HEALTH]: () => bodyOf({ ok: true }),
  [FrameType.CEREMONY_STEP]: async (body) => {
    if (body.has("delay")) await Bun.sleep(getUint(body, "delay"));
    return body;
  },
  [FrameType.CEREMONY_ABORT]: (body) => {
    if (body.get("public") === true) throw new RpcError("session_closed", "session is closed");
    if (body.has("blame"))
      throw new RpcError("peer_misbehaved", "party sent a bad message", getUint(body, "blame"));
    if (body.has("mapped")) throw new TypeError(`mapped ${getUint(body, "mapped")}`);
    throw new Error("share=c0ffee secret detail");
  },
};

function startServer(
  name: string,
  options: ConstructorParameters<typeof RpcServer>[1] = {},
  maxConnections = 16,
): { server: RpcServer; path: string } {
  const path = sock(name);
  const listener = listenUnix(path, { maxConnections });
  listeners.push(listener);
  const server = new RpcServer(echoHandlers, options);
  server.serve(listener);
  return { server, path };
}

interface Probe {
  frames: Frame[];
  closed: boolean;
  /** The server must only ever send well-formed frames. */
  malformed: FrameError | null;
}

/** Sends raw bytes on a fresh connection; collects replies until close or `waitMs`. */
async function probe(path: string, bytes: Uint8Array, waitMs: number): Promise<Probe> {
  const conn = await dialUnix(path);
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let malformed: FrameError | null = null;
  const closed = await new Promise<boolean>((done) => {
    const timer = setTimeout(() => done(false), waitMs);
    conn.onData((chunk) => {
      const r = decoder.push(chunk);
      frames.push(...r.frames);
      malformed ??= r.error;
    });
    conn.onClose(() => {
      clearTimeout(timer);
      done(true);
    });
    conn.write(bytes);
  });
  conn.close();
  return { frames, closed, malformed };
}

function errorCode(f: Frame): string {
  expect(f.type).toBe(FrameType.ERROR);
  return getString(decodeBody(f.body), "code");
}

// ------------------------------------------------------------------ bodies

describe("body encoding", () => {
  const sample = (): BodyMap =>
    new Map<number | string, BodyValue>([
      ["uint", Number.MAX_SAFE_INTEGER],
      [0, 0],
      [255, "text ✓ 𝄞"],
      ["bytes", new Uint8Array([0, 1, 255])],
      ["empty", new Uint8Array(0)],
      ["yes", true],
      ["no", false],
      ["list", [new Uint8Array([1]), new Uint8Array(0), new Uint8Array(300).fill(9)]],
      ["nested", new Map([["a", new Map([["b", new Map([["c", 1]])]])]])],
      ["__proto__", "just a key"],
    ]);

  it('round-trips every value kind and keeps 1 and "1" distinct', () => {
    const m = new Map<number | string, BodyValue>([...sample(), [1, "int"], ["1", "str"]]);
    const back = decodeBody(encodeBody(m));
    expect(back).toEqual(m);
    expect(back.get(1)).toBe("int");
    expect(back.get("1")).toBe("str");
    expect(Object.getPrototypeOf(back)).toBe(Map.prototype);
  });

  it("rejects what it must not encode", () => {
    const deep = (d: number): BodyMap => (d === 0 ? new Map() : new Map([["x", deep(d - 1)]]));
    expect(() => encodeBody(deep(MAX_DEPTH - 1))).not.toThrow();
    expect(() => encodeBody(deep(MAX_DEPTH))).toThrow(/deeper/);
    expect(() =>
      encodeBody(new Map(Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => [i, 1]))),
    ).toThrow(/entries/);
    expect(() => encodeBody(bodyOf({ n: -1 }))).toThrow(/uint/);
    expect(() => encodeBody(bodyOf({ n: 1.5 }))).toThrow(/uint/);
    expect(() => encodeBody(bodyOf({ n: 2 ** 53 }))).toThrow(/uint/);
    expect(() => encodeBody(new Map([[256, 1]]))).toThrow(/integer key/);
    expect(() => encodeBody(new Map([["k".repeat(33), 1]]))).toThrow(/string key/);
    expect(() => encodeBody(bodyOf({ s: "\uD800" }))).toThrow(/surrogate/);
    expect(() => encodeBody(bodyOf({ b: new Uint8Array(100) }), 50)).toThrow(/exceeds 50/);
  });

  it("rejects malformed input: duplicates, unknown tags, bad UTF-8, big uints, truncation, trailing bytes", () => {
    const enc = encodeBody(bodyOf({ a: 1 })); // 00 01 | 01 01 'a' | 01 <u64>
    const dup = concat(new Uint8Array([0, 2]), enc.subarray(2), enc.subarray(2));
    const cases: [Uint8Array, RegExp][] = [
      [dup, /duplicate key/],
      [concat(enc, new Uint8Array([0])), /trailing/],
      [enc.subarray(0, enc.length - 1), /truncated/],
      [new Uint8Array([]), /truncated/],
      [new Uint8Array([0, 1, 0, 7, 0x09]), /unknown value tag/],
      [new Uint8Array([0, 1, 0x02, 0]), /unknown key tag/],
      [new Uint8Array([0, 1, 0, 7, 0x03, 0, 0, 0, 2, 0xc3, 0x28]), /UTF-8/],
      [new Uint8Array([0, 1, 0, 7, 0x01, 0, 0x20, 0, 0, 0, 0, 0, 0]), /2\^53/],
      [new Uint8Array([0, 65]), /entries/],
      [new Uint8Array([0, 1, 0, 7, 0x02, 0xff, 0xff, 0xff, 0xff]), /truncated/],
    ];
    for (const [bytes, re] of cases) expect(() => decodeBody(bytes), re.source).toThrow(re);
    // depth 5 on the wire
    let nested: Uint8Array = new Uint8Array([0, 0]);
    for (let d = 0; d < MAX_DEPTH; d++) nested = concat(new Uint8Array([0, 1, 0, 1, 0x07]), nested);
    expect(() => decodeBody(nested)).toThrow(/deeper/);
    expect(() => decodeBody(new Uint8Array(100), 99)).toThrow(BodyError);
  });
});

// ------------------------------------------------------------------ ERROR bodies

describe("ERROR bodies", () => {
  it("carry an optional blamed party 1..16 as a field, and sanitise what they send", () => {
    expect(readErrorBody(decodeBody(encodeBody(errorBody("bad_message", "m", 3))))).toEqual({
      code: "bad_message",
      message: "m",
      party: 3,
    });
    expect(readErrorBody(errorBody("bad_message", "m"))).toEqual({
      code: "bad_message",
      message: "m",
    });
    for (const party of [0, 17, 1.5, -1])
      expect(errorBody("x", "m", party).has("party"), String(party)).toBe(false);
    expect(errorBody("Not A Code", "m").get("code")).toBe("internal");
    expect(getString(errorBody("x", "y".repeat(600)), "message")).toHaveLength(515);
  });

  it("refuse a party field out of range or of the wrong kind", () => {
    expect(() => readErrorBody(bodyOf({ code: "x", message: "m", party: 17 }))).toThrow(/party/);
    expect(() => readErrorBody(bodyOf({ code: "x", message: "m", party: 0 }))).toThrow(/party/);
    expect(() => readErrorBody(bodyOf({ code: "x", message: "m", party: "3" }))).toThrow(BodyError);
  });

  it("arrive as RpcRemoteError, a CodedError with the party in blame", () => {
    const e = new RpcRemoteError("bad_message", "sentence", 5);
    expect(e).toBeInstanceOf(CodedError);
    expect(e.blame).toEqual({ party: 5 });
    expect(e.remoteMessage).toBe("sentence");
    expect(new RpcRemoteError("x", "m").blame).toEqual({});
  });
});

// ------------------------------------------------------------------ frames

describe("frames", () => {
  const frames = (): Frame[] => [
    { type: FrameType.HEALTH, correlationId: 1, body: encodeBody(new Map()) },
    {
      type: FrameType.CEREMONY_STEP,
      correlationId: 0xffff_ffff,
      body: encodeBody(bodyOf({ data: new Uint8Array(37).fill(5), n: 7 })),
    },
    { type: FrameType.ERROR, correlationId: 0, body: encodeBody(errorBody("bad_magic", "x")) },
    { type: FrameType.OK, correlationId: 42, body: new Uint8Array(0) },
  ];

  it("round-trips and lays out the header as documented", () => {
    const f: Frame = {
      type: FrameType.LOAD_SHARE,
      correlationId: 0x01020304,
      body: new Uint8Array([9, 8, 7]),
    };
    const bytes = encodeFrame(f);
    expect([...bytes.subarray(0, FRAME_HEADER_LEN)]).toEqual([
      0x54, 0x53, 1, 0x03, 0, 0, 1, 2, 3, 4, 0, 0, 0, 3,
    ]);
    const { frames: out, error } = new FrameDecoder().push(bytes);
    expect(error).toBeNull();
    expect(out).toEqual([f]);
  });

  it("decodes the same frames at every split point and byte by byte", () => {
    const all = frames();
    const stream = concat(...all.map((f) => encodeFrame(f)));
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const a = d.push(stream.subarray(0, cut));
      const b = d.push(stream.subarray(cut));
      expect(a.error ?? b.error).toBeNull();
      expect([...a.frames, ...b.frames]).toEqual(all);
      expect(d.partial).toBe(false);
    }
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)).frames);
    expect(got).toEqual(all);
  });

  it("rejects an oversized announced body from the header alone, allocating nothing", () => {
    const d = new FrameDecoder({ maxBodyLen: 1024 });
    const header = encodeFrame({
      type: FrameType.CEREMONY_STEP,
      correlationId: 77,
      body: new Uint8Array(1025),
    }).subarray(0, FRAME_HEADER_LEN);
    const { frames: out, error } = d.push(header);
    expect(out).toEqual([]);
    expect(error).toBeInstanceOf(FrameError);
    expect(error!.code).toBe("frame_too_large");
    expect(error!.correlationId).toBe(77);
    expect(d.bufferedBytes).toBe(0);
    // A full-size announcement against the default bound, also header only.
    const big = new Uint8Array(header);
    new DataView(big.buffer).setUint32(10, MAX_BODY_LEN + 1);
    expect(new FrameDecoder().push(big).error?.code).toBe("frame_too_large");
    expect(() => new FrameDecoder({ maxBodyLen: MAX_BODY_LEN + 1 })).toThrow(RangeError);
    expect(() =>
      encodeFrame({ type: FrameType.OK, correlationId: 1, body: new Uint8Array(1025) }, 1024),
    ).toThrow(/exceeds/);
  });

  it("names each malformed header field, failing as soon as the byte arrives", () => {
    const good = encodeFrame({ type: FrameType.HEALTH, correlationId: 5, body: new Uint8Array(2) });
    const mutate = (i: number, v: number) => {
      const b = new Uint8Array(good);
      b[i] = v;
      return b.subarray(0, i + 1); // only up to the bad byte
    };
    expect(new FrameDecoder().push(mutate(0, 0x55)).error?.code).toBe("bad_magic");
    expect(new FrameDecoder().push(mutate(1, 0x00)).error?.code).toBe("bad_magic");
    expect(new FrameDecoder().push(mutate(2, 2)).error?.code).toBe("bad_version");
    expect(new FrameDecoder().push(mutate(3, 0x7e)).error?.code).toBe("unknown_frame_type");
    expect(new FrameDecoder().push(mutate(4, 1)).error?.code).toBe("bad_flags");
    expect(new FrameDecoder().push(mutate(5, 1)).error?.code).toBe("bad_reserved");
    // Frames decoded before the error are still delivered; the decoder stays failed.
    const d = new FrameDecoder();
    const r = d.push(concat(good, new Uint8Array([0x00])));
    expect(r.frames.length).toBe(1);
    expect(r.error?.code).toBe("bad_magic");
    expect(d.push(good).frames).toEqual([]);
  });
});

// ------------------------------------------------------------------ RPC over a Unix socket

describe("rpc over a Unix socket", () => {
  let path: string;
  let server: RpcServer;
  const clients: RpcClient[] = [];
  const connect = async (opts: ConstructorParameters<typeof RpcClient>[1] = {}) => {
    const c = new RpcClient(await dialUnix(path), opts);
    clients.push(c);
    return c;
  };
  beforeAll(() => {
    ({ server, path } = startServer("rpc", { frameTimeoutMs: 300 }));
  });
  afterAll(() => {
    for (const c of clients) c.close();
  });

  it("answers HEALTH", async () => {
    const c = await connect();
    const r = await c.request(FrameType.HEALTH);
    expect(r.type).toBe(FrameType.OK);
    expect(r.body.get("ok")).toBe(true);
  });

  it("matches correlation ids for concurrent requests answered out of order", async () => {
    const c = await connect();
    const n = 12;
    const order: number[] = [];
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        c
          .request(
            FrameType.CEREMONY_STEP,
            bodyOf({ i, delay: (n - i) * 15, tag: new Uint8Array([i]) }),
          )
          .then((r) => {
            order.push(i);
            return r;
          }),
      ),
    );
    results.forEach((r, i) => {
      expect(getUint(r.body, "i")).toBe(i);
      expect(getBytes(r.body, "tag")).toEqual(new Uint8Array([i]));
    });
    expect(order).toEqual(Array.from({ length: n }, (_, i) => n - 1 - i)); // really out of order
  });

  it("times out a slow request, drops its late reply, and keeps working", async () => {
    const c = await connect({ timeoutMs: 5_000 });
    await expect(
      c.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 300 }), { timeoutMs: 80 }),
    ).rejects.toThrow(/no reply within 80 ms/);
    expect(c.inFlight).toBe(0);
    await Bun.sleep(350);
    expect(c.droppedReplies).toBe(1);
    expect((await c.request(FrameType.HEALTH)).type).toBe(FrameType.OK);
  });

  it("bounds requests in flight", async () => {
    const c = await connect({ maxInFlight: 2 });
    const a = c.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 50 }));
    const b = c.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 50 }));
    await expect(c.request(FrameType.HEALTH)).rejects.toThrow(RpcBusyError);
    await Promise.all([a, b]);
    expect((await c.request(FrameType.HEALTH)).type).toBe(FrameType.OK);
  });

  it("answers unknown types, bad bodies and handler errors with ERROR and keeps the connection", async () => {
    const c = await connect();
    await expect(c.request(FrameType.ATTEST)).rejects.toMatchObject({ code: "unknown_type" });
    await expect(
      c.request(FrameType.CEREMONY_ABORT, bodyOf({ public: true })),
    ).rejects.toMatchObject({
      code: "session_closed",
      message: "session_closed: session is closed",
    });
    const hidden = await c.request(FrameType.CEREMONY_ABORT).catch((e: unknown) => e);
    expect(hidden).toBeInstanceOf(RpcRemoteError);
    expect((hidden as RpcRemoteError).code).toBe("internal");
    expect((hidden as Error).message).not.toMatch(/c0ffee|secret/);
    // A well-framed request whose body is not a body.
    const raw = await probe(
      path,
      concat(
        encodeFrame({ type: FrameType.HEALTH, correlationId: 9, body: new Uint8Array([1, 2, 3]) }),
        frame(FrameType.HEALTH, 10, new Map()),
      ),
      300,
    );
    expect(raw.frames.map((f) => [f.correlationId, f.type])).toEqual([
      [9, FrameType.ERROR],
      [10, FrameType.OK],
    ]);
    expect(errorCode(raw.frames[0]!)).toBe("bad_body");
    expect(raw.closed).toBe(false);
    // Reply-type frames sent to the server are not requests.
    const reply = await probe(path, frame(FrameType.OK, 11, new Map()), 200);
    expect(errorCode(reply.frames[0]!)).toBe("unknown_type");
    expect((await c.request(FrameType.HEALTH)).type).toBe(FrameType.OK);
  });

  it("sends the blamed party of an RpcError or an exposeError mapping, and never of a hidden error", async () => {
    const c = await connect();
    await expect(c.request(FrameType.CEREMONY_ABORT, bodyOf({ blame: 4 }))).rejects.toMatchObject({
      code: "peer_misbehaved",
      blame: { party: 4 },
    });
    const mapping = startServer("blame", {
      exposeError: (e) =>
        e instanceof TypeError
          ? { code: "mapped", message: "public", party: Number(e.message.split(" ")[1]) }
          : null,
    });
    const m = new RpcClient(await dialUnix(mapping.path));
    clients.push(m);
    await expect(m.request(FrameType.CEREMONY_ABORT, bodyOf({ mapped: 7 }))).rejects.toMatchObject({
      code: "mapped",
      remoteMessage: "public",
      blame: { party: 7 },
    });
    // Out of range from a mapper: the party is dropped, the error still goes out.
    const out = await m
      .request(FrameType.CEREMONY_ABORT, bodyOf({ mapped: 99 }))
      .catch((e: unknown) => e);
    expect(out).toMatchObject({ code: "mapped", blame: {} });
    const hidden = await m.request(FrameType.CEREMONY_ABORT).catch((e: unknown) => e);
    expect(hidden).toMatchObject({ code: "internal", blame: {} });
  });

  it("answers a malformed header with ERROR then closes, and serves other connections", async () => {
    const c = await connect();
    const bad = await probe(path, new Uint8Array([0x54, 0x53, 9]), 1_000);
    expect(bad.closed).toBe(true);
    expect(bad.frames.length).toBe(1);
    expect(bad.frames[0]!.correlationId).toBe(0);
    expect(errorCode(bad.frames[0]!)).toBe("bad_version");
    expect((await c.request(FrameType.HEALTH)).type).toBe(FrameType.OK);
  });

  it("rejects an oversized announced body before any body byte is sent", async () => {
    const header = new Uint8Array(FRAME_HEADER_LEN);
    header.set(
      encodeFrame({
        type: FrameType.CEREMONY_STEP,
        correlationId: 31,
        body: new Uint8Array(0),
      }).subarray(0, 10),
    );
    new DataView(header.buffer).setUint32(10, 64 * 1024 * 1024);
    const r = await probe(path, header, 1_000);
    expect(r.closed).toBe(true);
    expect(r.frames[0]!.correlationId).toBe(31);
    expect(errorCode(r.frames[0]!)).toBe("frame_too_large");
  });

  it("closes a connection whose frame stalls, telling the peer why", async () => {
    const whole = frame(FrameType.CEREMONY_STEP, 12, bodyOf({ x: new Uint8Array(100) }));
    const r = await probe(path, whole.subarray(0, 50), 2_000);
    expect(r.closed).toBe(true);
    expect(r.frames[0]!.correlationId).toBe(12);
    expect(errorCode(r.frames[0]!)).toBe("frame_timeout");
  });

  it("limits handlers per connection and body size per server", async () => {
    const small = startServer("small", { maxConcurrent: 2, maxBodyLen: 1024 });
    const s = new RpcClient(await dialUnix(small.path), { timeoutMs: 5_000 });
    clients.push(s);
    const slow = [
      s.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 100 })),
      s.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 100 })),
    ];
    await expect(s.request(FrameType.HEALTH)).rejects.toMatchObject({ code: "busy" });
    await Promise.all(slow);
    // The client allows 1 MiB, this server 1 KiB: the server refuses from the header and hangs up.
    const pending = s.request(FrameType.CEREMONY_STEP, bodyOf({ delay: 200 }));
    await expect(
      s.request(FrameType.CEREMONY_STEP, bodyOf({ b: new Uint8Array(2000) })),
    ).rejects.toMatchObject({ code: "frame_too_large" });
    await expect(pending).rejects.toThrow(/closed/);
    await expect(s.request(FrameType.HEALTH)).rejects.toThrow(/closed/);
  });

  it("fails closed when the server misbehaves", async () => {
    const fake = listenUnix(sock("fake"));
    listeners.push(fake);
    const replies = [
      new Uint8Array([0x54, 0x53, 1, 0x80, 0, 1]), // reserved byte set
      frame(FrameType.HEALTH, 1, new Map()), // a request frame, from a server
      encodeFrame({ type: FrameType.OK, correlationId: 1, body: new Uint8Array([7]) }), // unreadable body
    ];
    let next = 0;
    fake.onConnection((conn) => {
      const reply = replies[next++]!;
      conn.onData(() => conn.write(reply));
    });
    const expected = [/malformed frame.*reserved/, /request frame/, /malformed body/];
    for (const re of expected) {
      const c = new RpcClient(await dialUnix(sock("fake")), { timeoutMs: 2_000 });
      await expect(c.request(FrameType.HEALTH)).rejects.toThrow(re);
      c.close();
    }
  });

  it("carries a maximum-size body", async () => {
    const c = await connect({ timeoutMs: 10_000 });
    // Largest bytes value that fits: map header, key, tag and length take 2+2+4+1+4 bytes.
    const data = randomBytes(prng(7), MAX_BODY_LEN - 13);
    const r = await c.request(FrameType.CEREMONY_STEP, bodyOf({ data }));
    expect(sameBytes(getBytes(r.body, "data"), data)).toBe(true);
    await expect(
      c.request(FrameType.CEREMONY_STEP, bodyOf({ data: new Uint8Array(MAX_BODY_LEN) })),
    ).rejects.toThrow(/exceeds/);
    expect(server.stats.protocolErrors).toBeGreaterThan(0);
  });
});

// ------------------------------------------------------------------ garbage against a live server

describe("garbage against a live server", () => {
  it("answers random and mutated input with ERROR frames or a close, and still serves HEALTH", async () => {
    const { path, server } = startServer("fuzz", { frameTimeoutMs: 250 }, 128);
    const seed = 0x5eed_c4a1;
    const rand = prng(seed);
    const cases: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const n = 1 + Math.floor(rand() ** 2 * 3000);
      const b = randomBytes(rand, n);
      // A third start with a valid magic and version so they reach the deeper checks.
      if (i % 3 === 0 && n >= 3) b.set([0x54, 0x53, 1]);
      cases.push(b);
    }
    const valid = [
      frame(FrameType.HEALTH, 1, new Map()),
      frame(
        FrameType.CEREMONY_STEP,
        2,
        bodyOf({
          data: randomBytes(rand, 64),
          n: 3,
          nested: bodyOf({ list: [new Uint8Array(4)] }),
        }),
      ),
    ];
    for (let i = 0; i < 150; i++) {
      const base = new Uint8Array(valid[i % 2]!);
      const kind = i % 5;
      if (kind <= 2) {
        for (let k = 0; k <= kind; k++)
          base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
        cases.push(base);
      } else if (kind === 3) {
        cases.push(base.subarray(0, Math.floor(rand() * base.length)));
      } else {
        cases.push(concat(base, randomBytes(rand, 1 + Math.floor(rand() * 40))));
      }
    }

    const outcomes: Probe[] = [];
    for (let i = 0; i < cases.length; i += 50) {
      outcomes.push(
        ...(await Promise.all(
          cases
            .slice(i, i + 50)
            .filter((c) => c.length > 0)
            .map((c) => probe(path, c, 700)),
        )),
      );
    }
    let closes = 0;
    for (const [i, o] of outcomes.entries()) {
      expect(o.malformed).toBeNull();
      // Never silence: something came back or the connection closed.
      expect(o.closed || o.frames.length > 0, `case ${i} (seed ${seed})`).toBe(true);
      for (const f of o.frames) expect([FrameType.OK, FrameType.ERROR]).toContain(f.type);
      // The server only closes after saying why.
      if (o.closed) {
        closes++;
        expect(o.frames.at(-1)?.type, `case ${i} (seed ${seed})`).toBe(FrameType.ERROR);
      }
    }
    expect(closes).toBeGreaterThan(300);
    const codes = new Set(
      outcomes.flatMap((o) => o.frames.filter((f) => f.type === FrameType.ERROR).map(errorCode)),
    );
    for (const code of [
      "bad_magic",
      "unknown_frame_type",
      "bad_flags",
      "frame_too_large",
      "frame_timeout",
      "bad_body",
    ])
      expect(codes, code).toContain(code);
    expect(server.stats.protocolErrors).toBe(closes);

    const c = new RpcClient(await dialUnix(path));
    expect((await c.request(FrameType.HEALTH)).body.get("ok")).toBe(true);
    c.close();
  });
});

// ------------------------------------------------------------------ another process, no network

describe("server in a separate process", () => {
  const path = sock("child");
  const canUnshare =
    process.getuid?.() === 0 && spawnSync("unshare", ["--net", "true"]).status === 0;
  if (!canUnshare)
    console.warn(
      "channel.test: not root or no working `unshare --net`: the child server runs in this network namespace",
    );

  async function startChild(): Promise<ChildProcess> {
    const args = ["run", "test/fixtures/channel-echo-server.ts", path];
    const proc = canUnshare
      ? spawn("unshare", ["--net", BUN, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] })
      : spawn(BUN, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    children.add(proc);
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`child server did not start: ${stderr}`)),
        15_000,
      );
      createInterface({ input: proc.stdout! }).on("line", (l) => {
        if (l === "ready") {
          clearTimeout(timer);
          ok();
        }
      });
      proc.on("exit", (code) => fail(new Error(`child server exited with ${code}: ${stderr}`)));
    });
    return proc;
  }

  it("serves over a Unix socket from its own process (and, as root, an empty network namespace)", async () => {
    const proc = await startChild();
    // Garbage first: the other process survives it and keeps serving.
    // (At most 12 at once: the fixture keeps the default 16-connection cap.)
    const rand = prng(99);
    const garbage = await Promise.all(
      Array.from({ length: 12 }, (_, i) => probe(path, randomBytes(rand, 1 + i * 37), 500)),
    );
    for (const g of garbage)
      expect(g.closed && g.frames.at(-1)?.type === FrameType.ERROR).toBe(true);
    const c = new RpcClient(await dialUnix(path), { timeoutMs: 10_000 });
    const health = await c.request(FrameType.HEALTH);
    expect(getUint(health.body, "pid")).not.toBe(process.pid);
    if (canUnshare) {
      expect(getString(health.body, "interfaces")).toBe("lo"); // no eth0: nothing to reach
      expect(getString(health.body, "addressed")).toBe(""); // and lo is down
    }
    const data = randomBytes(prng(3), 512 * 1024);
    const replies = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        c.request(FrameType.CEREMONY_STEP, bodyOf({ i, data, delay: (4 - i) * 20 })),
      ),
    );
    replies.forEach((r, i) => {
      expect(getUint(r.body, "i")).toBe(i);
      expect(sameBytes(getBytes(r.body, "data"), data)).toBe(true);
    });
    c.close();
    const exited = new Promise((ok) => proc.on("exit", ok));
    proc.stdin!.end(); // the fixture exits when its stdin closes
    await exited;
    children.delete(proc);
    expect(existsSync(path)).toBe(false);
  });
});

// ------------------------------------------------------------------ FFI socket transport

describe("FFI socket transport over AF_UNIX (the vsock code path without vsock loopback)", () => {
  it("interoperates with the Bun transport in both directions, large frames included", async () => {
    const ffiPath = sock("ffi");
    const ffiListener = listenSocket({ family: "unix", path: ffiPath });
    listeners.push(ffiListener);
    new RpcServer(echoHandlers).serve(ffiListener);
    const bunServer = startServer("ffi-peer");
    const pairs: [string, () => Promise<ChannelConnection>][] = [
      ["bun client -> ffi server", () => dialUnix(ffiPath)],
      ["ffi client -> bun server", () => dialSocket({ family: "unix", path: bunServer.path })],
      ["ffi client -> ffi server", () => dialSocket({ family: "unix", path: ffiPath })],
    ];
    const data = randomBytes(prng(11), MAX_BODY_LEN - 13);
    for (const [name, dial] of pairs) {
      const c = new RpcClient(await dial(), { timeoutMs: 10_000 });
      const [big, ...small] = await Promise.all([
        c.request(FrameType.CEREMONY_STEP, bodyOf({ data })),
        ...Array.from({ length: 8 }, (_, i) =>
          c.request(FrameType.CEREMONY_STEP, bodyOf({ i, delay: (8 - i) * 5 })),
        ),
      ]);
      expect(sameBytes(getBytes(big!.body, "data"), data), name).toBe(true);
      small.forEach((r, i) => expect(getUint(r.body, "i"), name).toBe(i));
      await expect(c.request(FrameType.ATTEST), name).rejects.toMatchObject({
        code: "unknown_type",
      });
      c.close();
    }
    await expect(dialSocket({ family: "unix", path: sock("nobody") })).rejects.toThrow(/ENOENT/);
  });

  it("reports a peer that goes away", async () => {
    const path = sock("ffi-gone");
    const l = listenSocket({ family: "unix", path });
    listeners.push(l);
    l.onConnection((conn) => conn.close());
    const conn = await dialSocket({ family: "unix", path });
    const c = new RpcClient(conn, { timeoutMs: 5_000 });
    await expect(c.request(FrameType.HEALTH)).rejects.toThrow(/closed/);
  });
});

const vsock = vsockSupport();
if (!vsock.available) console.warn(`channel.test: SKIPPING AF_VSOCK checks: ${vsock.reason}`);

describe.skipIf(!vsock.available)("AF_VSOCK transport", () => {
  // High ports, away from anything the machine itself may use.
  const port = 49_152 + Math.floor(Math.random() * 10_000);

  it("creates, binds, listens on and closes a vsock socket", async () => {
    const l = listenVsock(port);
    expect(l.address).toBe(`vsock:any:${port}`);
    expect(() => listenVsock(port)).toThrow(/EADDRINUSE/);
    await l.close();
    const again = listenVsock(port); // the port is free again: the descriptor really closed
    await again.close();
    const any = listenVsock(0xffff_ffff);
    expect(any.address).toMatch(/^vsock:any:\d+$/);
    await any.close();
  });

  it("fails a dial to CID 1 with a clear error instead of hanging", async () => {
    const t0 = performance.now();
    const [ours, kernels] = await Promise.all([
      dialVsock(VMADDR_CID_LOCAL, port + 1, { connectTimeoutMs: 300 }).catch((e: unknown) => e),
      dialVsock(VMADDR_CID_LOCAL, port + 2, { connectTimeoutMs: 8_000 }).catch((e: unknown) => e),
    ]);
    expect(ours).toBeInstanceOf(SocketError);
    expect((ours as Error).message).toMatch(/vsock:1:\d+: no answer within 300 ms/);
    // Without vsock loopback the kernel gives up by itself (about 2 s); with it, nothing listens there.
    expect(kernels).toBeInstanceOf(SocketError);
    expect([
      "ETIMEDOUT",
      "ECONNRESET",
      "ECONNREFUSED",
      "ENODEV",
      "EHOSTUNREACH",
      "ENETUNREACH",
    ]).toContain((kernels as SocketError).code);
    expect((kernels as Error).message).toMatch(/is the enclave running/);
    expect(performance.now() - t0).toBeLessThan(8_000);
  });
});
