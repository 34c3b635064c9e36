/**
 * The enclave's own KMS client against the KMS stand-in over HTTPS, through
 * the host's KMS relay: real @aws-sdk/client-kms inside the enclave code, TLS
 * ending in it, the stand-in evaluating the node-bound key policy. The share
 * table (src/enclave/shares.ts) is driven as the enclave's handlers drive it,
 * with two nodes' identities (PCR4) from a simulated NSM.
 *
 * What a hostile host can vary here: the sealed share (nonce, ciphertext,
 * tag), the CiphertextBlob, the binding fields, another node's row, the
 * credentials, extra request fields. Every such LOAD_SHARE gets the same
 * answer, and no host-supplied key material is accepted at all.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AMAZON_TRUST_ROOTS_SHA256, pinnedPemBundle } from "../../src/attestation/aws-root.ts";
import { createDevelopmentPki, derToPem } from "../../src/dev/dev-pki.ts";
import { dkgInProcess } from "../../src/dev/in-process.ts";
import { SimulatedNsm, pcr0ForCode } from "../../src/dev/simulated-nsm.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { EnclaveKms, KmsCallError, type KmsSettings } from "../../src/enclave/kms/kms-client.ts";
import { RecipientKey } from "../../src/enclave/recipient-key.ts";
import { shareEncryptionContext, UNSEAL_FAILED_MESSAGE } from "../../src/enclave/share-sealing.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import {
  DEV_KMS_REGION,
  devNodePcr4,
  startDevKms,
  type DevKms,
} from "../../src/harness/dev-kms.ts";
import { parseRelayTarget, startKmsRelay, type KmsRelay } from "../../src/host/kms-relay.ts";
import { toHex } from "../../src/shared/hex.ts";
import type { LoadShareRequest, SealShareReply } from "../../src/shared/wire/enclave-ops.ts";
import { flipByte, loadShareRequest } from "../helpers/hostile-host.ts";

const WALLET = "w-kms";
const PCR0 = pcr0ForCode([new TextEncoder().encode("enclave-kms test image")]);
const AMAZON_ROOTS = "/usr/share/ca-certificates/mozilla";

interface Node {
  name: string;
  pcr4: Uint8Array;
  nsm: SimulatedNsm;
  settings: KmsSettings;
  /** A fresh enclave boot of this node: new recipient key, same identity. */
  boot(): ShareTable;
}

let dir: string;
let kms: DevKms;
let relay: KmsRelay;
let relayed: Uint8Array[] = [];
let nodes: [Node, Node];
let sealed: [SealShareReply, SealShareReply];
let creds: { accessKeyId: string; secretAccessKey: string };

function tableFor(nsm: SimulatedNsm, pcr4: Uint8Array, settings: KmsSettings): ShareTable {
  const recipient = new RecipientKey();
  const owner = {
    kms: new EnclaveKms(settings),
    recipient,
    attest: () => nsm.attest({ publicKey: recipient.spkiDer }),
  };
  return new ShareTable(owner, toHex(pcr4), () => {}, 60_000);
}

