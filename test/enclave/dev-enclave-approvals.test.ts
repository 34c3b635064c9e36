/**
 * A development enclave creates unapproved wallets only when told so
 * explicitly (src/dev/dev-enclave-input.ts `unapprovedWallets`): started as
 * a process with neither an administrators' policy nor that flag, it refuses
 * every DKG, as a production image built without administrators does, and
 * says so loudly; the stdin line refuses the flag in any form but `true`, and
 * together with an administrators' policy.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDevEnclaveInput } from "../../src/dev/dev-enclave-input.ts";
import { createDevelopmentPki, serializeDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { devNodePcr4Hex } from "../../src/harness/dev-kms.ts";
import { bundleEnclave } from "../../src/harness/enclave-image.ts";
import { startEnclaveProcess } from "../../src/harness/enclave-process.ts";
import type { Started } from "../../src/harness/processes.ts";
import { RpcClient } from "../../src/shared/channel/rpc-client.ts";
import { RpcRemoteError } from "../../src/shared/channel/rpc-errors.ts";
import { dialUnix } from "../../src/shared/channel/unix-transport.ts";
import { toBody } from "../../src/shared/wire/enclave-codec.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { FrameType } from "../../src/shared/wire/frame.ts";
import { randomBytes } from "node:crypto";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";

const pki = createDevelopmentPki();
let dir: string;
let enclave: Started;
let rpc: RpcClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dev-enclave-approvals-"));
  const image = await bundleEnclave(join(dir, "image"));
  const socketPath = join(dir, "enclave.sock");
  enclave = await startEnclaveProcess({
    name: "no-admins",
    image,
    socketPath,
    pki,
    isolate: false,
    phaseTimeoutMs: 5_000,
    // Neither administrators nor the explicit development flag.
    unapprovedWallets: false,
  });
  rpc = new RpcClient(await dialUnix(socketPath));
}, 60_000);

afterAll(async () => {
  rpc?.close();
  await enclave?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a development enclave without administrators", () => {
  it("creates no wallet, with or without a policy, and says so at start-up", async () => {
    expect(enclave.stderr()).toContain("NO ADMINISTRATORS");
    expect(enclave.stderr()).not.toContain("APPROVALS NOT REQUIRED");
    const start: CeremonyStartRequest = {
      kind: "dkg",
      sessionId: randomBytes(32),
      walletId: "w_unapproved",
      threshold: 2,
      parties: 2,
      partyIndex: 1,
      peerDocuments: [],
      peerParties: [],
    };
    const err = await rpc.request(FrameType.CEREMONY_START, toBody(start)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcRemoteError);
    expect((err as RpcRemoteError).code).toBe("bad_request");
    expect((err as RpcRemoteError).remoteMessage).toMatch(/must carry the new wallet's policy/);
    const withPolicy = {
      ...start,
      sessionId: randomBytes(32),
      requestId: "req-1",
      policy: encodePolicy({
        quorum: 1,
        approvers: [approverKeyOf(KeySigner.generate("ed25519"))],
      }),
    };
    const refused = (await rpc.request(FrameType.CEREMONY_START, toBody(withPolicy)).then(
      () => null,
      (e: unknown) => e,
    )) as RpcRemoteError;
    expect(refused.code).toBe("unauthorised");
    expect(refused.remoteMessage).toMatch(/creates no wallets/);
  });
});

describe("the development enclave's stdin line", () => {
  const line = (extra: Record<string, unknown>) =>
    JSON.stringify({
      pki: JSON.parse(serializeDevelopmentPki(pki)),
      pcr4: devNodePcr4Hex("x"),
      ...extra,
    });

  it("takes unapprovedWallets only as true, and never with an administrators' policy", () => {
    expect(parseDevEnclaveInput(line({})).unapprovedWallets).toBeUndefined();
    expect(parseDevEnclaveInput(line({ unapprovedWallets: true })).unapprovedWallets).toBe(true);
    for (const v of [false, 1, "true"])
      expect(() => parseDevEnclaveInput(line({ unapprovedWallets: v }))).toThrow(/must be true/);
    expect(() =>
      parseDevEnclaveInput(line({ unapprovedWallets: true, adminPolicy: "00" })),
    ).toThrow(/exclude each other/);
  });
});
