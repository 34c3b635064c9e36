/**
 * Key lifecycle over the core beyond DKG, signing and refresh:
 *
 *   rekey            split an existing secret key (and optional BIP-32 chain
 *                    code) into a t-of-n sharing, as a trusted dealer
 *   repairTerm       one holder's secret term towards a lost party's share
 *   repairAssemble   the new holder's assembly of >= t terms into a HollowShare
 *   Refresh.fromHollow (below: refreshFromHollow) the complete refresh that
 *                    makes a hollow share a signing one
 *
 * Both re-keyed and repaired shares must go through a complete refresh
 * across all n holders at once: the dealer of a re-key saw every share, and
 * the lost holder of a repaired index may keep its old share. After the
 * refresh neither combines with a current share.
 */
import * as wasm from "./wasm/dkls23.js";
import { decodeList, encodeList, SESSION_ID_LEN } from "../../shared/wire/protocol-message.ts";
import { call } from "./core.ts";
import { DklsError } from "./errors.ts";
import { KeyShare } from "./key-share.ts";
import { Refresh } from "./sessions.ts";

/** Length of a secp256k1 secret key and of a BIP-32 chain code. */
export const SECRET_KEY_LEN = 32;
export const CHAIN_CODE_LEN = 32;

function invalid(message: string): DklsError {
  return new DklsError(message, "invalid_parameters", null, false);
}

function checkId(id: Uint8Array, what: string): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== SESSION_ID_LEN)
    throw invalid(`${what} must be ${SESSION_ID_LEN} bytes`);
  return id;
}

export interface RekeyOptions {
  threshold: number;
  parties: number;
  /** Big-endian secret key in 1..n-1. Wiped by rekey, whatever the outcome. */
  secretKey: Uint8Array;
  /** The key's BIP-32 chain code, if it has one; wiped too. Without it one is drawn. */
  chainCode?: Uint8Array;
  sessionId: Uint8Array;
}

/**
 * The shares of `secretKey`, in party order (share k has index k + 1), at
 * generation 0. Every share is secret and known to this dealer: hand each to
 * its holder over the end-to-end channel, free the rest, then refresh.
 */
export function rekey(o: RekeyOptions): KeyShare[] {
  const wipe = () => {
    o.secretKey.fill(0);
    o.chainCode?.fill(0);
  };
  try {
    checkId(o.sessionId, "session id");
    if (o.secretKey.length !== SECRET_KEY_LEN) throw invalid("secret key must be 32 bytes");
    if (o.chainCode !== undefined && o.chainCode.length !== CHAIN_CODE_LEN)
      throw invalid("chain code must be 32 bytes");
    // wasm-bindgen copies the arguments into the instance, which wipes its copies.
    const list = call(() =>
      wasm.rekey(o.threshold, o.parties, o.secretKey, o.chainCode ?? undefined, o.sessionId),
    );
    try {
      const shares: KeyShare[] = [];
      try {
        for (const bytes of decodeList(list)) shares.push(KeyShare.fromBytes(bytes.slice()));
      } catch (e) {
        for (const s of shares) s.free();
        throw e;
      }
      return shares;
    } finally {
      list.fill(0);
    }
  } finally {
    wipe();
  }
}

export interface RepairRequest {
  /** The sorted, distinct helper indices (>= t, not the target). */
  helpers: readonly number[];
  /** The party index being rebuilt. */
  target: number;
  /** The repair ceremony's 32-byte id; every helper and the target use the same. */
  repairId: Uint8Array;
}

/** This holder's secret term for the target: send it to the target's enclave only, then wipe it. */
export function repairTerm(share: KeyShare, r: RepairRequest): Uint8Array {
  const helpers = Uint8Array.from(r.helpers);
  return call(() =>
    wasm.repairTerm(share.handle, helpers, r.target, checkId(r.repairId, "repair id")),
  );
}

/**
 * A repaired share: right secret, right key, no signing state. It cannot be
 * sealed or sign; its one use is `refreshFromHollow`. Free it if the refresh
 * does not start.
 */
export class HollowShare {
  private constructor(private inner: wasm.HollowShare | null) {}

  /** @internal */
  static wrap(inner: wasm.HollowShare): HollowShare {
    return new HollowShare(inner);
  }

  private get h(): wasm.HollowShare {
    if (!this.inner)
      throw new DklsError("hollow share was used or freed", "session_closed", null, false);
    return this.inner;
  }
  get index(): number {
    return this.h.index;
  }
  get generation(): number {
    return this.h.generation;
  }
  get publicKey(): Uint8Array {
    return this.h.publicKey();
  }
  /** @internal Hands the wasm object over (it is consumed by the refresh). */
  take(): wasm.HollowShare {
    const h = this.h;
    this.inner = null;
    return h;
  }
  free(): void {
    this.inner?.free();
    this.inner = null;
  }
}

export interface RepairAssembly {
  /** The wallet's current public package, from a source this enclave verified. */
  publicPackage: Uint8Array;
  target: number;
  repairId: Uint8Array;
  /** Each term with the authenticated sender it came from. Wiped here. */
  terms: readonly { from: number; term: Uint8Array }[];
}

/** The target's hollow share from >= t helpers' terms; a uniform error if they do not add up. */
export function repairAssemble(a: RepairAssembly): HollowShare {
  const senders = Uint8Array.from(a.terms.map((t) => t.from));
  const list = encodeList(a.terms.map((t) => t.term));
  try {
    return HollowShare.wrap(
      call(() =>
        wasm.repairAssemble(
          a.publicPackage,
          a.target,
          checkId(a.repairId, "repair id"),
          senders,
          list,
        ),
      ),
    );
  } finally {
    list.fill(0);
    for (const t of a.terms) t.term.fill(0);
  }
}

/** This party's side of the complete refresh that completes a repair; consumes `hollow`. */
export function refreshFromHollow(o: { hollow: HollowShare; sessionId: Uint8Array }): Refresh {
  checkId(o.sessionId, "session id");
  const raw = call(() => wasm.RefreshSession.fromHollow(o.hollow.take(), o.sessionId));
  return Refresh.fromRaw(raw);
}
