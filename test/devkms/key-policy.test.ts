/**
 * `tss policy` end to end: the policy the CLI prints (a separate process,
 * exactly what an operator would install) loaded into the KMS stand-in
 * through the real AWS SDK, then
 *  - real development enclaves (separate processes, PCR0 of the bundled image
 *    from src/harness/enclave-image.ts) doing their own KMS path through their
 *    hosts' relays: the policy for their image admits a 2-of-2 DKG (each
 *    enclave's GenerateDataKey) and signing; the policy printed for any other
 *    PCR0 refuses the DKG;
 *  - attestation documents reporting that PCR0 and other PCR0s (one bit off,
 *    a different build), on a key created with the policy (CreateKey Policy):
 *    only the image's PCR0 and the node's own PCR4 get a data key;
 *  - malformed arguments: one-sentence errors, exit status 2, nothing on stdout;
 *    no node binding only with an explicit --any-node;
 *  - keyPolicy() itself (what the harness calls too) refusing all-zero and
 *    short PCRs and a policy bound to no node unless asked for.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateKeyCommand,
  GenerateDataKeyCommand,
  GetKeyPolicyCommand,
  PutKeyPolicyCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevelopmentPki, derToPem } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm, pcr0ForCode } from "../../src/dev/simulated-nsm.ts";
import { devKmsClient, devNodePcr4, startDevKms, type DevKms } from "../../src/harness/dev-kms.ts";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { createWallet, signDigest } from "../../src/host/coordinator.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { keyPolicy, KeyPolicyError } from "../../src/shared/key-policy.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { runTss } from "../helpers/run-cli.ts";
import { expectAccessDenied } from "./refusals.ts";

const ADMIN = "arn:aws:iam::111122223333:role/tss-key-admin";
const PARENT = "arn:aws:iam::111122223333:role/tss-parent-instance";

let dir: string;
let ln: LocalNodes;

/** The policy `tss policy` prints for these images and nodes (fails the test on any error). */
async function printedPolicy(pcr0s: string[], nodes: { name: string; pcr4Hex: string }[]) {
  const r = await runTss(
    [
      "policy",
      ...pcr0s.flatMap((p) => ["--pcr0", p]),
      ...nodes.flatMap((n) => ["--node-pcr", `${n.name}=${n.pcr4Hex}`]),
      "--admin-role",
      ADMIN,
      "--enclave-role",
      PARENT,
    ],
    dir,
  );
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The same PCR with one bit changed: the nearest other image. */
function oneBitOff(hex: string): string {
  const b = fromHex(hex);
  b[b.length - 1]! ^= 1;
  return toHex(b);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-key-policy-"));
  ln = await startLocalNodes({ nodes: 2, dataDir: join(dir, "nodes") });
}, 120_000);

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const clusterNodes = () => ln.hosts.map((h, i) => ({ name: h.nodeId, pcr4Hex: ln.pcr4Hex[i]! }));

async function install(policy: string) {
  await ln.kms.send(
    new PutKeyPolicyCommand({ KeyId: ln.kmsKeyId, PolicyName: "default", Policy: policy }),
  );
  const back = await ln.kms.send(
    new GetKeyPolicyCommand({ KeyId: ln.kmsKeyId, PolicyName: "default" }),
  );
  expect(JSON.parse(back.Policy!)).toEqual(JSON.parse(policy));
}

describe("tss policy, installed in the KMS stand-in, with real enclaves", () => {
  it("prints a policy real KMS takes: Version, Sids, principals, attested conditions, an administrator", async () => {
    const doc = JSON.parse(await printedPolicy([ln.image.pcr0Hex], clusterNodes()));
    expect(doc.Version).toBe("2012-10-17");
    const [admin, ...nodes] = doc.Statement;
    expect(admin).toMatchObject({ Sid: "KeyAdministration", Principal: { AWS: ADMIN } });
    // The administrator manages the key but can neither use it nor grant its use.
    for (const a of ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:*"])
      expect(admin.Action).not.toContain(a);
    expect(admin.Action).toContain("kms:PutKeyPolicy");
    expect(nodes).toHaveLength(2);
    for (const [i, s] of nodes.entries()) {
      expect(s.Sid).toMatch(/^[A-Za-z0-9]+$/);
      expect(s.Principal).toEqual({ AWS: PARENT });
      expect(s.Action).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);
      expect(s.Condition.StringEqualsIgnoreCase).toEqual({
        "kms:RecipientAttestation:ImageSha384": ln.image.pcr0Hex,
        "kms:RecipientAttestation:PCR4": ln.pcr4Hex[i],
      });
      expect(s.Condition.StringEquals).toEqual({
        "kms:EncryptionContext:purpose": "tss-share",
        "kms:EncryptionContext:node": ln.pcr4Hex[i],
      });
    }
  });

  it("the policy printed for another image refuses the enclaves' data keys: no wallet is created", async () => {
    await install(await printedPolicy([oneBitOff(ln.image.pcr0Hex)], clusterNodes()));
    const err = await createWallet(ln.hosts, 2).catch((e: unknown) => e);
    // The enclave's own GenerateDataKey, refused by the stand-in's policy evaluation.
    expect(String(err)).toMatch(/kms_failed: KMS GenerateDataKey failed: AccessDeniedException/);
    // Neither enclave got a data key, so neither host stored a share.
    for (const h of ln.hosts)
      expect(h.db.all("SELECT count(*) AS n FROM shares")).toEqual([{ n: 0 }]);
  }, 60_000);

  it("the policy printed for the enclaves' own image admits them: DKG seals under their data keys, the wallet signs", async () => {
    await install(await printedPolicy([ln.image.pcr0Hex], clusterNodes()));
    const wallet = await createWallet(ln.hosts, 2);
    const digest = randomBytes(32);
    const sig = await signDigest(ln.hosts, wallet, 0, digest);
    expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
  }, 60_000);

  it("during an upgrade (two --pcr0) it admits the running image as well", async () => {
    await install(
      await printedPolicy([pcr0ForCodeHex("the next build"), ln.image.pcr0Hex], clusterNodes()),
    );
    await expect(createWallet(ln.hosts, 2)).resolves.toMatchObject({ threshold: 2 });
  }, 60_000);
});

