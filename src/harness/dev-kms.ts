/**
 * Starts the KMS stand-in for local runs and creates the share-wrapping key
 * whose policy releases data keys only to enclaves of one image (PCR0).
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { CreateKeyCommand, KMSClient, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { startProcess, type Started } from "./processes.ts";

export interface DevKms {
  process: Started;
  url: string;
  keyId: string;
  accessKeyId: string;
  secretAccessKey: string;
  client: KMSClient;
}

const ROOT = new URL("../..", import.meta.url).pathname;

export function imagePolicy(pcr0Hex: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "Administration",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"],
        Resource: "*",
      },
      {
        Sid: "DataKeysOnlyForTheSigningEnclaveImage",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey"],
        Resource: "*",
        Condition: { StringEqualsIgnoreCase: { "kms:RecipientAttestation:ImageSha384": pcr0Hex } },
      },
    ],
  });
}

export async function startDevKms(
  dataDir: string,
  devRootPem: string,
  allowedPcr0Hex: string,
): Promise<DevKms> {
  const accessKeyId = "AKIA" + randomBytes(8).toString("hex").toUpperCase();
  const secretAccessKey = randomBytes(24).toString("base64");
  const proc = await startProcess(
    [
      process.execPath,
      join(ROOT, "src/devkms/main.ts"),
      "--port",
      "0",
      "--data-dir",
      join(dataDir, "devkms"),
      "--dev-root",
      devRootPem,
      "--allow-development",
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
    const client = new KMSClient({
      endpoint: url,
      region: "us-east-1",
      credentials: { accessKeyId, secretAccessKey },
    });
    const key = await client.send(
      new CreateKeyCommand({ Description: "tss share data keys (local)" }),
    );
    const keyId = key.KeyMetadata!.KeyId!;
    await client.send(
      new PutKeyPolicyCommand({
        KeyId: keyId,
        PolicyName: "default",
        Policy: imagePolicy(allowedPcr0Hex),
      }),
    );
    return { process: proc, url, keyId, accessKeyId, secretAccessKey, client };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
