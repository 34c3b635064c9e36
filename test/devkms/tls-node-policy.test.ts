/**
 * The KMS stand-in as the harness runs it: its own process over HTTPS with a
 * development CA (src/harness/dev-tls.ts), the harness's admin client
 * trusting that CA only, and the per-node key policy
 * (src/harness/dev-kms.ts nodeBoundPolicy) evaluated as AWS documents it:
 * `kms:RecipientAttestation:PCR4` and `kms:EncryptionContext:<key>`
 * conditions, the context key after the prefix case-sensitive, the prefix
 * not. Attestation documents come from simulated NSMs with one PCR4 per node.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  InvalidCiphertextException,
  KMSClient,
  MalformedPolicyDocumentException,
  PutKeyPolicyCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevelopmentPki, derToPem } from "../../src/dev/dev-pki.ts";
import { pcr0ForCode, SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { evaluatePolicy, parsePolicy, encryptionContextKey } from "../../src/devkms/policy.ts";
import {
  devKmsClient,
  devNodePcr4,
  devNodePcr4Hex,
  nodeBoundPolicy,
  startDevKms,
  type DevKms,
} from "../../src/harness/dev-kms.ts";
import { toHex } from "../../src/shared/hex.ts";
import { expectAccessDenied } from "./refusals.ts";

const pcr0 = pcr0ForCode([new TextEncoder().encode("signing-enclave build 1")]);
const pcr0Hex = toHex(pcr0);
const NODES = ["node-1", "node-2"];

let dir: string;
let kms: DevKms;
let admin: KMSClient;
let enclaveClient: KMSClient;
let attest: Record<string, () => Uint8Array>;

const spki = new Uint8Array(
  generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
    type: "spki",
    format: "der",
  }),
);

/** The encryption context an enclave builds for a share (contract item 7). */
const shareContext = (node: string, generation = 0) => ({
  purpose: "tss-share",
  wallet: "w-1",
  party: "1",
  generation: String(generation),
  node: devNodePcr4Hex(node),
});

const recipient = (doc: Uint8Array) => ({
  AttestationDocument: doc,
  KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256" as const,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "devkms-tls-"));
  const pki = createDevelopmentPki();
  const rootPem = join(dir, "dev-root.pem");
  writeFileSync(rootPem, derToPem(pki.root.der));
  kms = await startDevKms({
    dataDir: dir,
    devRootPem: rootPem,
    pcr0Hex,
    nodes: NODES.map((name) => ({ name, pcr4Hex: devNodePcr4Hex(name) })),
  });
  admin = kms.client;
  // What an enclave's client looks like from the stand-in's side: same credentials, dev CA.
  enclaveClient = devKmsClient(kms.enclaveEndpoint, kms.tls.caPem, kms);
  attest = Object.fromEntries(
    [...NODES, "node-3"].map((n) => {
      const nsm = new SimulatedNsm({ pki, pcrs: { 0: pcr0, 4: devNodePcr4(n) } });
      return [n, () => nsm.attest({ publicKey: spki })];
    }),
  );
});

