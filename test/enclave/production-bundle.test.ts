/**
 * The production enclave bundle (src/enclave/main.ts, what eif/build.sh
 * compiles into the EIF) must not carry the development stand-ins: a
 * simulated NSM, the development PKI, or a PKI read from stdin would let a
 * host mint attestation documents of its own, and a KMS CA read from stdin
 * would let it stand in for KMS. The development bundle is
 * searched for the same markers, so a marker that stopped matching anything
 * fails here instead of passing vacuously.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bundleEnclaveEntry,
  DEVELOPMENT_ENTRY,
  PRODUCTION_ENTRY,
} from "../../src/harness/enclave-image.ts";
import { DEVELOPMENT_MARKERS } from "../helpers/development-markers.ts";

let dir: string;
let production: string;
let development: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "enclave-bundles-"));
  production = readFileSync(
    (await bundleEnclaveEntry(PRODUCTION_ENTRY, join(dir, "production"))).entry,
    "utf8",
  );
  development = readFileSync(
    (await bundleEnclaveEntry(DEVELOPMENT_ENTRY, join(dir, "development"))).entry,
    "utf8",
  );
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("production enclave bundle", () => {
  for (const [what, markers] of Object.entries(DEVELOPMENT_MARKERS)) {
    it(`contains no ${what} code`, () => {
      for (const m of markers)
        expect(production.includes(m), `production bundle contains ${JSON.stringify(m)}`).toBe(
          false,
        );
    });

    it(`the development bundle does contain the ${what} markers`, () => {
      for (const m of markers)
        expect(development.includes(m), `development bundle lacks ${JSON.stringify(m)}`).toBe(true);
    });
  }

  it("carries the real NSM path, the pinned AWS root, the Amazon roots for KMS's TLS and the VSOCK listener", () => {
    for (const m of ["/dev/nsm", "aws-nitro-root.pem", "amazon-trust-roots.pem", "listenVsock"])
      expect(production.includes(m), m).toBe(true);
    // The development entry never opens /dev/nsm.
    expect(development.includes("/dev/nsm")).toBe(false);
  });

  it("neither enclave bundle contains the benchmark's dealer (src/dev/bench-dealer.ts runs in the benchmark only)", () => {
    for (const m of ["class BenchDealer", "BenchmarkDealer"]) {
      expect(production.includes(m), m).toBe(false);
      expect(development.includes(m), m).toBe(false);
    }
  });
});