/** The error a promise rejects with, or null if it resolves. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

const publicFace = (e: unknown) => {
  const x = e as EnclaveError;
  return { cls: x?.constructor?.name, code: x?.code, message: x?.message, blame: x?.blame };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "enclave-kms-"));
  const pki = createDevelopmentPki();
  const rootPem = join(dir, "dev-root.pem");
  writeFileSync(rootPem, derToPem(pki.root.der));
  const names = ["node-1", "node-2"];
  kms = await startDevKms({
    dataDir: dir,
    devRootPem: rootPem,
    pcr0Hex: toHex(PCR0),
    nodes: names.map((name) => ({ name, pcr4Hex: toHex(devNodePcr4(name)) })),
  });
  creds = { accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey };
  const relayPath = join(dir, "kms-relay.sock");
  relay = startKmsRelay({
    listen: { kind: "unix", path: relayPath },
    target: parseRelayTarget(`127.0.0.1:${kms.port}`),
    onBytes: (direction, chunk) => {
      if (direction === "to-kms") relayed.push(new Uint8Array(chunk));
    },
  });
  const settings: KmsSettings = {
    relay: { kind: "unix", path: relayPath },
    endpoint: kms.enclaveEndpoint,
    region: DEV_KMS_REGION,
    keyId: kms.keyArn,
    trustedCaPem: [kms.tls.caPem],
  };
  nodes = names.map((name) => {
    const pcr4 = devNodePcr4(name);
    const nsm = new SimulatedNsm({ pki, pcrs: { 0: PCR0, 4: pcr4 } });
    return { name, pcr4, nsm, settings, boot: () => tableFor(nsm, pcr4, settings) };
  }) as [Node, Node];
  // A 2-of-2 DKG's two shares, each sealed by its own node's enclave.
  const shares = dkgInProcess(2, 2);
  sealed = (await Promise.all(
    nodes.map(async (n, i) => {
      const table = n.boot();
      const sessionId = randomBytes(32);
      // A receipt signer of the session: this test seals and opens, it never activates.
      const channel = ed25519.utils.randomSecretKey();
      table.holdPending(toHex(sessionId), WALLET, shares[i]!, null, {
        ceremony: "dkg",
        keys: new Map([[shares[i]!.index, ed25519.getPublicKey(channel)]]),
        sign: (m) => ed25519.sign(m, channel),
      });
      return table.seal({ sessionId, walletId: WALLET, ...creds });
    }),
  )) as [SealShareReply, SealShareReply];
}, 120_000);

afterAll(async () => {
  await relay?.close();
  await kms?.process.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const loadRequest = (s: SealShareReply, over: Partial<LoadShareRequest> = {}) =>
  loadShareRequest(s, WALLET, creds, over);
const flip = flipByte;

describe("the enclave's own KMS calls, over TLS through the host's relay", () => {
  it("seals under its own GenerateDataKey and loads back through its own Decrypt, after a reboot too", async () => {
    const [s1] = sealed;
    expect(s1.kmsKeyId).toBe(kms.keyArn);
    expect(s1.ciphertextBlob.length).toBeGreaterThan(0);
    // A fresh boot: new recipient key; the identity (PCR4) is the node's, so KMS releases the key.
    const reply = await nodes[0].boot().load(loadRequest(s1));
    expect(reply).toEqual({ walletId: WALLET, generation: 0, partyIndex: s1.partyIndex });
  });

  it("sends the relay only TLS: no KMS operation, blob or context in the clear", () => {
    const all = Buffer.concat(relayed);
    expect(all.length).toBeGreaterThan(0);
    // Every connection starts with a TLS handshake record.
    expect(relayed[0]![0]).toBe(0x16);
    for (const needle of [
      "TrentService",
      "GenerateDataKey",
      "tss-share",
      toHex(nodes[0].pcr4),
      Buffer.from(sealed[0].ciphertextBlob).toString("base64").slice(0, 24),
      kms.accessKeyId,
    ])
      expect(all.includes(Buffer.from(needle))).toBe(false);
  });

  it("takes no key material, node id or other field from the host", async () => {
    const table = nodes[0].boot();
    const extra = [
      { ciphertextForRecipient: randomBytes(300) },
      { nodeId: "node-2" },
      { dataKey: randomBytes(32) },
      { kmsKeyId: "arn:aws:kms:us-east-1:000000000000:key/other" },
    ];
    for (const x of extra) {
      const e = await failure(table.load({ ...loadRequest(sealed[0]), ...x } as LoadShareRequest));
      expect(e).toBeInstanceOf(EnclaveError);
      expect((e as EnclaveError).code).toBe("bad_request");
      const sessionId = randomBytes(32);
      const s = await failure(table.seal({ sessionId, walletId: WALLET, ...creds, ...x } as never));
      expect((s as EnclaveError).code).toBe("bad_request");
    }
  });

  it("answers every altered load with one identical failure: sealed-share nonce, ciphertext, tag; CiphertextBlob; binding; credentials", async () => {
    const [s1] = sealed;
    const table = nodes[0].boot();
    const n = s1.sealed.length;
    const variants: Partial<LoadShareRequest>[] = [];
    // The padding-oracle replay: vary the nonce (IV) and the content byte by byte, and the tag.
    for (const at of [1, 5, 12]) variants.push({ sealed: flip(s1.sealed, at) });
    for (const at of [13, 14, 100, Math.floor(n / 2), n - 17])
      for (const mask of [0x01, 0x80]) variants.push({ sealed: flip(s1.sealed, at, mask) });
    for (const at of [n - 16, n - 1]) variants.push({ sealed: flip(s1.sealed, at) });
    variants.push({ sealed: s1.sealed.subarray(0, n - 1) }, { sealed: randomBytes(n) });
    // The CiphertextBlob KMS is asked to decrypt: every region of it, and random bytes.
    const blob = s1.ciphertextBlob;
    for (const at of [0, 1, 8, Math.floor(blob.length / 2), blob.length - 1])
      variants.push({ ciphertextBlob: flip(blob, at) });
    variants.push(
      { ciphertextBlob: randomBytes(blob.length) },
      { ciphertextBlob: blob.subarray(1) },
    );
    // The binding the host re-supplies, and credentials KMS refuses.
    variants.push(
      { generation: 1 },
      { partyIndex: s1.partyIndex === 1 ? 2 : 1 },
      { publicKey: flip(s1.publicKey, 5) },
      { walletId: "w-other" },
      { secretAccessKey: "not-the-secret" },
    );
    const faces = [];
    for (const v of variants) faces.push(publicFace(await failure(table.load(loadRequest(s1, v)))));
    const expected = {
      cls: "EnclaveError",
      code: "unseal_failed",
      message: UNSEAL_FAILED_MESSAGE,
      blame: {},
    };
    for (const f of faces) expect(f).toEqual(expected);
    // And the genuine row still opens: the failures changed nothing.
    expect((await table.load(loadRequest(s1))).walletId).toBe(WALLET);
  }, 120_000);
});

describe("node identity (PCR4) binds a node's shares to its own enclave", () => {
  it("refuses node 2's sealed share and CiphertextBlob in node 1's enclave, in the enclave and at KMS", async () => {
    const [, s2] = sealed;
    const node1 = nodes[0].boot();
    const e = await failure(node1.load(loadRequest(s2)));
    expect(publicFace(e)).toMatchObject({ code: "unseal_failed", message: UNSEAL_FAILED_MESSAGE });
    // What KMS itself says, asked with node 1's enclave's own attestation:
    const recipient = new RecipientKey();
    const client = new EnclaveKms(nodes[0].settings);
    const doc = nodes[0].nsm.attest({ publicKey: recipient.spkiDer });
    const binding = (pcr4: Uint8Array) => ({
      walletId: WALLET,
      nodeId: toHex(pcr4),
      partyIndex: s2.partyIndex,
      generation: s2.generation,
      publicKey: s2.publicKey,
    });
    const ask = (pcr4: Uint8Array) =>
      failure(
        client.decrypt({
          ciphertextBlob: s2.ciphertextBlob,
          context: shareEncryptionContext(binding(pcr4)),
          attestationDocument: doc,
          credentials: { ...creds },
        }),
      );
    // With node 2's context: the policy's PCR4 condition refuses node 1's attestation.
    const denied = await ask(nodes[1].pcr4);
    expect(denied).toBeInstanceOf(KmsCallError);
    expect((denied as KmsCallError).kmsErrorName).toBe("AccessDeniedException");
    // With its own context: the blob is bound to node 2's context.
    const invalid = await ask(nodes[0].pcr4);
    expect((invalid as KmsCallError).kmsErrorName).toBe("InvalidCiphertextException");
    // Node 2's own enclave still opens it.
    expect((await nodes[1].boot().load(loadRequest(s2))).partyIndex).toBe(s2.partyIndex);
  });
});

describe("TLS trust of the enclave's KMS client", () => {
  const anyDecrypt = (client: EnclaveKms) =>
    client.decrypt({
      ciphertextBlob: sealed[0].ciphertextBlob,
      context: {},
      attestationDocument: new Uint8Array(1),
      credentials: { ...creds },
    });

  it("refuses the stand-in's certificate when trusting only the Amazon Trust Services roots (production)", async () => {
    const bundle = [1, 2, 3, 4]
      .map((i) => readFileSync(join(AMAZON_ROOTS, `Amazon_Root_CA_${i}.crt`), "utf8"))
      .join("\n");
    const amazon = pinnedPemBundle(bundle, AMAZON_TRUST_ROOTS_SHA256, "Amazon roots");
    const client = new EnclaveKms({ ...nodes[0].settings, trustedCaPem: amazon });
    const e = await failure(anyDecrypt(client));
    expect(e).toBeInstanceOf(KmsCallError);
    expect((e as Error).message).not.toContain(kms.secretAccessKey);
  });

  it("refuses an endpoint name the certificate does not carry", async () => {
    const port = new URL(kms.enclaveEndpoint).port;
    const client = new EnclaveKms({
      ...nodes[0].settings,
      endpoint: `https://kms.us-east-1.amazonaws.com:${port}`,
    });
    const e = await failure(anyDecrypt(client));
    expect(e).toBeInstanceOf(KmsCallError);
  });

  it("accepts only a bundle of exactly the pinned Amazon roots", () => {
    const one = readFileSync(join(AMAZON_ROOTS, "Amazon_Root_CA_1.crt"), "utf8");
    expect(() => pinnedPemBundle(one, AMAZON_TRUST_ROOTS_SHA256, "one root")).toThrow(
      /not exactly the pinned 4/,
    );
    const all = [1, 2, 3, 4]
      .map((i) => readFileSync(join(AMAZON_ROOTS, `Amazon_Root_CA_${i}.crt`), "utf8"))
      .join("\n");
    expect(() =>
      pinnedPemBundle(`${all}\n${kms.tls.caPem}`, AMAZON_TRUST_ROOTS_SHA256, "extended"),
    ).toThrow(/not exactly the pinned/);
    expect(pinnedPemBundle(all, AMAZON_TRUST_ROOTS_SHA256, "all")).toHaveLength(4);
  });
});

describe("a burst of loads", () => {
  it("queues KMS calls in the enclave rather than overrunning the relay's connection cap", async () => {
    const table = nodes[0].boot();
    const replies = await Promise.all(
      Array.from({ length: 24 }, () => table.load(loadRequest(sealed[0]))),
    );
    expect(replies.every((r) => r.walletId === WALLET)).toBe(true);
  }, 120_000);
});