const pcr0ForCodeHex = (code: string) => toHex(pcr0ForCode([new TextEncoder().encode(code)]));

describe("tss policy on a key created with it: only that PCR0 and the node's own PCR4", () => {
  let kms: DevKms;
  let keyArn: string;
  let enclaveClient: ReturnType<typeof devKmsClient>;
  let attest: (pcr0: Uint8Array, node: string) => Uint8Array;
  const spki = new Uint8Array(
    generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      type: "spki",
      format: "der",
    }),
  );

  beforeAll(async () => {
    const pki = createDevelopmentPki();
    const rootPem = join(dir, "dev-root.pem");
    writeFileSync(rootPem, derToPem(pki.root.der));
    kms = await startDevKms({
      dataDir: join(dir, "kms2"),
      devRootPem: rootPem,
      pcr0Hex: ln.image.pcr0Hex,
      nodes: [{ name: "stand-in", pcr4Hex: toHex(devNodePcr4("stand-in")) }],
    });
    const policy = await printedPolicy(
      [ln.image.pcr0Hex],
      ["node-1", "node-2"].map((name) => ({ name, pcr4Hex: toHex(devNodePcr4(name)) })),
    );
    const key = await kms.client.send(
      new CreateKeyCommand({ Description: "tss share data keys", Policy: policy }),
    );
    keyArn = key.KeyMetadata!.Arn!;
    enclaveClient = devKmsClient(kms.enclaveEndpoint, kms.tls.caPem, kms);
    attest = (pcr0, node) =>
      new SimulatedNsm({ pki, pcrs: { 0: pcr0, 4: devNodePcr4(node) } }).attest({
        publicKey: spki,
      });
  }, 60_000);

  afterAll(async () => {
    enclaveClient?.destroy();
    await kms?.process.stop();
  });

  const generate = (pcr0: Uint8Array, node: string, contextNode = node) =>
    enclaveClient.send(
      new GenerateDataKeyCommand({
        KeyId: keyArn,
        KeySpec: "AES_256",
        EncryptionContext: {
          purpose: "tss-share",
          wallet: "w-1",
          party: "1",
          generation: "0",
          node: toHex(devNodePcr4(contextNode)),
        },
        Recipient: {
          AttestationDocument: attest(pcr0, node),
          KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        },
      }),
    );

  it("an enclave reporting the image's PCR0 gets its data key (wrapped to its Recipient only)", async () => {
    const r = await generate(ln.image.pcr0, "node-1");
    expect(r.KeyId).toBe(keyArn);
    expect(r.Plaintext).toBeUndefined();
    expect(r.CiphertextForRecipient?.length).toBeGreaterThan(0);
  });

  it("an enclave reporting any other PCR0 is refused", async () => {
    for (const other of [
      fromHex(oneBitOff(ln.image.pcr0Hex)),
      pcr0ForCode([new TextEncoder().encode("another build")]),
      new Uint8Array(48),
    ])
      await expectAccessDenied(generate(other, "node-1"));
  });

  it("the image on another node's identity, or for another node's shares, is refused", async () => {
    await expectAccessDenied(generate(ln.image.pcr0, "node-3"));
    await expectAccessDenied(generate(ln.image.pcr0, "node-1", "node-2"));
  });

  it("without a Recipient (the parent's role alone) there is no data key", async () => {
    await expectAccessDenied(
      enclaveClient.send(
        new GenerateDataKeyCommand({
          KeyId: keyArn,
          KeySpec: "AES_256",
          EncryptionContext: { purpose: "tss-share", node: toHex(devNodePcr4("node-1")) },
        }),
      ),
    );
  });
});

