/**
 * A software Nitro Security Module for development and tests. Documents are
 * byte-for-byte in the NSM's format (untagged COSE_Sign1, ES384, the same payload keys
 * in the same order, absent fields as CBOR null) but are signed by the development PKI,
 * so they verify only against a root the caller has explicitly marked as development.
 */
import { p384 } from "@noble/curves/nist.js";
import { sha384 } from "@noble/hashes/sha2.js";
import {
  encodeCbor,
  encodeCoseSign1,
  sigStructure,
  ES384_PROTECTED_HEADER,
  MAX_PCR_INDEX,
  MAX_USER_FIELD_BYTES,
  PCR_BYTES,
  type Cbor,
} from "../attestation/cose.ts";
import { renewLeaf, type DevelopmentPki } from "./dev-pki.ts";
import type { AttestRequest, Nsm } from "../attestation/nsm.ts";
import { parseCertificate } from "../attestation/verifier.ts";

export interface SimulatedNsmOptions {
  pki: DevelopmentPki;
  /** PCR index -> 48-byte value. PCR0 is required; other indices 0..15 default to zero, as unused PCRs do on Nitro. */
  pcrs: Record<number, Uint8Array>;
  /** Defaults to a random id shaped like AWS's ("i-<17 hex>-enc<16 hex>"). */
  moduleId?: string;
  /** Source of the document timestamp; injectable so tests can mint stale documents. */
  clock?: () => Date;
}

/** The NSM always reports PCRs 0..15. */
const REPORTED_PCRS = 16;

export class SimulatedNsm implements Nsm {
  readonly moduleId: string;
  private pki: DevelopmentPki;
  private readonly pcrs: Map<number, Uint8Array>;
  private readonly clock: () => Date;

  constructor(opts: SimulatedNsmOptions) {
    this.pki = opts.pki;
    this.clock = opts.clock ?? (() => new Date());
    this.moduleId = opts.moduleId ?? `i-${randomHex(17)}-enc${randomHex(16)}`;
    this.pcrs = collectPcrs(opts.pcrs);
  }

  /** The development root certificate (DER) a verifier must be given to accept these documents. */
  get rootDer(): Uint8Array {
    return this.pki.root.der;
  }

  attest(req: AttestRequest = {}): Uint8Array {
    const now = this.clock();
    const leafKey = this.currentLeaf(now);
    const payload = encodeCbor(
      new Map<string, Cbor>([
        ["module_id", this.moduleId],
        ["digest", "SHA384"],
        ["timestamp", now.getTime()],
        ["pcrs", new Map<number, Cbor>(this.pcrs)],
        ["certificate", this.pki.leaf.der],
        ["cabundle", [this.pki.root.der, this.pki.intermediate.der]],
        ["public_key", userField(req.publicKey, "publicKey")],
        ["user_data", userField(req.userData, "userData")],
        ["nonce", userField(req.nonce, "nonce")],
      ]),
    );
    const signature = p384.sign(sigStructure(ES384_PROTECTED_HEADER, payload), leafKey, {
      prehash: true,
      lowS: false,
      format: "compact",
    });
    return encodeCoseSign1(ES384_PROTECTED_HEADER, payload, signature);
  }

  /** Re-issues the short-lived leaf once `now` leaves its validity, as a long-running enclave would see. */
  private currentLeaf(now: Date): Uint8Array {
    const leaf = parseCertificate(this.pki.leaf.der, "development leaf");
    const t = now.getTime();
    if (t < leaf.notBefore || t > leaf.notAfter) this.pki = renewLeaf(this.pki, now);
    return this.pki.leaf.privateKey;
  }
}

/**
 * The simulated PCR0: SHA-384 over the enclave program's bytes, so any change to the
 * code yields a different measurement (the real PCR0 hashes the EIF image).
 */
export function pcr0ForCode(parts: Uint8Array[]): Uint8Array {
  const h = sha384.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

function collectPcrs(given: Record<number, Uint8Array>): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (let i = 0; i < REPORTED_PCRS; i++) out.set(i, new Uint8Array(PCR_BYTES));
  for (const [key, value] of Object.entries(given ?? {})) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i > MAX_PCR_INDEX)
      throw new RangeError(`PCR index ${key} outside 0..${MAX_PCR_INDEX}`);
    if (!(value instanceof Uint8Array) || value.length !== PCR_BYTES)
      throw new RangeError(`PCR${i} must be ${PCR_BYTES} bytes`);
    out.set(i, value.slice());
  }
  if (given?.[0] === undefined)
    throw new RangeError("SimulatedNsm needs PCR0 (e.g. pcr0ForCode(enclave program bytes))");
  return new Map([...out].sort(([a], [b]) => a - b));
}

function userField(v: Uint8Array | undefined, name: string): Uint8Array | null {
  if (v === undefined) return null;
  if (!(v instanceof Uint8Array) || v.length > MAX_USER_FIELD_BYTES)
    throw new RangeError(`${name} must be a Uint8Array of at most ${MAX_USER_FIELD_BYTES} bytes`);
  return v;
}

function randomHex(chars: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(chars / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, chars);
}
