/**
 * The development entry (src/dev/enclave-main.ts) as the harness runs it: a
 * bundled process with the development PKI on stdin, served on a Unix socket.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAttestationDocument } from "../../src/attestation/verifier.ts";
import { createDevelopmentPki, type DevelopmentPki } from "../../src/dev/dev-pki.ts";
import { bundleEnclave, type EnclaveImage } from "../../src/harness/enclave-image.ts";
import { startEnclaveProcess } from "../../src/harness/enclave-process.ts";
import type { Started } from "../../src/harness/processes.ts";
import { RpcClient } from "../../src/shared/channel/rpc-client.ts";
import { RpcRemoteError } from "../../src/shared/channel/rpc-errors.ts";
import { dialUnix } from "../../src/shared/channel/unix-transport.ts";
import { fromBody, toBody } from "../../src/shared/wire/enclave-codec.ts";
import type {
  AttestReply,
  CeremonyStartRequest,
  HealthReply,
} from "../../src/shared/wire/enclave-ops.ts";
import { FrameType } from "../../src/shared/wire/frame.ts";
import { toHex } from "../../src/shared/hex.ts";

let dir: string;
let image: EnclaveImage;
let pki: DevelopmentPki;
let enclave: Started;
let rpc: RpcClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dev-enclave-"));
  image = await bundleEnclave(join(dir, "image"));
  pki = createDevelopmentPki();
  const socketPath = join(dir, "enclave.sock");
  enclave = await startEnclaveProcess({
    name: "test",
    image,
    socketPath,
    pki,
    isolate: false,
    phaseTimeoutMs: 5_000,
  });
  rpc = new RpcClient(await dialUnix(socketPath));
}, 60_000);

afterAll(async () => {
  rpc?.close();
  await enclave?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("development enclave process", () => {
  it("reports PCR0 = SHA-384(bundle || wasm), as the harness computes it", async () => {
    expect(enclave.ready.pcr0).toBe(image.pcr0Hex);
    const health = fromBody<HealthReply>((await rpc.request(FrameType.HEALTH)).body);
    expect(health.pcr0).toBe(image.pcr0Hex);
    expect(enclave.stderr()).toContain("SIMULATED NSM");
  });

  it("issues documents that verify only against the development root it was given", async () => {
    const nonce = crypto.getRandomValues(new Uint8Array(16));
    const { document } = fromBody<AttestReply>(
      (await rpc.request(FrameType.ATTEST, toBody({ nonce }))).body,
    );
    const roots = [{ der: pki.root.der, development: true }];
    const doc = verifyAttestationDocument(document, {
      roots,
      now: new Date(),
      expectedNonce: nonce,
      allowDevelopment: true,
    });
    expect(toHex(doc.pcrs.get(0)!)).toBe(image.pcr0Hex);
    expect(() =>
      verifyAttestationDocument(document, { roots, now: new Date(), expectedNonce: nonce }),
    ).toThrow();
  });

  it("names the blamed party in the ERROR frame's party field, not in the sentence", async () => {
    const start: CeremonyStartRequest = {
      kind: "dkg",
      sessionId: crypto.getRandomValues(new Uint8Array(32)),
      walletId: "w-blame",
      threshold: 2,
      parties: 2,
      partyIndex: 1,
      peerDocuments: [Uint8Array.of(1, 2, 3)],
      peerParties: [2],
    };
    const err = await rpc.request(FrameType.CEREMONY_START, toBody(start)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcRemoteError);
    const remote = err as RpcRemoteError;
    expect(remote.code).toBe("ceremony_failed");
    expect(remote.blame.party).toBe(2);
    expect(remote.remoteMessage).toMatch(/^attestation of party 2 refused/);
    expect(remote.remoteMessage).not.toMatch(/\[party/);
  });
});
