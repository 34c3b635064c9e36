/**
 * Identifiers and strings found only in src/dev (simulated-nsm.ts, dev-pki.ts,
 * enclave-main.ts, dev-enclave-input.ts): a production enclave, bundled or
 * compiled, must contain none of them. test/enclave/production-bundle.test.ts
 * scans the bundles, test/shipping/executables.test.ts the compiled executables.
 */
export const DEVELOPMENT_MARKERS: Record<string, string[]> = {
  "simulated NSM": [
    "class SimulatedNsm",
    "SimulatedNsm needs PCR0",
    "development kernel",
    "SIMULATED NSM",
  ],
  "development PKI": [
    "restoreDevelopmentPki",
    "renewLeaf",
    "development.nitro-enclaves",
    "tss-dev-nitro-pki/1",
  ],
  "PKI on stdin": ["Bun.stdin", "development enclave input"],
  "development KMS CA": ["DEVELOPMENT KMS CA", "kmsCaPem"],
  "Unix-socket listener": ["listenUnix"],
  "development peer policy": ["allowDevelopment: true"],
};
