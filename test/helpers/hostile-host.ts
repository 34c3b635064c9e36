/**
 * A hostile host double for tests: it talks to a real enclave process over
 * the channel's raw frames, so it can send any frame a compromised host could
 * (extra fields the typed client would never put in, replays, raw header
 * bytes) and it keeps every byte the enclave sent it, for byte searches.
 *
 * Also the test's own omniscient view, which no host has: the KMS stand-in's
 * key material read from its data dir, so a test can learn the plaintext data
 * key behind a CiphertextBlob and the plaintext share behind a sealed share,
 * and then search what the host received for them.
 */
import { p384 } from "@noble/curves/nist.js";
import { decodeAttestationDocument } from "../../src/attestation/cose.ts";
import {
  LEAF_NAME,
  issueDevelopmentCertificate,
  type DevelopmentPki,
} from "../../src/dev/dev-pki.ts";
import { openBlob } from "../../src/devkms/ciphertext-blob.ts";
import { KeyStore } from "../../src/devkms/keystore.ts";
import { KU_DIGITAL_SIGNATURE } from "../../src/attestation/verifier.ts";
import { shareEncryptionContext } from "../../src/enclave/share-sealing.ts";
import { unsealShare } from "../../src/enclave/seal.ts";
import { readErrorBody, type PublicError } from "../../src/shared/channel/rpc-errors.ts";
import type { ChannelConnection } from "../../src/shared/channel/transport.ts";
import { dialUnix } from "../../src/shared/channel/unix-transport.ts";
import { decodeBody, encodeBody, type BodyMap } from "../../src/shared/wire/body.ts";
import { fromBody, toBody } from "../../src/shared/wire/enclave-codec.ts";
import {
  encodeFrame,
  FrameDecoder,
  FrameType,
  type Frame,
  type RequestType,
} from "../../src/shared/wire/frame.ts";
import type {
  KmsCredentialFields,
  LoadShareRequest,
  SealShareReply,
} from "../../src/shared/wire/enclave-ops.ts";
import type { SealBinding } from "../../src/shared/wire/sealed-share.ts";

/** One reply as it arrived: the raw body bytes, and its decoded map. */
export interface RawReply {
  type: number;
  correlationId: number;
  body: Uint8Array;
  map: BodyMap;
}

export class HostileHost {
  /** Every chunk the enclave sent on this connection, copied. */
  readonly received: Uint8Array[] = [];
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (f: Frame) => void>();
  /** Connection-level replies (correlation id 0) and replies nobody waited for. */
  readonly unsolicited: RawReply[] = [];
  private nextId = 1;
  private closedResolve!: () => void;
  /** Resolves when the enclave (or this side) closed the connection. */
  readonly closed = new Promise<void>((r) => {
    this.closedResolve = r;
  });

  private constructor(private readonly conn: ChannelConnection) {
    conn.onData((chunk) => {
      this.received.push(chunk.slice());
      const { frames } = this.decoder.push(chunk);
      for (const f of frames) {
        const w = this.waiting.get(f.correlationId);
        this.waiting.delete(f.correlationId);
        if (w) w(f);
        else this.unsolicited.push(rawReply(f));
      }
    });
    conn.onClose(() => this.closedResolve());
  }

  static async connect(socketPath: string): Promise<HostileHost> {
    return new HostileHost(await dialUnix(socketPath));
  }

  get isClosed(): boolean {
    return this.conn.closed;
  }

  /** Sends `body` (an object, a body map, or raw body bytes) as a `type` request; the reply as it arrived. */
  send(
    type: RequestType,
    body: object | BodyMap | Uint8Array = new Map(),
    timeoutMs = 60_000,
  ): Promise<RawReply> {
    const id = this.nextId++;
    const bytes =
      body instanceof Uint8Array
        ? body
        : encodeBody(body instanceof Map ? (body as BodyMap) : toBody(body));
    const reply = new Promise<RawReply>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no reply to #${id} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.set(id, (f) => {
        clearTimeout(t);
        resolve(rawReply(f));
      });
    });
    this.conn.write(encodeFrame({ type, correlationId: id, body: bytes }));
    return reply;
  }

  /** Writes arbitrary bytes: frames the encoder would refuse to build. */
  writeRaw(bytes: Uint8Array): void {
    this.conn.write(bytes);
  }

  close(): void {
    this.conn.close();
  }
}

