/** One party's key share, held inside the wasm instance behind a handle. */
import * as wasm from "./wasm/dkls23.js";
import { call } from "./core.ts";
import { DklsError } from "./errors.ts";

export class KeyShare {
  private constructor(
    private inner: wasm.KeyShare | null,
    /** Length of toBytes(), once known. */
    private serialisedLength?: number,
  ) {}

  /** @internal */
  static wrap(inner: wasm.KeyShare): KeyShare {
    return new KeyShare(inner);
  }

  /** Parses, bounds-checks and validates opaque share bytes. The input is wiped. */
  static fromBytes(bytes: Uint8Array): KeyShare {
    const length = bytes.length;
    try {
      return new KeyShare(
        call(() => wasm.KeyShare.fromBytes(bytes)),
        length,
      );
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

  /**
   * Length of the serialised share (toBytes()) in bytes. Measured, a loaded
   * share occupies 0.98-0.99 of this inside the wasm instance (the OT state
   * dominates both), so this is what a cache charges for it. Computed in
   * TypeScript from the serialised form, once; the bytes are wiped.
   */
  get byteLength(): number {
    if (this.serialisedLength === undefined) {
      const bytes = this.toBytes();
      this.serialisedLength = bytes.length;
      bytes.fill(0);
    }
    return this.serialisedLength;
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
