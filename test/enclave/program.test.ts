import { describe, expect, it } from "vitest";
import { DklsError } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import {
  DEFAULT_PHASE_TIMEOUT_MS,
  MIN_SHARE_BUDGET_BYTES,
  exposeEnclaveError,
  ownMeasurements,
  parseEnclaveArgs,
} from "../../src/enclave/program.ts";
import { peerImages } from "../../src/enclave/service.ts";
import { DEFAULT_MAX_OPEN_SESSIONS } from "../../src/enclave/ceremony-registry.ts";
import {
  DEFAULT_SHARE_BUDGET_BYTES,
  MAX_SHARE_BUDGET_BYTES,
} from "../../src/enclave/share-cache.ts";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { toHex } from "../../src/shared/hex.ts";
import { CodedError } from "../../src/shared/wire/errors.ts";
import { errorBody, readErrorBody } from "../../src/shared/channel/rpc-errors.ts";

const vsockOnly = {
  pattern: /^vsock:\d+$/,
  usage: "vsock:PORT",
  open: () => {
    throw new Error("not opened in tests");
  },
};

describe("enclave arguments", () => {
  it("parses --listen and --phase-timeout-ms", () => {
    expect(parseEnclaveArgs(["--listen", "vsock:5000"], vsockOnly)).toEqual({
      listen: "vsock:5000",
      phaseTimeoutMs: DEFAULT_PHASE_TIMEOUT_MS,
      maxSessions: DEFAULT_MAX_OPEN_SESSIONS,
      shareBudgetBytes: DEFAULT_SHARE_BUDGET_BYTES,
      peerImages: [],
    });
    expect(
      parseEnclaveArgs(["--phase-timeout-ms", "500", "--listen", "vsock:1"], vsockOnly),
    ).toEqual({
      listen: "vsock:1",
      phaseTimeoutMs: 500,
      maxSessions: 64,
      shareBudgetBytes: DEFAULT_SHARE_BUDGET_BYTES,
      peerImages: [],
    });
    expect(
      parseEnclaveArgs(["--listen", "vsock:1", "--max-sessions", "8"], vsockOnly)?.maxSessions,
    ).toBe(8);
    for (const bad of ["0", "1025", "2.5", "x"])
      expect(() =>
        parseEnclaveArgs(["--listen", "vsock:1", "--max-sessions", bad], vsockOnly),
      ).toThrow(/--max-sessions must be an integer from 1 to 1024/);
    expect(parseEnclaveArgs(["--listen", "vsock:1", "--help"], vsockOnly)).toBeNull();
  });

  it("parses --share-budget-bytes within its bounds", () => {
    const budget = (value: string) =>
      parseEnclaveArgs(["--listen", "vsock:1", "--share-budget-bytes", value], vsockOnly)
        ?.shareBudgetBytes;
    expect(budget("1048576")).toBe(1_048_576);
    expect(budget(String(MIN_SHARE_BUDGET_BYTES))).toBe(MIN_SHARE_BUDGET_BYTES);
    expect(budget(String(MAX_SHARE_BUDGET_BYTES))).toBe(MAX_SHARE_BUDGET_BYTES);
    for (const bad of [
      "0",
      "256",
      String(MIN_SHARE_BUDGET_BYTES - 1),
      String(MAX_SHARE_BUDGET_BYTES + 1),
      "1e6x",
      "2.5",
      "-1",
      "x",
    ])
      expect(() => budget(bad)).toThrow(
        new RegExp(
          `--share-budget-bytes must be an integer from ${MIN_SHARE_BUDGET_BYTES} to ${MAX_SHARE_BUDGET_BYTES}`,
        ),
      );
    expect(() =>
      parseEnclaveArgs(
        ["--listen", "vsock:1", "--share-budget-bytes", "70000", "--share-budget-bytes", "80000"],
        vsockOnly,
      ),
    ).toThrow(/--share-budget-bytes given twice/);
  });

  it("refuses a listener form the entry does not serve, and unknown flags such as --dev", () => {
    expect(() => parseEnclaveArgs(["--listen", "unix:/tmp/e.sock"], vsockOnly)).toThrow(
      /--listen vsock:PORT is required/,
    );
    expect(() => parseEnclaveArgs(["--listen", "vsock:5000", "--dev"], vsockOnly)).toThrow(
      /unknown option --dev/,
    );
    expect(() => parseEnclaveArgs([], vsockOnly)).toThrow(/--listen/);
    expect(() => parseEnclaveArgs(["--listen"], vsockOnly)).toThrow(/needs a value/);
    expect(() =>
      parseEnclaveArgs(["--listen", "vsock:1", "--phase-timeout-ms", "99"], vsockOnly),
    ).toThrow(/>= 100/);
  });
});

const KMS = [
  "--kms-relay",
  "vsock:3:8000",
  "--kms-endpoint",
  "https://kms.eu-west-1.amazonaws.com",
  "--kms-region",
  "eu-west-1",
  "--kms-key-id",
  "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
];

