/**
 * What the enclave needs from a Nitro Security Module: signed attestation
 * documents over what it asks to have vouched for. The real one is /dev/nsm
 * (nsm-device.ts); development uses a simulated one (src/dev/simulated-nsm.ts).
 */

/** The fields an attestation document carries for its requester; each at most MAX_USER_FIELD_BYTES. */
export interface AttestRequest {
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
}

/** An NSM provider: issues one COSE_Sign1 attestation document per call. */
export interface Nsm {
  attest(req: AttestRequest): Uint8Array;
}
