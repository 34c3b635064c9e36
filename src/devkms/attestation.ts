/**
 * How the stand-in checks a Recipient's attestation document: through a plain function, so the
 * server does not care whether documents come from real Nitro hardware (AWS root) or from the
 * simulated NSM (development root). The production wiring is `nitroAttestationVerifier`.
 */
import {
  AttestationError,
  verifyAttestationDocument,
  type TrustedRoot,
} from "../attestation/verifier.ts";

/** The parts of a verified document the stand-in uses. */
export interface AttestedDoc {
  moduleId: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** DER SubjectPublicKeyInfo of the enclave's recipient key, if the enclave supplied one. */
  publicKey: Uint8Array | null;
}

/** Returns the verified document or throws (anything thrown means "not verified"). */
export type AttestationVerifier = (doc: Uint8Array) => AttestedDoc;

/** Thrown for a document that failed verification; carries the verifier's machine-readable reason. */
export class AttestationRejected extends Error {
  override name = "AttestationRejected";
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface NitroVerifierOptions {
  roots: readonly TrustedRoot[];
  /** Accept documents chaining to a root flagged `development` (simulated NSM). */
  allowDevelopment: boolean;
  /** KMS refuses attestation documents older than five minutes. */
  maxAgeMs: number;
  clock?: () => Date;
}

export const DEFAULT_ATTESTATION_MAX_AGE_MS = 5 * 60 * 1000;

/**
 * Full verification for every request: chain to a configured root, COSE signature, validity of
 * every certificate now, freshness, and no debug-mode enclaves (their memory is readable by the
 * host, so releasing keys to them would defeat the purpose).
 */
export function nitroAttestationVerifier(opts: NitroVerifierOptions): AttestationVerifier {
  const clock = opts.clock ?? (() => new Date());
  return (doc) => {
    try {
      return verifyAttestationDocument(doc, {
        roots: opts.roots,
        now: clock(),
        maxAgeMs: opts.maxAgeMs,
        allowDebug: false,
        allowDevelopment: opts.allowDevelopment,
      });
    } catch (e) {
      if (e instanceof AttestationError) throw new AttestationRejected(e.reason, e.message);
      throw new AttestationRejected(
        "malformed",
        `attestation document could not be verified: ${(e as Error).message}`,
      );
    }
  };
}