afterAll(async () => {
  admin?.destroy();
  enclaveClient?.destroy();
  await kms?.process.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const generate = (node: string, contextOf: string) =>
  enclaveClient.send(
    new GenerateDataKeyCommand({
      KeyId: kms.keyArn,
      KeySpec: "AES_256",
      EncryptionContext: shareContext(contextOf),
      Recipient: recipient(attest[node]!()),
    }),
  );

const decrypt = (node: string, blob: Uint8Array, contextOf: string) =>
  enclaveClient.send(
    new DecryptCommand({
      KeyId: kms.keyArn,
      CiphertextBlob: blob,
      EncryptionContext: shareContext(contextOf),
      Recipient: recipient(attest[node]!()),
    }),
  );

describe("KMS stand-in over HTTPS", () => {
  it("serves HTTPS only; a client that trusts the development CA connects by IP and by name", async () => {
    expect(kms.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kms.enclaveEndpoint).toMatch(/^https:\/\/localhost:\d+$/);
    // Both names in the certificate verify (the admin client uses the IP, enclaves the name).
    await expect(generate("node-1", "node-1")).resolves.toMatchObject({ KeyId: kms.keyArn });
  });

  it("a client that does not trust the development CA is refused by its own TLS check", async () => {
    const untrusted = new KMSClient({
      endpoint: kms.url,
      region: "us-east-1",
      credentials: kms,
      maxAttempts: 1,
    });
    try {
      const e = await untrusted
        .send(new GenerateDataKeyCommand({ KeyId: kms.keyArn, KeySpec: "AES_256" }))
        .then(
          () => new Error("expected a TLS failure") as Error & { code?: string },
          (err: unknown) => err as Error & { code?: string },
        );
      expect(e).toBeInstanceOf(Error);
      expect(`${e.code ?? ""} ${e.message}`).toMatch(
        /certificate|self[- ]signed|UNABLE_TO_VERIFY|SELF_SIGNED/i,
      );
    } finally {
      untrusted.destroy();
    }
    // Plain HTTP to the same port is not an API.
    const plain = await fetch(kms.url.replace("https:", "http:"), { method: "POST" }).then(
      (r) => r.status,
      () => "refused",
    );
    expect(plain).not.toBe(200);
  });
});

describe("per-node key policy: ImageSha384 + PCR4 + kms:EncryptionContext:node", () => {
  let blob1: Uint8Array;

  it("lets a node's enclave create and open data keys for its own context, as CiphertextForRecipient only", async () => {
    const g = await generate("node-1", "node-1");
    expect(g.Plaintext).toBeUndefined();
    expect(g.CiphertextForRecipient!.length).toBeGreaterThan(100);
    blob1 = g.CiphertextBlob!;
    const d = await decrypt("node-1", blob1, "node-1");
    expect(d.Plaintext).toBeUndefined();
    expect(d.CiphertextForRecipient!.length).toBeGreaterThan(100);
  });

  it("refuses node 1's enclave node 2's data key: AccessDenied with node 2's context, InvalidCiphertext with its own", async () => {
    const blob2 = (await generate("node-2", "node-2")).CiphertextBlob!;
    await expectAccessDenied(
      decrypt("node-1", blob2, "node-2"),
      /not authorized to perform: kms:Decrypt/,
    );
    await expect(decrypt("node-1", blob2, "node-1")).rejects.toBeInstanceOf(
      InvalidCiphertextException,
    );
    // Nor can it mint keys in node 2's name, and a node outside the policy gets nothing.
    await expectAccessDenied(generate("node-1", "node-2"));
    await expectAccessDenied(generate("node-3", "node-3"));
    await expectAccessDenied(decrypt("node-3", blob1, "node-1"));
  });

  it("refuses a request without a Recipient or with another purpose, even from the right credentials", async () => {
    await expectAccessDenied(
      admin.send(
        new DecryptCommand({
          KeyId: kms.keyArn,
          CiphertextBlob: blob1,
          EncryptionContext: shareContext("node-1"),
        }),
      ),
    );
    await expectAccessDenied(
      enclaveClient.send(
        new GenerateDataKeyCommand({
          KeyId: kms.keyArn,
          KeySpec: "AES_256",
          EncryptionContext: { ...shareContext("node-1"), purpose: "something-else" },
          Recipient: recipient(attest["node-1"]!()),
        }),
      ),
    );
  });

  it("PutKeyPolicy refuses a kms:EncryptionContext: condition without a context key", async () => {
    const bad = JSON.parse(nodeBoundPolicy(pcr0Hex, [{ name: "n", pcr4Hex: "ab".repeat(48) }]));
    bad.Statement[1].Condition.StringEquals = { "kms:EncryptionContext:": "x" };
    await expect(
      admin.send(
        new PutKeyPolicyCommand({
          KeyId: kms.keyId,
          PolicyName: "default",
          Policy: JSON.stringify(bad),
        }),
      ),
    ).rejects.toBeInstanceOf(MalformedPolicyDocumentException);
  });
});

describe("kms:EncryptionContext:<key> evaluation", () => {
  const policyWith = (conditionKey: string, value: string) =>
    parsePolicy(
      JSON.stringify({
        Statement: [
          {
            Effect: "Allow",
            Action: "kms:Decrypt",
            Resource: "*",
            Condition: { StringEquals: { [conditionKey]: value } },
          },
        ],
      }),
    );
  const request = (context: Record<string, string>) => ({
    action: "kms:Decrypt",
    resource: "arn:aws:kms:us-east-1:111122223333:key/k",
    keys: new Map(Object.entries(context).map(([k, v]) => [encryptionContextKey(k), v])),
  });

  it("the prefix is case-insensitive", () => {
    for (const prefix of [
      "kms:EncryptionContext:",
      "KMS:ENCRYPTIONCONTEXT:",
      "kms:encryptioncontext:",
    ])
      expect(evaluatePolicy(policyWith(`${prefix}node`, "abc"), request({ node: "abc" }))).toBe(
        "allow",
      );
  });

  it("the context key after it and (with StringEquals) the value are case-sensitive; absent means no match", () => {
    expect(
      evaluatePolicy(policyWith("kms:EncryptionContext:Node", "abc"), request({ node: "abc" })),
    ).toBe("implicit-deny");
    expect(
      evaluatePolicy(policyWith("kms:EncryptionContext:node", "ABC"), request({ node: "abc" })),
    ).toBe("implicit-deny");
    expect(evaluatePolicy(policyWith("kms:EncryptionContext:node", "abc"), request({}))).toBe(
      "implicit-deny",
    );
  });
});
