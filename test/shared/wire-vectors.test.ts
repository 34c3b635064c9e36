/**
 * Pinned byte vectors of every wire format (test/vectors/*.json): each frozen
 * hex string must decode to the recorded fields and re-encode byte for byte,
 * and the envelopes and sealed shares must also open under the recorded test
 * keys. A failure here means a format changed: that needs a new version, not
 * a regenerated vector. The vectors were written once by test/vectors/generate.ts,
 * which this test never runs.
 */
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeBody, encodeBody } from "../../src/shared/wire/body.ts";
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  frameTypeName,
  RequestFrameType,
  type FrameType as FrameTypeCode,
} from "../../src/shared/wire/frame.ts";
import { fromBody, toBody } from "../../src/shared/wire/enclave-codec.ts";
import { errorBody, readErrorBody } from "../../src/shared/channel/rpc-errors.ts";
import {
  decodeList,
  encodeList,
  encodeMessageHeader,
  HEADER_LEN,
  parseMessage,
  type MessageHeader,
} from "../../src/shared/wire/protocol-message.ts";
import {
  encodeBroadcast,
  encodeEnvelopeHeader,
  encodePointToPoint,
  readUnverifiedBroadcast,
  readUnverifiedHeader,
  readUnverifiedPointToPoint,
} from "../../src/shared/wire/peer-envelope-header.ts";
import {
  encodeAssociatedData,
  encodeSealedShare,
  parseAssociatedData,
  parseSealedShare,
  SEAL_TAG_BYTES,
  type SealBinding,
} from "../../src/shared/wire/sealed-share.ts";
import { PeerMessageError, PeerSession } from "../../src/enclave/peer-envelope.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { SealError, unsealShare } from "../../src/enclave/seal.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { identityOf } from "../vectors/fixed-inputs.ts";
import {
  fromJson,
  toJson,
  typedOf,
  valueOf,
  type Json,
  type TypedValue,
} from "../vectors/vector-json.ts";

interface Case {
  description: string;
  hex: string;
  fields: Json;
  [k: string]: Json;
}
interface VectorFile {
  format: string;
  cases: Case[];
  [k: string]: Json | Case[];
}

const load = (name: string): VectorFile =>
  JSON.parse(readFileSync(join(import.meta.dirname, "../vectors", name), "utf8")) as VectorFile;
const flip = (hex: string, at: number): Uint8Array => {
  const b = fromHex(hex);
  b[at]! ^= 0x01;
  return b;
};

describe("host-enclave frame (host-enclave-frame.json)", () => {
  const v = load("host-enclave-frame.json");
  for (const c of v.cases) {
    it(c.description, () => {
      const f = c.fields as { type: string; typeCode: number; correlationId: number; body: string };
      expect(frameTypeName(f.typeCode)).toBe(f.type);
      const bytes = fromHex(c.hex);
      // Whole, and one byte at a time: the decoder must not depend on chunking.
      for (const chunks of [[bytes], [...bytes].map((b) => Uint8Array.of(b))]) {
        const decoder = new FrameDecoder();
        const frames = chunks.flatMap((chunk) => {
          const r = decoder.push(chunk);
          expect(r.error).toBeNull();
          return r.frames;
        });
        expect(
          frames.map((x) => ({
            type: x.type,
            correlationId: x.correlationId,
            body: toHex(x.body),
          })),
        ).toEqual([{ type: f.typeCode, correlationId: f.correlationId, body: f.body }]);
      }
      expect(
        toHex(
          encodeFrame({
            type: f.typeCode as FrameTypeCode,
            correlationId: f.correlationId,
            body: fromHex(f.body),
          }),
        ),
      ).toBe(c.hex);
    });
  }

  it("covers a request, an OK reply, an ERROR reply and a connection-level ERROR", () => {
    const fields = v.cases.map((c) => c.fields as { typeCode: number; correlationId: number });
    expect(fields.some((f) => f.typeCode < 0x80)).toBe(true);
    expect(fields.some((f) => f.typeCode === FrameType.OK)).toBe(true);
    expect(fields.some((f) => f.typeCode === FrameType.ERROR && f.correlationId !== 0)).toBe(true);
    expect(fields.some((f) => f.typeCode === FrameType.ERROR && f.correlationId === 0)).toBe(true);
  });
});

