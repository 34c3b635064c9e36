/**
 * Typed API over the DKLs23 wasm core. Used inside the enclave (and by the
 * in-process runner for tests, demo and benchmarks). Secret state never
 * leaves the wasm instance except as `KeyShare.toBytes()`, which is meant
 * only for sealing inside the enclave.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as wasm from "./wasm/dkls23.js";
import {
  decodeList,
  encodeList,
  parseMessage,
  SESSION_ID_LEN,
  type ProtocolMessage,
} from "../../shared/wire/protocol-message.ts";
import type { Signature } from "../../shared/signature.ts";

export type ErrorCode =
  | "invalid_parameters"
  | "malformed_message"
  | "unexpected_message"
  | "protocol_abort"
  | "invalid_share"
  | "derivation"
  | "session_closed";

/** A failure reported by the core: what went wrong and, where known, whom to blame. */
export class DklsError extends Error {
  override name = "DklsError";
  constructor(
    message: string,
    readonly code: ErrorCode,
    /** Party whose message or behaviour caused it, when the core can tell. */
    readonly party: number | null,
    /** The library requires this party be excluded from future sessions. */
    readonly ban: boolean,
  ) {
    super(message);
  }
}

let loaded = false;

/**
 * Instantiates the wasm module once. `bytes` lets a compiled binary pass the
 * module it embeds; by default it is read from beside this file.
 */
export function loadDkls(bytes?: Uint8Array): void {
  if (loaded) return;
  const module = bytes ?? readFileSync(fileURLToPath(new URL("./wasm/dkls23_bg.wasm", import.meta.url)));
  wasm.initSync({ module });
  if (wasm.wireVersion() !== 1) throw new Error(`wasm core speaks wire version ${wasm.wireVersion()}, expected 1`);
  loaded = true;
}

function call<T>(f: () => T): T {
  if (!loaded) loadDkls();
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && typeof (e as { code?: unknown }).code === "string") {
      const x = e as Error & { code: ErrorCode; party: number | null; ban: boolean };
      throw new DklsError(x.message, x.code, x.party ?? null, Boolean(x.ban));
    }
    if (e instanceof WebAssembly.RuntimeError) {
      // A trap means a bug in the core; the instance can no longer be trusted.
      loaded = false;
      throw new Error(`dkls23 wasm core trapped: ${e.message}`);
    }
    throw e;
  }
}

function checkSession(id: Uint8Array): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== SESSION_ID_LEN) {
    throw new DklsError(`session id must be ${SESSION_ID_LEN} bytes`, "invalid_parameters", null, false);
  }
  return id;
}

function messages(list: Uint8Array): ProtocolMessage[] {
  return decodeList(list).map((b) => parseMessage(b.slice()));
}

function inbox(received: readonly (ProtocolMessage | Uint8Array)[]): Uint8Array {
  return encodeList(received.map((m) => (m instanceof Uint8Array ? m : m.bytes)));
}

export interface PackageInfo {
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  threshold: number;
  parties: number;
  generation: number;
}

/** One party's key share, held inside the wasm instance. */
export class KeyShare {
  private constructor(private inner: wasm.KeyShare | null) {}

  /** @internal */
  static wrap(inner: wasm.KeyShare): KeyShare {
    return new KeyShare(inner);
  }

  /** Parses, bounds-checks and validates opaque share bytes. The input is wiped. */
  static fromBytes(bytes: Uint8Array): KeyShare {
    try {
      return new KeyShare(call(() => wasm.KeyShare.fromBytes(bytes)));
    } finally {
      bytes.fill(0);
    }
  }

  private get h(): wasm.KeyShare {
    if (!this.inner) throw new DklsError("key share was freed", "session_closed", null, false);
    return this.inner;
  }

  /** @internal */
  get handle(): wasm.KeyShare {
    return this.h;
  }

  /** Opaque bytes for sealing inside the enclave. Wipe them after use. */
  toBytes(): Uint8Array {
    return call(() => this.h.toBytes());
  }

  get index(): number {
    return this.h.index;
  }
  get threshold(): number {
    return this.h.threshold;
  }
  get parties(): number {
    return this.h.shareCount;
  }
  get generation(): number {
    return this.h.generation;
  }
  /** Compressed SEC1 group public key (33 bytes). */
  get publicKey(): Uint8Array {
    return this.h.publicKey();
  }
  /** Public package: group key, all verifying shares, t, n, chain code, generation. */
  publicPackage(): Uint8Array {
    return call(() => this.h.publicPackage());
  }
  /** Non-hardened BIP-32 child share (e.g. "m/0/7"). */
  derive(path: string): KeyShare {
    return new KeyShare(call(() => this.h.derive(path)));
  }
  /** Zeroizes and releases the share inside wasm. */
  free(): void {
    this.inner?.free();
    this.inner = null;
  }
}

