/**
 * Starts the KMS stand-in for local runs, over HTTPS with a development CA,
 * and creates the cluster's share-wrapping key with the per-node policy:
 * each node's enclave may use only data keys whose encryption context names
 * its own node identity (its PCR4), and only when its attestation shows the
 * signing image and that PCR4.
 */
import { createHash, randomBytes } from "node:crypto";
import { Agent } from "node:https";
import { join } from "node:path";
import { CreateKeyCommand, KMSClient, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { toHex } from "../shared/hex.ts";
import { keyPolicyJson } from "../shared/key-policy.ts";
import { createDevTls, type DevTls } from "./dev-tls.ts";
import type { EnclaveKmsOptions } from "./enclave-process.ts";
import { startProcess, type Started } from "./processes.ts";

export interface DevKms {
  process: Started;
  /** https://127.0.0.1:PORT, what the harness's own client uses. */
  url: string;
  /** The stand-in's TCP port: what each host's KMS relay connects to. */
  port: number;
  /** What enclaves put in --kms-endpoint: a name the server certificate carries. */
  enclaveEndpoint: string;
  tls: DevTls;
  keyId: string;
  keyArn: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The key administrator's client; it trusts the development CA and nothing else. */
  client: KMSClient;
}

/** What a development enclave is told about this stand-in: its relay, endpoint, region, key and CA. */
export function enclaveKmsOptions(kms: DevKms, relayPath: string): EnclaveKmsOptions {
  return {
    relayPath,
    endpoint: kms.enclaveEndpoint,
    region: DEV_KMS_REGION,
    keyArn: kms.keyArn,
    caPem: kms.tls.caPem,
  };
}

/** A node the key policy lets use data keys: its name (for the Sid) and the PCR4 its enclave attests. */
export interface PolicyNode {
  name: string;
  pcr4Hex: string;
}

const ROOT = new URL("../..", import.meta.url).pathname;
export const DEV_KMS_REGION = "us-east-1";

/**
 * The development stand-in for a parent instance id: PCR4 on Nitro is the
 * hash of the parent instance's id, so each node's enclave gets a distinct
 * one that its host cannot choose (here the harness chooses it, standing in
 * for the hardware).
 */
export function devNodePcr4(nodeName: string): Uint8Array {
  return new Uint8Array(createHash("sha384").update(`tss-dev-instance:${nodeName}`).digest());
}
export const devNodePcr4Hex = (nodeName: string) => toHex(devNodePcr4(nodeName));

/**
 * The share-wrapping key's policy (one key for the cluster, one statement per
 * node): Decrypt and GenerateDataKey only with a Recipient whose attestation
 * shows the signing image and node N's PCR4, and only for an encryption
 * context whose `node` is that same PCR4. So node 1's enclave asking for node
 * 2's data key with node 2's context fails the PCR4 condition, and with its
 * own context fails the blob's context binding. Built by the same function as
 * `tss policy` (src/shared/key-policy.ts), so every test exercises the policy
 * operators install; principals are "*" because the stand-in has one tenant.
 */
export function nodeBoundPolicy(pcr0Hex: string, nodes: readonly PolicyNode[]): string {
  return keyPolicyJson({
    images: [pcr0Hex],
    nodes,
    adminPrincipal: "*",
    enclavePrincipal: "*",
  });
}

/** A KMS client of the harness's own, trusting only the development CA. */
export function devKmsClient(
  url: string,
  caPem: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): KMSClient {
  return new KMSClient({
    endpoint: url,
    region: DEV_KMS_REGION,
    // A copy: the SDK marks the credentials object it is given (a `$source` field).
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
    },
    requestHandler: { httpsAgent: new Agent({ ca: caPem, keepAlive: true }) },
  });
}

export interface StartDevKmsOptions {
  dataDir: string;
  /** The development attestation root (PEM file) whose documents the stand-in accepts. */
  devRootPem: string;
  /** The image (PCR0) the policy allows. */
  pcr0Hex: string;
  nodes: readonly PolicyNode[];
}

export async function startDevKms(o: StartDevKmsOptions): Promise<DevKms> {
  const accessKeyId = "AKIA" + randomBytes(8).toString("hex").toUpperCase();
  const secretAccessKey = randomBytes(24).toString("base64");
  const tls = createDevTls(join(o.dataDir, "devkms-tls"));
  const proc = await startProcess(
    [
      process.execPath,
      join(ROOT, "src/devkms/main.ts"),
      "--port",
      "0",
      "--data-dir",
      join(o.dataDir, "devkms"),
      "--dev-root",
      o.devRootPem,
      "--allow-development",
      "--tls-cert",
      tls.certFile,
      "--tls-key",
      tls.keyFile,
      "--quiet",
    ],
    {
      name: "devkms",
      readyEvent: "listening",
      env: { DEVKMS_CREDENTIALS: `${accessKeyId}:${secretAccessKey}` },
    },
  );
  try {
    const url = String(proc.ready.url);
    const port = Number(proc.ready.port);
    const client = devKmsClient(url, tls.caPem, { accessKeyId, secretAccessKey });
    const key = await client.send(
      new CreateKeyCommand({ Description: "tss share data keys (local)" }),
    );
    const keyId = key.KeyMetadata!.KeyId!;
    await client.send(
      new PutKeyPolicyCommand({
        KeyId: keyId,
        PolicyName: "default",
        Policy: nodeBoundPolicy(o.pcr0Hex, o.nodes),
      }),
    );
    return {
      process: proc,
      url,
      port,
      enclaveEndpoint: `https://localhost:${port}`,
      tls,
      keyId,
      keyArn: key.KeyMetadata!.Arn!,
      accessKeyId,
      secretAccessKey,
      client,
    };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