describe("typed-map body (enclave-body.json)", () => {
  const v = load("enclave-body.json");
  for (const c of v.cases) {
    it(c.description, () => {
      expect(typedOf(decodeBody(fromHex(c.hex)))).toEqual(c.fields);
      expect(toHex(encodeBody(valueOf(c.fields as TypedValue) as Map<string, never>))).toBe(c.hex);
    });
  }

  it("covers every value kind and both key kinds", () => {
    const text = JSON.stringify(v.cases.map((c) => c.fields));
    for (const kind of ["uint", "bytes", "string", "bool", "bytesArray", "map"])
      expect(text).toContain(`{"${kind}":`);
    expect(text).toMatch(/\[\d+,\{/); // an integer key
  });
});

describe("enclave operation bodies (enclave-ops.json)", () => {
  const v = load("enclave-ops.json");
  for (const c of v.cases) {
    it(`${c.description}`, () => {
      const body = decodeBody(fromHex(c.hex));
      if (c.frame === "ERROR") {
        const f = c.fields as { code: string; message: string; party?: number };
        expect(readErrorBody(body)).toEqual(f);
        expect(toHex(encodeBody(errorBody(f.code, f.message, f.party)))).toBe(c.hex);
        return;
      }
      expect(toJson(fromBody<object>(body))).toEqual(c.fields);
      expect(toHex(encodeBody(toBody(fromJson(c.fields) as object)))).toBe(c.hex);
    });
  }

  it("covers every request type's request and reply, each ceremony kind, and ERROR with and without a party", () => {
    const seen = new Set(v.cases.map((c) => `${c.frame} ${c.direction}`));
    for (const name of Object.keys(RequestFrameType)) {
      expect(seen).toContain(`${name} request`);
      expect(seen).toContain(`${name} reply`);
    }
    const kinds = v.cases
      .filter((c) => c.frame === "CEREMONY_START" && c.direction === "request")
      .map((c) => (c.fields as { kind: string }).kind);
    expect(kinds.sort()).toEqual(["dkg", "refresh", "sign"]);
    const errors = v.cases
      .filter((c) => c.frame === "ERROR")
      .map((c) => "party" in (c.fields as object));
    expect(errors.sort()).toEqual([false, true]);
  });
});

describe("protocol message header and list (protocol-header.json)", () => {
  const v = load("protocol-header.json");
  for (const c of v.cases) {
    it(c.description, () => {
      const bytes = fromHex(c.hex);
      if (c.description.startsWith("message list")) {
        const items = (fromJson(c.fields) as { items: Uint8Array[] }).items;
        expect(decodeList(bytes).map(toHex)).toEqual(items.map(toHex));
        expect(toHex(encodeList(items))).toBe(c.hex);
        return;
      }
      const { body, ...header } = fromJson(c.fields) as MessageHeader & { body: Uint8Array };
      const m = parseMessage(bytes);
      expect(
        toJson({
          ceremony: m.ceremony,
          phase: m.phase,
          from: m.from,
          to: m.to,
          sessionId: m.sessionId,
          body: bytes.subarray(HEADER_LEN),
        }),
      ).toEqual(c.fields);
      expect(toHex(encodeMessageHeader(header)) + toHex(body)).toBe(c.hex);
    });
  }
});

describe("peer envelope (peer-envelope.json)", () => {
  const v = load("peer-envelope.json");
  const keyRecords = (v.keys as Json[]).map(
    (k) =>
      fromJson(k) as {
        party: number;
        x25519Secret: Uint8Array;
        ed25519Secret: Uint8Array;
        x25519Public: Uint8Array;
        ed25519Public: Uint8Array;
      },
  );
  const keys = new Map(
    keyRecords.map((k) => [
      k.party,
      new PeerKeys({ x25519Secret: k.x25519Secret, ed25519Secret: k.ed25519Secret }),
    ]),
  );
  const identities = new Map([...keys].map(([party, k]) => [party, identityOf(k)]));
  const sessionId = fromHex(v.sessionId as string);
  const session = (me: number) =>
    new PeerSession({ sessionId, me, keys: keys.get(me)!, peers: identities });

  it("the recorded seeds give the recorded public keys", () => {
    for (const k of keyRecords) {
      expect(toHex(keys.get(k.party)!.x25519Public)).toBe(toHex(k.x25519Public));
      expect(toHex(keys.get(k.party)!.ed25519Public)).toBe(toHex(k.ed25519Public));
    }
  });

  for (const c of v.cases) {
    it(c.description, () => {
      const bytes = fromHex(c.hex);
      const fields = fromJson(c.fields) as { header: MessageHeader } & Record<string, Uint8Array>;
      expect(toJson(readUnverifiedHeader(bytes))).toEqual(toJson(fields.header));
      const header = encodeEnvelopeHeader(fields.header);
      expect(toHex(header)).toBe(c.hex.slice(0, 2 * HEADER_LEN));
      const recipient = c.recipient as number;
      if (c.kind === "p2p") {
        const parts = readUnverifiedPointToPoint(bytes);
        expect(
          toJson({ nonce: parts.nonce, ciphertext: parts.ciphertext, tag: parts.tag }),
        ).toEqual(toJson({ nonce: fields.nonce, ciphertext: fields.ciphertext, tag: fields.tag }));
        expect(
          toHex(
            encodePointToPoint({
              header,
              nonce: fields.nonce!,
              ciphertext: fields.ciphertext!,
              tag: fields.tag!,
            }),
          ),
        ).toBe(c.hex);
      } else {
        const parts = readUnverifiedBroadcast(bytes);
        expect(toJson({ body: parts.body, signature: parts.signature })).toEqual(
          toJson({ body: fields.body, signature: fields.signature }),
        );
        expect(
          toHex(encodeBroadcast({ header, body: fields.body!, signature: fields.signature! })),
        ).toBe(c.hex);
        // Ed25519 is deterministic, so the sender's session reproduces the envelope exactly.
        expect(toHex(session(fields.header.from).seal(fromHex(c.core as string)))).toBe(c.hex);
      }
      expect(toHex(session(recipient).open(bytes, fields.header.phase))).toBe(c.core);
      // And the recorded bytes are what authenticates: one flipped bit after the version byte is refused.
      expect(() => session(recipient).open(flip(c.hex, bytes.length - 1))).toThrow(
        PeerMessageError,
      );
    });
  }

  it("holds a point-to-point and a broadcast envelope", () => {
    expect(v.cases.map((c) => c.kind).sort()).toEqual(["broadcast", "p2p"]);
  });
});

describe("sealed share (sealed-share.json)", () => {
  const v = load("sealed-share.json");
  for (const c of v.cases) {
    it(c.description, () => {
      const binding = fromJson(c.binding!) as SealBinding;
      const dataKey = fromHex(c.dataKey as string);
      const parts = fromJson(c.fields) as {
        nonce: Uint8Array;
        ciphertext: Uint8Array;
        tag: Uint8Array;
      };
      // Layout: split and joined again byte for byte.
      expect(toJson(parseSealedShare(fromHex(c.hex)))).toEqual(c.fields);
      expect(toHex(encodeSealedShare(parts))).toBe(c.hex);
      // Associated data: encoded from the binding, and read back into it.
      expect(toHex(encodeAssociatedData(binding))).toBe(c.associatedData);
      expect(toJson(parseAssociatedData(fromHex(c.associatedData as string)))).toEqual(c.binding);
      // Cipher: AES-256-GCM under the recorded key and nonce gives exactly the recorded ciphertext and tag.
      const cipher = createCipheriv("aes-256-gcm", dataKey, parts.nonce, {
        authTagLength: SEAL_TAG_BYTES,
      });
      cipher.setAAD(fromHex(c.associatedData as string));
      expect(
        toHex(cipher.update(fromHex(c.share as string))) +
          toHex(cipher.final()) +
          toHex(cipher.getAuthTag()),
      ).toBe(toHex(parts.ciphertext) + toHex(parts.tag));
      // The enclave's unseal opens it, and refuses it under a neighbouring binding.
      expect(toHex(unsealShare({ dataKey, sealed: fromHex(c.hex), binding }))).toBe(c.share);
      expect(() =>
        unsealShare({
          dataKey,
          sealed: fromHex(c.hex),
          binding: { ...binding, generation: binding.generation ^ 1 },
        }),
      ).toThrow(SealError);
    });
  }
});

describe("the layout encoders refuse what the readers refuse", () => {
  const sid = new Uint8Array(32);
  const ok: MessageHeader = { ceremony: "sign", phase: 2, from: 1, to: 2, sessionId: sid };

  it("protocol and envelope headers", () => {
    expect(() => encodeMessageHeader(ok)).not.toThrow();
    for (const bad of [
      { phase: 0 },
      { phase: 5 },
      { phase: 1.5 },
      { from: 0 },
      { from: 17 },
      { to: 1 },
      { to: 17 },
      { to: 256 },
      { sessionId: new Uint8Array(31) },
      { ceremony: "other" },
    ]) {
      expect(() => encodeMessageHeader({ ...ok, ...bad } as MessageHeader)).toThrow();
      expect(() => encodeEnvelopeHeader({ ...ok, ...bad } as MessageHeader)).toThrow();
    }
    const p2pHeader = encodeEnvelopeHeader(ok);
    const bcastHeader = encodeEnvelopeHeader({ ...ok, to: 0 });
    const parts = {
      nonce: new Uint8Array(12),
      ciphertext: new Uint8Array(3),
      tag: new Uint8Array(16),
    };
    expect(() => encodePointToPoint({ header: bcastHeader, ...parts })).toThrow(RangeError);
    expect(() =>
      encodePointToPoint({ header: p2pHeader, ...parts, nonce: new Uint8Array(11) }),
    ).toThrow(RangeError);
    expect(() =>
      encodeBroadcast({
        header: p2pHeader,
        body: new Uint8Array(3),
        signature: new Uint8Array(64),
      }),
    ).toThrow(RangeError);
    expect(() =>
      encodeBroadcast({
        header: bcastHeader,
        body: new Uint8Array(3),
        signature: new Uint8Array(63),
      }),
    ).toThrow(RangeError);
  });

  it("sealed share and associated data", () => {
    const v = load("sealed-share.json").cases[0]!;
    const parts = fromJson(v.fields) as {
      nonce: Uint8Array;
      ciphertext: Uint8Array;
      tag: Uint8Array;
    };
    expect(() => encodeSealedShare({ ...parts, nonce: parts.nonce.subarray(1) })).toThrow();
    expect(() => encodeSealedShare({ ...parts, ciphertext: new Uint8Array() })).toThrow();
    const ad = fromHex(v.associatedData as string);
    expect(() => parseAssociatedData(new Uint8Array([...ad, 0]))).toThrow(/trailing/);
    expect(() => parseAssociatedData(ad.subarray(0, ad.length - 1))).toThrow();
    expect(() => parseSealedShare(flip(v.hex, 0))).toThrow(/version/);
  });
});