interface Phased<Final> {
  phase1(): ProtocolMessage[];
  phase2(received: readonly (ProtocolMessage | Uint8Array)[]): ProtocolMessage[];
  phase3(received: readonly (ProtocolMessage | Uint8Array)[]): ProtocolMessage[];
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): Final;
  close(): void;
}

type RawSession = {
  phase1(): Uint8Array;
  phase2(i: Uint8Array): Uint8Array;
  phase3(i: Uint8Array): Uint8Array;
  close(): void;
  free(): void;
};

abstract class Session<Raw extends RawSession, Final> implements Phased<Final> {
  protected raw: Raw | null;
  constructor(raw: Raw) {
    this.raw = raw;
  }
  protected get r(): Raw {
    if (!this.raw) throw new DklsError("session is closed", "session_closed", null, false);
    return this.raw;
  }
  phase1(): ProtocolMessage[] {
    return messages(this.guard(() => this.r.phase1()));
  }
  phase2(received: readonly (ProtocolMessage | Uint8Array)[]): ProtocolMessage[] {
    return messages(this.guard(() => this.r.phase2(inbox(received))));
  }
  phase3(received: readonly (ProtocolMessage | Uint8Array)[]): ProtocolMessage[] {
    return messages(this.guard(() => this.r.phase3(inbox(received))));
  }
  abstract phase4(received: readonly (ProtocolMessage | Uint8Array)[]): Final;
  /** Drops all keep-state (zeroized in wasm). Safe to call more than once. */
  close(): void {
    if (this.raw) {
      this.raw.close();
      this.raw.free();
      this.raw = null;
    }
  }
  /** Fail closed: any error frees the session for good. */
  protected guard<T>(f: () => T): T {
    try {
      return call(f);
    } catch (e) {
      this.close();
      throw e;
    }
  }
}

export interface DkgOptions {
  threshold: number;
  parties: number;
  /** This party's index, 1..parties. */
  index: number;
  sessionId: Uint8Array;
}

export class Dkg extends Session<wasm.DkgSession, KeyShare> {
  constructor(o: DkgOptions) {
    super(call(() => new wasm.DkgSession(o.threshold, o.parties, o.index, checkSession(o.sessionId))));
  }
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): KeyShare {
    const share = KeyShare.wrap(this.guard(() => this.r.phase4(inbox(received))));
    this.close();
    return share;
  }
}

export interface SignOptions {
  share: KeyShare;
  sessionId: Uint8Array;
  /** All t signers, including this one. */
  parties: readonly number[];
  /** The 32-byte message digest to sign. */
  digest: Uint8Array;
  /** Optional non-hardened BIP-32 path; all signers must use the same. */
  path?: string;
}

export class Signing extends Session<wasm.SignSession, Signature> {
  constructor(o: SignOptions) {
    const parties = Uint8Array.from([...o.parties].sort((a, b) => a - b));
    super(call(() => new wasm.SignSession(o.share.handle, o.path ?? null, checkSession(o.sessionId), parties, o.digest)));
  }
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): Signature {
    const out = this.guard(() => this.r.phase4(inbox(received)));
    this.close();
    return { r: out.slice(0, 32), s: out.slice(32, 64), recoveryId: out[64]! };
  }
}

export class Refresh extends Session<wasm.RefreshSession, KeyShare> {
  constructor(o: { share: KeyShare; sessionId: Uint8Array }) {
    super(call(() => new wasm.RefreshSession(o.share.handle, checkSession(o.sessionId))));
  }
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): KeyShare {
    const share = KeyShare.wrap(this.guard(() => this.r.phase4(inbox(received))));
    this.close();
    return share;
  }
}

export function packageInfo(publicPackage: Uint8Array): PackageInfo {
  const b = call(() => wasm.packageInfo(publicPackage));
  return {
    publicKey: b.slice(0, 33),
    chainCode: b.slice(33, 65),
    threshold: b[65]!,
    parties: b[66]!,
    generation: new DataView(b.buffer, b.byteOffset).getUint32(67),
  };
}

/** Child public key and chain code along a non-hardened path, from public data only. */
export function derivePublicKey(publicPackage: Uint8Array, path: string): { publicKey: Uint8Array; chainCode: Uint8Array } {
  const b = call(() => wasm.derivePublic(publicPackage, path));
  return { publicKey: b.slice(0, 33), chainCode: b.slice(33, 65) };
}

/** EIP-55 checksummed Ethereum address of a compressed or uncompressed key. */
export function ethAddress(publicKey: Uint8Array): string {
  return call(() => wasm.ethAddress(publicKey));
}
