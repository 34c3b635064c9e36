/**
 * The three ceremonies as phased sessions over the core: each phase takes
 * the messages received for it and returns the outgoing ones; the last
 * returns the result. Any error closes the session for good (fail closed).
 */
import * as wasm from "./wasm/dkls23.js";
import {
  decodeList,
  encodeList,
  parseMessage,
  SESSION_ID_LEN,
  type ProtocolMessage,
} from "../../shared/wire/protocol-message.ts";
import type { Signature } from "../../shared/signature.ts";
import { call } from "./core.ts";
import { DklsError } from "./errors.ts";
import { KeyShare } from "./key-share.ts";

function checkSession(id: Uint8Array): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== SESSION_ID_LEN) {
    throw new DklsError(
      `session id must be ${SESSION_ID_LEN} bytes`,
      "invalid_parameters",
      null,
      false,
    );
  }
  return id;
}

function messages(list: Uint8Array): ProtocolMessage[] {
  return decodeList(list).map((b) => parseMessage(b.slice()));
}

function inbox(received: readonly (ProtocolMessage | Uint8Array)[]): Uint8Array {
  return encodeList(received.map((m) => (m instanceof Uint8Array ? m : m.bytes)));
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
    super(
      call(() => new wasm.DkgSession(o.threshold, o.parties, o.index, checkSession(o.sessionId))),
    );
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
    super(
      call(
        () =>
          new wasm.SignSession(
            o.share.handle,
            o.path ?? null,
            checkSession(o.sessionId),
            parties,
            o.digest,
          ),
      ),
    );
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
  /** @internal A session the core built another way (a repaired share's; see lifecycle.ts). */
  static fromRaw(raw: wasm.RefreshSession): Refresh {
    const r: Refresh = Object.create(Refresh.prototype);
    r.raw = raw;
    return r;
  }
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): KeyShare {
    const share = KeyShare.wrap(this.guard(() => this.r.phase4(inbox(received))));
    this.close();
    return share;
  }
}

export interface ReshareOptions {
  /** A dealer's old share (it must belong to exactly `publicPackage`); absent at a new-only party. */
  share?: KeyShare;
  /** The wallet's old public package, as this party trusts it (lifecycle-reshare.ts says from where). */
  publicPackage: Uint8Array;
  /** The dealers' old indices, increasing, at least the old threshold. */
  dealers: readonly number[];
  /** Each dealer's index in the new committee (same order). */
  seats: readonly number[];
  /** The new committee's threshold and size. */
  threshold: number;
  parties: number;
  /** This party's index in the new committee. */
  index: number;
  sessionId: Uint8Array;
}

/**
 * Resharing to a new committee (docs/RESHARING.md, ceremony code 6): the
 * dealers deal at phase 1, every new party verifies and runs the DKG's
 * phases 2-4; phase 4 yields this party's share of the new sharing (same key
 * and chain code, generation old + 1).
 */
export class Reshare extends Session<wasm.ReshareSession, KeyShare> {
  constructor(o: ReshareOptions) {
    const dealers = Uint8Array.from(o.dealers);
    const seats = Uint8Array.from(o.seats);
    const session = checkSession(o.sessionId);
    super(
      call(() =>
        o.share
          ? wasm.ReshareSession.dealer(
              o.share.handle,
              o.publicPackage,
              dealers,
              seats,
              o.threshold,
              o.parties,
              o.index,
              session,
            )
          : wasm.ReshareSession.receiver(
              o.publicPackage,
              dealers,
              seats,
              o.threshold,
              o.parties,
              o.index,
              session,
            ),
      ),
    );
  }
  phase4(received: readonly (ProtocolMessage | Uint8Array)[]): KeyShare {
    const share = KeyShare.wrap(this.guard(() => this.r.phase4(inbox(received))));
    this.close();
    return share;
  }
}
