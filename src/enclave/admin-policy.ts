/**
 * The cluster administrators' approval policy (src/shared/wire/approval.ts
 * encoding, hex): who may approve creating a wallet. It is a constant of the
 * enclave bundle, so it is part of the measured image: changing it changes
 * PCR0, peers (which admit only allow-listed images) and KMS's key policy
 * (which releases data keys only to allow-listed PCR0s) see a different
 * enclave, and no host can swap it at run time.
 *
 * Null: no administrators are built into this image, and the production
 * enclave refuses every DKG (unauthorised). A deployment sets this to its
 * administrators' policy (`tss key show` prints a key; a policy of several
 * keys and a quorum is approval.ts encodePolicy's output) before building the
 * EIF. The development entry (src/dev/enclave-main.ts) may take a
 * development administrators' policy from its stdin instead, loudly.
 */
export const ADMIN_POLICY_HEX: string | null = null;