/** A reply frame with its body decoded (a body that does not decode yields an empty map). */
export function rawReply(f: Frame): RawReply {
  let map: BodyMap = new Map();
  try {
    map = decodeBody(f.body);
  } catch {
    // left empty: the test compares raw bytes anyway
  }
  return { type: f.type, correlationId: f.correlationId, body: f.body, map };
}

/** The OK reply's fields; fails with the enclave's error otherwise. */
export function okBody<T>(r: RawReply): T {
  if (r.type !== FrameType.OK) {
    const e = readErrorBody(r.map);
    throw new Error(`expected OK, got ERROR ${e.code}: ${e.message}`);
  }
  return fromBody<T>(r.map);
}

/** The ERROR reply's fields; fails on an OK reply. */
export function errorBodyOf(r: RawReply): PublicError {
  if (r.type !== FrameType.ERROR) throw new Error(`expected ERROR, got frame type ${r.type}`);
  return readErrorBody(r.map);
}

/** The string keys of a reply body, sorted: what a test compares with the documented fields. */
export const keysOf = (r: RawReply): string[] => [...r.map.keys()].map(String).sort();

/** The LOAD_SHARE that hands back what SEAL_SHARE returned, with the fields in `over` substituted. */
export function loadShareRequest(
  s: SealShareReply,
  walletId: string,
  credentials: KmsCredentialFields,
  over: Partial<LoadShareRequest> = {},
): LoadShareRequest {
  return {
    walletId,
    partyIndex: s.partyIndex,
    generation: s.generation,
    publicKey: s.publicKey,
    sealed: s.sealed,
    ciphertextBlob: s.ciphertextBlob,
    ...credentials,
    ...over,
  };
}

/** A copy of `b` with byte `at` XORed with `mask`. */
export function flipByte(b: Uint8Array, at: number, mask = 0x01): Uint8Array {
  const c = b.slice();
  c[at]! ^= mask;
  return c;
}

/** Whether `needle` occurs anywhere in `haystack`. */
export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(
    Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength),
  );
}

/**
 * Every `width`-byte window of `secret` starting at a multiple of `stride`,
 * and the last one: a leak of the secret, whole or a stretch of at least
 * stride + width bytes, contains at least one of them.
 */
export function windowsOf(secret: Uint8Array, width: number, stride: number): Uint8Array[] {
  if (secret.length <= width) return [secret];
  const out: Uint8Array[] = [];
  for (let at = 0; at + width <= secret.length; at += stride)
    out.push(secret.subarray(at, at + width));
  out.push(secret.subarray(secret.length - width));
  return out;
}

/**
 * What only the test knows: the KMS stand-in's key material, read from its
 * data dir. With it the test opens a CiphertextBlob (the plaintext data key)
 * and then the sealed share (the plaintext share), to search for them.
 */
export class KmsOracle {
  private readonly material: Uint8Array;

  constructor(devKmsDataDir: string, keyId: string) {
    const key = KeyStore.open(devKmsDataDir).get(keyId);
    if (!key) throw new Error(`the KMS stand-in holds no key ${keyId}`);
    this.material = key.material;
  }

  dataKey(ciphertextBlob: Uint8Array, binding: SealBinding): Uint8Array {
    const ctx = new Map(Object.entries(shareEncryptionContext(binding)));
    return openBlob(ciphertextBlob, this.material, ctx);
  }

  share(sealed: Uint8Array, ciphertextBlob: Uint8Array, binding: SealBinding): Uint8Array {
    return unsealShare({ dataKey: this.dataKey(ciphertextBlob, binding), sealed, binding });
  }
}

/** A PKI whose one certificate is a self-signed leaf: a document signed by it chains to nothing trusted. */
export function selfSignedPki(): DevelopmentPki {
  const key = p384.utils.randomSecretKey();
  const now = Math.floor(Date.now() / 1000) * 1000;
  const der = issueDevelopmentCertificate({
    subject: LEAF_NAME,
    issuer: LEAF_NAME,
    subjectKey: key,
    issuerKey: key,
    notBefore: now - 60_000,
    notAfter: now + 3_600_000,
    ca: undefined,
    keyUsage: KU_DIGITAL_SIGNATURE,
  });
  const entity = { der, privateKey: key };
  return { root: entity, intermediate: entity, leaf: entity };
}

/** A document's user_data, as its payload carries it (unverified: tests only). */
export function userDataOfUnverified(document: Uint8Array): Uint8Array {
  const u = decodeAttestationDocument(document).document.userData;
  if (!u) throw new Error("document has no user_data");
  return u;
}
