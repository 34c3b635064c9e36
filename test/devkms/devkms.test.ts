/**
 * The development KMS as a separate process, driven by the unmodified AWS SDK (`KMSClient`),
 * with attestation documents from the simulated NSM (development PKI) checked by the real
 * verifier, and CiphertextForRecipient opened by the enclave's CMS code.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  InvalidCiphertextException,
  KMSClient,
  MalformedPolicyDocumentException,
  NotFoundException,
  PutKeyPolicyCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDevelopmentPki,
  derToPem,
  renewLeaf,
  type DevelopmentPki,
} from "../../src/dev/dev-pki.ts";
import { pcr0ForCode, SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { openBlob } from "../../src/devkms/ciphertext-blob.ts";
import { decryptCiphertextForRecipient } from "../../src/enclave/cms.ts";
import { expectAccessDenied, rejected } from "./refusals.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const FIXTURES = resolve(ROOT, "../shared/fixtures/nitro");
const haveFixtures = existsSync(join(FIXTURES, "aws-nitro-enclaves-root-g1.pem"));
if (!haveFixtures)
  console.warn(`devkms.test: SKIPPING the real-AWS-document checks: ${FIXTURES} is absent`);

const CREDENTIALS = {
  accessKeyId: "AKIADEVKMSTEST000001",
  secretAccessKey: "devkms/test/secret/0123456789abcdefghij",
};
const REGION = "us-east-1";
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// ------------------------------------------------------------------ process harness

interface Running {
  url: string;
  proc: ChildProcess;
  stderr: () => string;
}

const started = new Set<ChildProcess>();

function startDevKms(args: string[]): Promise<Running> {
  const proc = spawn(BUN, ["run", "src/devkms/main.ts", "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(proc);
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString("utf8")).slice(-8000);
  });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(
      () => fail(new Error("devkms did not report its address within 20 s")),
      20_000,
    );
    const lines = createInterface({ input: proc.stdout! });
    const fail = (e: Error) => {
      clearTimeout(timer);
      lines.close();
      reject(new Error(`${e.message}\n--- devkms stderr ---\n${stderr}`));
    };
    proc.once("exit", (code) => fail(new Error(`devkms exited early with code ${code}`)));
    lines.once("line", (line) => {
      clearTimeout(timer);
      proc.removeAllListeners("exit");
      try {
        const ready = JSON.parse(line) as { event: string; url: string };
        if (ready.event !== "listening" || !ready.url.startsWith("http://127.0.0.1:"))
          throw new Error(`unexpected first line ${line}`);
        resolvePromise({ url: ready.url, proc, stderr: () => stderr });
      } catch (e) {
        fail(e as Error);
      }
    });
  });
}

function stopDevKms(proc: ChildProcess): Promise<void> {
  started.delete(proc);
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const force = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    proc.once("exit", () => {
      clearTimeout(force);
      done();
    });
    proc.kill("SIGTERM");
  });
}

function client(url: string, credentials = CREDENTIALS): KMSClient {
  // One attempt: a refused request must surface at once, not after retries with back-off.
  return new KMSClient({ endpoint: url, region: REGION, credentials, maxAttempts: 1 });
}

// ------------------------------------------------------------------ the enclave side

interface Enclave {
  privateKey: KeyObject;
  spki: Uint8Array;
}

function newEnclave(): Enclave {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })) };
}

const recipient = (doc: Uint8Array) => ({
  AttestationDocument: doc,
  KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256" as const,
});

// ------------------------------------------------------------------ tests

describe("devkms (separate process, real AWS SDK, simulated NSM)", () => {
  let dir: string;
  let pki: DevelopmentPki;
  let rootPem: string;
  let kms: Running;
  let kmsClient: KMSClient;
  let enclave: Enclave;
  let nsm: SimulatedNsm;
  const pcr0 = pcr0ForCode([new TextEncoder().encode("signing-enclave build 1")]);
  const otherPcr0 = pcr0ForCode([new TextEncoder().encode("signing-enclave build 2 (tampered)")]);
  let keyId: string;
  let dataKey: Uint8Array;
  let dataKeyBlob: Uint8Array;

  const serverArgs = () => [
    "--data-dir",
    join(dir, "data"),
    "--credentials",
    `${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`,
    "--dev-root",
    rootPem,
    "--allow-development",
    ...(haveFixtures ? ["--nitro-root", join(FIXTURES, "aws-nitro-enclaves-root-g1.pem")] : []),
    "--quiet",
  ];

  const policy = () =>
    JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "KeyAdministration",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::111122223333:root" },
          Action: ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:Encrypt"],
          Resource: "*",
        },
        {
          Sid: "ReleaseOnlyToTheSigningEnclave",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::111122223333:role/signing-host" },
          Action: ["kms:Decrypt", "kms:GenerateDataKey"],
          Resource: "*",
          Condition: {
            // Condition keys are case-insensitive; IgnoreCase lets the digest be written in upper case.
            StringEqualsIgnoreCase: {
              "kms:RecipientAttestation:ImageSha384": hex(pcr0).toUpperCase(),
            },
            StringEquals: { "KMS:recipientattestation:pcr0": hex(pcr0) },
          },
        },
      ],
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "devkms-test-"));
    pki = createDevelopmentPki();
    rootPem = join(dir, "dev-root.pem");
    writeFileSync(rootPem, derToPem(pki.root.der));
    enclave = newEnclave();
    nsm = new SimulatedNsm({ pki, pcrs: { 0: pcr0 } });
    kms = await startDevKms(serverArgs());
    kmsClient = client(kms.url);
  });

  afterAll(async () => {
    kmsClient?.destroy();
    await Promise.all([...started].map(stopDevKms));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const attest = (publicKey = enclave.spki, from = nsm) => from.attest({ publicKey });

  it("--help describes the options and exits 0", async () => {
    const out = await new Promise<{ code: number | null; text: string }>((done) => {
      const p = spawn(BUN, ["run", "src/devkms/main.ts", "--help"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      let text = "";
      p.stdout!.on("data", (d: Buffer) => (text += d.toString()));
      p.once("exit", (code) => done({ code, text }));
    });
    expect(out.code).toBe(0);
    for (const flag of ["--port", "--data-dir", "--credentials", "--dev-root", "--nitro-root"])
      expect(out.text).toContain(flag);
  });

  it("CreateKey, PutKeyPolicy with ImageSha384/PCR0 conditions, GetKeyPolicy, DescribeKey", async () => {
    const created = await kmsClient.send(
      new CreateKeyCommand({ Description: "tss share-wrapping key" }),
    );
    keyId = created.KeyMetadata!.KeyId!;
    expect(created.KeyMetadata).toMatchObject({
      KeyState: "Enabled",
      KeySpec: "SYMMETRIC_DEFAULT",
      KeyUsage: "ENCRYPT_DECRYPT",
      Enabled: true,
    });
    expect(created.KeyMetadata!.Arn).toBe(`arn:aws:kms:${REGION}:111122223333:key/${keyId}`);
    expect(created.KeyMetadata!.CreationDate).toBeInstanceOf(Date);

    await kmsClient.send(
      new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: policy() }),
    );
    const got = await kmsClient.send(
      new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: "default" }),
    );
    expect(JSON.parse(got.Policy!)).toEqual(JSON.parse(policy()));
    const described = await kmsClient.send(
      new DescribeKeyCommand({ KeyId: created.KeyMetadata!.Arn! }),
    );
    expect(described.KeyMetadata!.KeyId).toBe(keyId);
  });

  it("GenerateDataKey with a matching Recipient returns CiphertextForRecipient (no Plaintext) that the enclave opens", async () => {
    const out = await kmsClient.send(
      new GenerateDataKeyCommand({
        KeyId: keyId,
        KeySpec: "AES_256",
        EncryptionContext: { purpose: "share" },
        Recipient: recipient(attest()),
      }),
    );
    expect(out.Plaintext).toBeUndefined();
    expect(out.CiphertextForRecipient).toBeInstanceOf(Uint8Array);
    expect(out.CiphertextBlob!.length).toBeGreaterThan(32);
    dataKey = decryptCiphertextForRecipient(out.CiphertextForRecipient!, enclave.privateKey);
    dataKeyBlob = out.CiphertextBlob!;
    expect(dataKey).toHaveLength(32);
  });

  it("Decrypt with a Recipient later yields the same data key, again only for the enclave", async () => {
    const out = await kmsClient.send(
      new DecryptCommand({
        CiphertextBlob: dataKeyBlob,
        EncryptionContext: { purpose: "share" },
        Recipient: recipient(attest()),
      }),
    );
    expect(out.Plaintext).toBeUndefined();
    expect(out.KeyId).toBe(`arn:aws:kms:${REGION}:111122223333:key/${keyId}`);
    expect(
      hex(decryptCiphertextForRecipient(out.CiphertextForRecipient!, enclave.privateKey)),
    ).toBe(hex(dataKey));
    // Another enclave key in an otherwise identical document gets its own envelope, which ours cannot open.
    const stranger = newEnclave();
    const theirs = await kmsClient.send(
      new DecryptCommand({
        CiphertextBlob: dataKeyBlob,
        EncryptionContext: { purpose: "share" },
        Recipient: recipient(attest(stranger.spki)),
      }),
    );
    expect(() =>
      decryptCiphertextForRecipient(theirs.CiphertextForRecipient!, enclave.privateKey),
    ).toThrow(/different recipient key/);
    expect(
      hex(decryptCiphertextForRecipient(theirs.CiphertextForRecipient!, stranger.privateKey)),
    ).toBe(hex(dataKey));
  });

  it("denies a request without a Recipient when the policy requires attestation", async () => {
    await expectAccessDenied(
      kmsClient.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256" })),
      /not authorized to perform: kms:GenerateDataKey/,
    );
    await expectAccessDenied(
      kmsClient.send(
        new DecryptCommand({
          CiphertextBlob: dataKeyBlob,
          EncryptionContext: { purpose: "share" },
        }),
      ),
      /kms:Decrypt/,
    );
  });

  it("denies an authentic document from an enclave with the wrong PCR0", async () => {
    const impostor = new SimulatedNsm({ pki, pcrs: { 0: otherPcr0 } });
    await expectAccessDenied(
      kmsClient.send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          KeySpec: "AES_256",
          Recipient: recipient(attest(enclave.spki, impostor)),
        }),
      ),
      /not authorized/,
    );
    await expectAccessDenied(
      kmsClient.send(
        new DecryptCommand({
          CiphertextBlob: dataKeyBlob,
          EncryptionContext: { purpose: "share" },
          Recipient: recipient(attest(enclave.spki, impostor)),
        }),
      ),
    );
  });

  it("denies a document with one flipped byte, wherever it is", async () => {
    const doc = attest();
    for (const at of [
      10,
      Math.floor(doc.length / 3),
      Math.floor(doc.length / 2),
      doc.length - 200,
      doc.length - 1,
    ]) {
      const bad = doc.slice();
      bad[at]! ^= 0x01;
      await expectAccessDenied(
        kmsClient.send(
          new GenerateDataKeyCommand({
            KeyId: keyId,
            KeySpec: "AES_256",
            Recipient: recipient(bad),
          }),
        ),
        /attestation document .* not valid/,
      );
    }
  });

  it("denies a stale document and one whose signing certificate has expired", async () => {
    const tenMinutesAgo = new SimulatedNsm({
      pki,
      pcrs: { 0: pcr0 },
      clock: () => new Date(Date.now() - 10 * 60_000),
    });
    await expectAccessDenied(
      kmsClient.send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          KeySpec: "AES_256",
          Recipient: recipient(attest(enclave.spki, tenMinutesAgo)),
        }),
      ),
      /stale/,
    );
    const fourHoursAgo = new Date(Date.now() - 4 * 3_600_000);
    const oldLeaf = new SimulatedNsm({
      pki: renewLeaf(pki, fourHoursAgo),
      pcrs: { 0: pcr0 },
      clock: () => fourHoursAgo,
    });
    await expectAccessDenied(
      kmsClient.send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          KeySpec: "AES_256",
          Recipient: recipient(attest(enclave.spki, oldLeaf)),
        }),
      ),
      /expired|stale/,
    );
  });

  it("denies a debug-mode document (PCR0 all zero), even on a key whose policy has no conditions", async () => {
    const debug = new SimulatedNsm({ pki, pcrs: { 0: new Uint8Array(48) } });
    const open = await kmsClient.send(new CreateKeyCommand({}));
    await expectAccessDenied(
      kmsClient.send(
        new GenerateDataKeyCommand({
          KeyId: open.KeyMetadata!.KeyId!,
          KeySpec: "AES_256",
          Recipient: recipient(attest(enclave.spki, debug)),
        }),
      ),
      /debug/,
    );
    await expectAccessDenied(
      kmsClient.send(
        new GenerateRandomCommand({
          NumberOfBytes: 32,
          Recipient: recipient(attest(enclave.spki, debug)),
        }),
      ),
      /debug/,
    );
  });

  it.skipIf(!haveFixtures)(
    "denies real AWS Nitro documents from 2024 (expired chain) and the real debug document",
    async () => {
      for (const name of ["attestation-2024-09-07.b64", "attestation-debug-2024-09-07.b64"]) {
        const doc = new Uint8Array(
          Buffer.from(readFileSync(join(FIXTURES, name), "utf8").trim(), "base64"),
        );
        await expectAccessDenied(
          kmsClient.send(
            new GenerateRandomCommand({ NumberOfBytes: 32, Recipient: recipient(doc) }),
          ),
          /not valid/,
        );
      }
    },
  );

  it("GenerateRandom answers an attested Recipient with CiphertextForRecipient only", async () => {
    const out = await kmsClient.send(
      new GenerateRandomCommand({ NumberOfBytes: 48, Recipient: recipient(attest()) }),
    );
    expect(out.Plaintext).toBeUndefined();
    expect(
      decryptCiphertextForRecipient(out.CiphertextForRecipient!, enclave.privateKey),
    ).toHaveLength(48);
  });

  it("refuses bad SigV4: wrong secret, unknown access key, no signature", async () => {
    const wrongSecret = client(kms.url, {
      ...CREDENTIALS,
      secretAccessKey: `${CREDENTIALS.secretAccessKey}x`,
    });
    const e1 = await rejected(wrongSecret.send(new GenerateRandomCommand({ NumberOfBytes: 8 })));
    expect(e1.name).toBe("InvalidSignatureException");
    const unknown = client(kms.url, {
      accessKeyId: "AKIAUNKNOWNUNKNOWN00",
      secretAccessKey: CREDENTIALS.secretAccessKey,
    });
    const e2 = await rejected(unknown.send(new GenerateRandomCommand({ NumberOfBytes: 8 })));
    expect(e2.name).toBe("UnrecognizedClientException");
    wrongSecret.destroy();
    unknown.destroy();

    // A correctly signed request whose body is altered after signing (as by a man in the middle).
    const tampering = client(kms.url);
    const tamper = (next: (args: object) => Promise<unknown>) => async (args: object) => {
      const request = (args as { request: { body: string } }).request;
      request.body = request.body.replace('"NumberOfBytes":8', '"NumberOfBytes":9');
      return next(args);
    };
    type Middleware = Parameters<typeof tampering.middlewareStack.addRelativeTo>[0];
    tampering.middlewareStack.addRelativeTo(tamper as unknown as Middleware, {
      relation: "after",
      toMiddleware: "httpSigningMiddleware",
      name: "tamperAfterSigning",
    });
    const e3 = await rejected(tampering.send(new GenerateRandomCommand({ NumberOfBytes: 8 })));
    expect(e3.name).toBe("InvalidSignatureException");
    tampering.destroy();

    const res = await fetch(kms.url, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "TrentService.GenerateRandom",
      },
      body: JSON.stringify({ NumberOfBytes: 8 }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      __type: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    });
    const huge = await fetch(kms.url, { method: "POST", body: new Uint8Array(1024 * 1024) });
    expect(huge.status).toBe(413);
  });

  it("reports other failures with the SDK's own exception classes", async () => {
    await expect(
      kmsClient.send(new DescribeKeyCommand({ KeyId: "6f1c3d64-0000-4000-8000-000000000000" })),
    ).rejects.toBeInstanceOf(NotFoundException);
    await expect(
      kmsClient.send(
        new DecryptCommand({
          CiphertextBlob: dataKeyBlob,
          EncryptionContext: { purpose: "other" },
          Recipient: recipient(attest()),
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidCiphertextException);
    await expect(
      kmsClient.send(new DecryptCommand({ CiphertextBlob: new Uint8Array(64).fill(7) })),
    ).rejects.toBeInstanceOf(InvalidCiphertextException);
    // KMS's lockout safety check: a policy that would stop anyone from changing it again.
    const lockout = JSON.stringify({
      Statement: [{ Effect: "Allow", Action: "kms:Decrypt", Resource: "*" }],
    });
    await expect(
      kmsClient.send(
        new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: lockout }),
      ),
    ).rejects.toBeInstanceOf(MalformedPolicyDocumentException);
    const validation = await rejected(kmsClient.send(new GenerateDataKeyCommand({ KeyId: keyId })));
    expect(validation.name).toBe("ValidationException");
  });

  it("an explicit Deny wins over Allow kms:*, and a negated condition treats a missing Recipient as a mismatch", async () => {
    const guarded = JSON.stringify({
      Statement: [
        { Sid: "Everything", Effect: "Allow", Action: "kms:*", Resource: "*" },
        {
          Sid: "NoDecryptOutsideTheEnclave",
          Effect: "Deny",
          Action: ["kms:Decrypt", "kms:Generate*"],
          Resource: "*",
          Condition: { StringNotEqualsIgnoreCase: { "kms:RecipientAttestation:PCR0": hex(pcr0) } },
        },
      ],
    });
    const created = await kmsClient.send(new CreateKeyCommand({ Policy: guarded }));
    const id = created.KeyMetadata!.KeyId!;
    const enc = await kmsClient.send(
      new EncryptCommand({ KeyId: id, Plaintext: new Uint8Array(32).fill(5) }),
    );
    await expectAccessDenied(
      kmsClient.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })),
      /explicit deny/,
    );
    const impostor = new SimulatedNsm({ pki, pcrs: { 0: otherPcr0 } });
    await expectAccessDenied(
      kmsClient.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          Recipient: recipient(attest(enclave.spki, impostor)),
        }),
      ),
      /explicit deny/,
    );
    const ok = await kmsClient.send(
      new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, Recipient: recipient(attest()) }),
    );
    expect(decryptCiphertextForRecipient(ok.CiphertextForRecipient!, enclave.privateKey)).toEqual(
      new Uint8Array(32).fill(5),
    );
  });

  it("keeps key material sealed on disk (0600 files, no plaintext key material)", async () => {
    const enc = await kmsClient.send(
      new EncryptCommand({
        KeyId: keyId,
        Plaintext: new TextEncoder().encode("probe"),
        EncryptionContext: { probe: "1" },
      }),
    );
    const probeBlob = enc.CiphertextBlob!;
    const context = new Map([["probe", "1"]]);
    const dataDir = join(dir, "data");
    const files = [
      join(dataDir, "master.key"),
      ...readdirSync(join(dataDir, "keys")).map((n) => join(dataDir, "keys", n)),
    ];
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect(statSync(f).mode & 0o777).toBe(0o600);

    // Black-box: if any 32-byte window of any file, raw or base64/hex-decoded, opens a blob made
    // under the key, the key material is stored in a readable form.
    const candidates = (bytes: Uint8Array): Uint8Array[] => {
      const text = Buffer.from(bytes).toString("latin1");
      const decoded = [
        bytes,
        ...(text.match(/[A-Za-z0-9+/]{40,}={0,2}/g) ?? []).map(
          (t) => new Uint8Array(Buffer.from(t, "base64")),
        ),
        ...(text.match(/(?:[0-9a-fA-F]{2}){32,}/g) ?? []).map(
          (t) => new Uint8Array(Buffer.from(t, "hex")),
        ),
      ];
      return decoded.flatMap((d) =>
        Array.from({ length: Math.max(0, d.length - 31) }, (_, i) => d.subarray(i, i + 32)),
      );
    };
    let tried = 0;
    for (const f of files) {
      for (const key of candidates(new Uint8Array(readFileSync(f)))) {
        tried++;
        expect(() => openBlob(probeBlob, key, context)).toThrow();
      }
      const record = readFileSync(f, "latin1");
      expect(record).not.toContain("tss share-wrapping key"); // metadata and policy are sealed too
      expect(record).not.toContain("RecipientAttestation");
    }
    expect(tried).toBeGreaterThan(500);
  });

  it("after a restart with the same data dir, Decrypt (with Recipient) still returns the key", async () => {
    await stopDevKms(kms.proc);
    kmsClient.destroy();
    kms = await startDevKms(serverArgs());
    kmsClient = client(kms.url);
    const out = await kmsClient.send(
      new DecryptCommand({
        CiphertextBlob: dataKeyBlob,
        EncryptionContext: { purpose: "share" },
        Recipient: recipient(attest()),
      }),
    );
    expect(
      hex(decryptCiphertextForRecipient(out.CiphertextForRecipient!, enclave.privateKey)),
    ).toBe(hex(dataKey));
    // The policy survived the restart as well.
    await expectAccessDenied(
      kmsClient.send(
        new DecryptCommand({
          CiphertextBlob: dataKeyBlob,
          EncryptionContext: { purpose: "share" },
        }),
      ),
    );
  });
});