describe("tss policy refuses malformed input in one sentence, exit status 2", () => {
  const good = "ab".repeat(48);
  const cases: [string[], RegExp][] = [
    [["--pcr0", "abc"], /--pcr0 must be 96 hex characters .* not 3/],
    [["--pcr0", `${good}00`], /--pcr0 must be 96 hex characters .* not 98/],
    [["--pcr0", `${good.slice(2)}zz`], /--pcr0 must be hex .* "z"/],
    [["--pcr0", "00".repeat(48)], /all zeros: .*debug-mode enclave/],
    [["--pcr0", good, "--node-pcr", "node-1=12"], /node-1's PCR4 must be 96 hex/],
    [["--pcr0", good, "--node-pcr", "no de=" + good], /node name must be/],
    [["--pcr0", good, "--node-pcr", `a=${good}`, "--node-pcr", `b=${good}`], /share the PCR4/],
    [["--pcr0", good, "--pcr0", good], /same image/],
    [["--node-pcr", `a=${good}`], /needs --pcr0 HEX/],
    [["--pcr0", good], /needs --node-pcr NAME=HEX for each node .* or --any-node/],
    [["--pcr0", good, "--any-node", "--node-pcr", `a=${good}`], /exclude each other/],
  ];
  it.each(cases)("%j", async (args, message) => {
    const withRoles = [...args, "--admin-role", ADMIN, "--enclave-role", PARENT];
    const r = await runTss(["policy", ...withRoles], dir);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("needs both roles, as IAM ARNs", async () => {
    const noAdmin = await runTss(["policy", "--pcr0", good, "--enclave-role", PARENT], dir);
    expect(noAdmin.status).toBe(2);
    expect(noAdmin.stderr).toMatch(/--admin-role ARN/);
    const badArn = await runTss(
      ["policy", "--pcr0", good, "--admin-role", "tss-admin", "--enclave-role", PARENT],
      dir,
    );
    expect(badArn.status).toBe(2);
    expect(badArn.stderr).toMatch(/--admin-role must be an IAM ARN/);
  });
});

describe("tss policy --any-node", () => {
  const good = "ab".repeat(48);
  it("prints a policy bound to the image only, and warns what it gives up", async () => {
    const r = await runTss(
      ["policy", "--pcr0", good, "--any-node", "--admin-role", ADMIN, "--enclave-role", PARENT],
      dir,
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: --any-node: .* every node's shares/);
    const [, ...enclaves] = JSON.parse(r.stdout).Statement;
    expect(enclaves).toHaveLength(1);
    expect(enclaves[0].Condition.StringEqualsIgnoreCase).toEqual({
      "kms:RecipientAttestation:ImageSha384": good,
    });
  });

  it("applies to tss policy only", async () => {
    const r = await runTss(["nodes", "--any-node"], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--any-node does not apply to tss nodes/);
  });
});

describe("keyPolicy() checks what it is given, whoever calls it (the CLI, the harness)", () => {
  const good = "ab".repeat(48);
  const node = (pcr4Hex: string) => [{ name: "n1", pcr4Hex }];
  const roles = { adminPrincipal: "*", enclavePrincipal: "*" };
  const cases: [string, Parameters<typeof keyPolicy>[0], RegExp][] = [
    [
      "an all-zero PCR0",
      { ...roles, images: ["00".repeat(48)], nodes: node(good) },
      /PCR0 is all zeros/,
    ],
    [
      "an all-zero PCR4",
      { ...roles, images: [good], nodes: node("00".repeat(48)) },
      /n1's PCR4 is all zeros/,
    ],
    // Even-length hex, all the old check wanted, but a SHA-256, not a SHA-384.
    [
      "a 64-hex PCR0",
      { ...roles, images: ["ab".repeat(32)], nodes: node(good) },
      /PCR0 must be 96 hex .* not 64/,
    ],
    [
      "a 98-hex PCR4",
      { ...roles, images: [good], nodes: node(`${good}ab`) },
      /PCR4 must be 96 hex .* not 98/,
    ],
    ["no node without anyNode", { ...roles, images: [good], nodes: [] }, /names no node/],
    [
      "nodes with anyNode",
      { ...roles, images: [good], nodes: node(good), anyNode: true },
      /nodes and any node/,
    ],
  ];
  it.each(cases)("refuses %s", (_what, o, message) => {
    expect(() => keyPolicy(o)).toThrow(KeyPolicyError);
    expect(() => keyPolicy(o)).toThrow(message);
  });

  it("builds a node-bound policy, or with anyNode an image-only one", () => {
    expect(keyPolicy({ ...roles, images: [good], nodes: node(good) }).Statement).toHaveLength(2);
    const any = keyPolicy({ ...roles, images: [good], nodes: [], anyNode: true });
    expect(any.Statement.map((st) => st.Sid)).toEqual([
      "KeyAdministration",
      "ShareDataKeysForAttestedImage",
    ]);
  });
});
