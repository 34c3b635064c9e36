import { describe, expect, it } from "vitest";
import { DklsError } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import {
  DEFAULT_PHASE_TIMEOUT_MS,
  exposeEnclaveError,
  parseEnclaveArgs,
} from "../../src/enclave/program.ts";
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
    });
    expect(
      parseEnclaveArgs(["--phase-timeout-ms", "500", "--listen", "vsock:1"], vsockOnly),
    ).toEqual({ listen: "vsock:1", phaseTimeoutMs: 500 });
    expect(parseEnclaveArgs(["--listen", "vsock:1", "--help"], vsockOnly)).toBeNull();
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