describe("the enclave's own KMS and peer-image flags", () => {
  it("parses the KMS settings, which production requires and development may omit", () => {
    const args = parseEnclaveArgs(["--listen", "vsock:5000", ...KMS], vsockOnly, true)!;
    expect(args.kms).toEqual({
      relay: { kind: "vsock", cid: 3, port: 8000 },
      endpoint: "https://kms.eu-west-1.amazonaws.com",
      region: "eu-west-1",
      keyId: KMS[7],
    });
    expect(() => parseEnclaveArgs(["--listen", "vsock:5000"], vsockOnly, true)).toThrow(
      /required together/,
    );
    expect(parseEnclaveArgs(["--listen", "vsock:5000"], vsockOnly, false)!.kms).toBeUndefined();
    // Half a KMS configuration is never silently ignored.
    expect(() =>
      parseEnclaveArgs(["--listen", "vsock:5000", ...KMS.slice(0, 4)], vsockOnly),
    ).toThrow(/required together/);
  });

  it("refuses a KMS endpoint that is not https://HOST[:PORT], a bad relay, region or key id", () => {
    const withFlag = (flag: string, value: string) => {
      const a = [...KMS];
      a[a.indexOf(flag) + 1] = value;
      return () => parseEnclaveArgs(["--listen", "vsock:1", ...a], vsockOnly, true);
    };
    expect(withFlag("--kms-endpoint", "http://kms.eu-west-1.amazonaws.com")).toThrow(/https/);
    expect(withFlag("--kms-endpoint", "https://kms.example/path")).toThrow(/https/);
    expect(withFlag("--kms-relay", "tcp:1.2.3.4:443")).toThrow(/--kms-relay/);
    expect(withFlag("--kms-region", "EU WEST")).toThrow(/region/);
    expect(withFlag("--kms-key-id", "key id with spaces")).toThrow(/key id/);
    expect(() =>
      parseEnclaveArgs(["--listen", "vsock:1", ...KMS, "--kms-region", "us-east-1"], vsockOnly),
    ).toThrow(/given twice/);
  });

  it("takes an allow-list of other peer images, never an all-zero one", () => {
    const other = "ab".repeat(48);
    const args = parseEnclaveArgs(
      ["--listen", "vsock:1", "--peer-image-sha384", other, "--peer-image-sha384", "CD".repeat(48)],
      vsockOnly,
    )!;
    expect(args.peerImages.map(toHex)).toEqual([other, "cd".repeat(48)]);
    expect(() =>
      parseEnclaveArgs(["--listen", "vsock:1", "--peer-image-sha384", "00".repeat(48)], vsockOnly),
    ).toThrow(/not all zero/);
    expect(() =>
      parseEnclaveArgs(["--listen", "vsock:1", "--peer-image-sha384", "ab"], vsockOnly),
    ).toThrow(/96 hex/);
    // The own image always, the others once each; an all-zero own PCR0 (debug) admits no one by itself.
    const own = new Uint8Array(48).fill(7);
    const zero = new Uint8Array(48);
    expect(peerImages(own, [own, args.peerImages[0]!]).map(toHex)).toEqual([toHex(own), other]);
    expect(peerImages(zero, [])).toEqual([]);
  });

  it("reads PCR0 and the node identity PCR4 from its own attestation document, refusing an all-zero PCR4", () => {
    const pki = createDevelopmentPki();
    const pcr0 = new Uint8Array(48).fill(1);
    const pcr4 = new Uint8Array(48).fill(4);
    const m = ownMeasurements(new SimulatedNsm({ pki, pcrs: { 0: pcr0, 4: pcr4 } }));
    expect(toHex(m.pcr0)).toBe(toHex(pcr0));
    expect(toHex(m.pcr4)).toBe(toHex(pcr4));
    expect(() => ownMeasurements(new SimulatedNsm({ pki, pcrs: { 0: pcr0 } }))).toThrow(
      /PCR4 .* all zero/,
    );
  });
});

describe("errors the enclave exposes to its host", () => {
  it("carries blame as a field, not in the sentence", () => {
    const e = new EnclaveError("ceremony_failed", "attestation of party 3 refused", 3);
    expect(e).toBeInstanceOf(CodedError);
    expect(e.blame).toEqual({ party: 3 });
    const pub = exposeEnclaveError(e);
    expect(pub).toEqual({
      code: "ceremony_failed",
      message: "attestation of party 3 refused",
      party: 3,
    });
    expect(pub!.message).not.toMatch(/\[party/);
    // and it survives the ERROR frame
    expect(readErrorBody(errorBody(pub!.code, pub!.message, pub!.party))).toEqual(pub);
  });

  it("leaves party out when nobody is blamed", () => {
    expect(new EnclaveError("bad_request", "no").blame).toEqual({});
    expect(exposeEnclaveError(new EnclaveError("bad_request", "no"))).toEqual({
      code: "bad_request",
      message: "no",
    });
  });

  it("exposes the core's errors with their blame", () => {
    const e = new DklsError("bad commitment", "protocol_abort", 2, true);
    expect(e).toBeInstanceOf(CodedError);
    expect(e.blame.party).toBe(2);
    expect(e.ban).toBe(true);
    expect(exposeEnclaveError(e)).toEqual({
      code: "protocol_abort",
      message: "bad commitment",
      party: 2,
    });
  });

  it("hides everything else", () => {
    expect(exposeEnclaveError(new Error("secret detail"))).toBeNull();
    expect(exposeEnclaveError("x")).toBeNull();
  });
});
