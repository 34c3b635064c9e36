/**
 * The production platform (src/enclave/production-platform.ts, what
 * src/enclave/main.ts runs) with a double of /dev/nsm alone: the roots are
 * the real files, read from beside the program and checked against their
 * pins; PCR0 and PCR4 come from the device's own document.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TrustedRootError } from "../../src/attestation/aws-root.ts";
import { createDevelopmentPki, derToPem } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import {
  AMAZON_TRUST_ROOTS_FILE,
  AWS_NITRO_ROOT_FILE,
  productionPlatform,
} from "../../src/enclave/production-platform.ts";
import { ownMeasurements } from "../../src/enclave/program.ts";
import { toHex } from "../../src/shared/hex.ts";

const NITRO_ROOT = fileURLToPath(
  new URL("../../../shared/fixtures/nitro/aws-nitro-enclaves-root-g1.pem", import.meta.url),
);
const amazonRoots = () =>
  [1, 2, 3, 4]
    .map((i) => readFileSync(`/usr/share/ca-certificates/mozilla/Amazon_Root_CA_${i}.crt`, "utf8"))
    .join("\n");

const dirs: string[] = [];
function programDir(bundle: string): string {
  const dir = mkdtempSync(join(tmpdir(), "prod-platform-"));
  dirs.push(dir);
  copyFileSync(NITRO_ROOT, join(dir, AWS_NITRO_ROOT_FILE));
  writeFileSync(join(dir, AMAZON_TRUST_ROOTS_FILE), bundle);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("production platform", () => {
  it("trusts the pinned AWS Nitro root for peers and exactly the four Amazon roots for KMS; identity from the device", () => {
    const pcr0 = new Uint8Array(48).fill(0x0a);
    const pcr4 = new Uint8Array(48).fill(0x44);
    const device = new SimulatedNsm({ pki: createDevelopmentPki(), pcrs: { 0: pcr0, 4: pcr4 } });
    const p = productionPlatform(programDir(amazonRoots()), (req) => device.attest(req));
    expect(p.peerRoots).toHaveLength(1);
    expect(p.peerRoots[0]!.development).toBe(false);
    expect(p.allowDevelopment).toBeUndefined();
    expect(p.kmsTrustedCaPem).toHaveLength(4);
    const m = ownMeasurements(p.nsm);
    expect([toHex(m.pcr0), toHex(m.pcr4)]).toEqual([toHex(pcr0), toHex(pcr4)]);
  });

  it("refuses to start with a KMS CA bundle that is not exactly the pinned Amazon roots", () => {
    const device = () => new Uint8Array(0);
    const extra = derToPem(createDevelopmentPki().root.der);
    expect(() => productionPlatform(programDir(`${amazonRoots()}\n${extra}`), device)).toThrow(
      TrustedRootError,
    );
    expect(() => productionPlatform(programDir(extra), device)).toThrow(/not exactly the pinned/);
  });
});
