/**
 * The development entry (src/dev/enclave-main.ts) as the harness runs it: a
 * bundled process with the development PKI on stdin, served on a Unix socket.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAttestationDocument } from "../../src/attestation/verifier.ts";
import { createDevelopmentPki, derToPem, type DevelopmentPki } from "../../src/dev/dev-pki.ts";
import { devNodePcr4Hex } from "../../src/harness/dev-kms.ts";
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
const PCR4 = devNodePcr4Hex("dev-enclave-test");

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
    pcr4Hex: PCR4,
    // Configured but never reached here: no test in this file seals or loads a share.
    kms: {
      relayPath: join(dir, "no-relay.sock"),
      endpoint: "https://localhost:1",
      region: "us-east-1",
      keyArn: "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000",
      caPem: derToPem(pki.root.der),
    },
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

  it("takes its node identity (PCR4) from its own attestation document, and says loudly that it trusts a development KMS CA", async () => {
    expect(enclave.ready.pcr4).toBe(PCR4);
    const health = fromBody<HealthReply>((await rpc.request(FrameType.HEALTH)).body);
    expect(health.pcr4).toBe(PCR4);
    const { document } = fromBody<AttestReply>((await rpc.request(FrameType.ATTEST)).body);
    const roots = [{ der: pki.root.der, development: true }];
    const doc = verifyAttestationDocument(document, {
      roots,
      now: new Date(),
      allowDevelopment: true,
    });
    expect(toHex(doc.pcrs.get(4)!)).toBe(PCR4);
    expect(enclave.stderr()).toContain("DEVELOPMENT KMS CA");
  });

  it("refuses host-supplied key material and node ids in LOAD_SHARE and SEAL_SHARE", async () => {
    const creds = { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" };
    const load = {
      walletId: "w-x",
      partyIndex: 1,
      generation: 0,
      publicKey: new Uint8Array(33),
      sealed: new Uint8Array(40),
      ciphertextBlob: new Uint8Array(40),
      ...creds,
    };
    const sessionId = new Uint8Array(32);
    for (const [type, body] of [
      [FrameType.LOAD_SHARE, { ...load, ciphertextForRecipient: new Uint8Array(300) }],
      [FrameType.LOAD_SHARE, { ...load, nodeId: "node-2" }],
      [
        FrameType.SEAL_SHARE,
        { sessionId, walletId: "w-x", ...creds, ciphertextForRecipient: new Uint8Array(300) },
      ],
    ] as const) {
      const err = await rpc.request(type, toBody(body)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RpcRemoteError);
      expect((err as RpcRemoteError).code).toBe("bad_request");
    }
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
