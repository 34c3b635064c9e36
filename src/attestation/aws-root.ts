/**
 * Trust anchors for the verifier. The AWS Nitro root is read from a PEM file the
 * operator provides and is accepted only if its SHA-256 fingerprint matches the
 * value pinned here, so a swapped file cannot widen trust; the certificate itself is
 * deliberately not shipped with the project.
 */
import { readFileSync, statSync } from "node:fs";
import { sha256 } from "@noble/hashes/sha2.js";
import type { TrustedRoot } from "./verifier.ts";

/** AWS Nitro Enclaves root G1 (CN=aws.nitro-enclaves), as published by AWS. */
export const AWS_NITRO_ROOT_SHA256 =
  "64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B";

/** A root certificate PEM is well under 1 KiB; anything far larger is not what we expect. */
const MAX_PEM_BYTES = 64 * 1024;

export class TrustedRootError extends Error {
  override name = "TrustedRootError";
}

export function fingerprintSha256(der: Uint8Array): string {
  return Array.from(sha256(der), (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/** The single certificate in a PEM text, as DER. */
export function pemToDer(pem: string, source = "PEM"): Uint8Array {
  const blocks = [
    ...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g),
  ];
  if (blocks.length !== 1)
    throw new TrustedRootError(
      `${source} must contain exactly one CERTIFICATE block, found ${blocks.length}`,
    );
  const b64 = blocks[0]![1]!.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    throw new TrustedRootError(`${source} holds invalid base64`);
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/** Loads the AWS root from `path`, refusing it unless its fingerprint is the pinned one. */
export function loadAwsNitroRoot(
  path: string,
  pinnedSha256: string = AWS_NITRO_ROOT_SHA256,
): TrustedRoot {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new TrustedRootError(
      `cannot read the AWS Nitro root certificate at ${path}: ${(e as Error).message}`,
    );
  }
  if (size > MAX_PEM_BYTES)
    throw new TrustedRootError(`${path} is ${size} bytes, too large for a root certificate PEM`);
  const der = pemToDer(readFileSync(path, "utf8"), path);
  const actual = fingerprintSha256(der);
  if (actual !== pinnedSha256.toUpperCase()) {
    throw new TrustedRootError(
      `refusing ${path} as the AWS Nitro root: SHA-256 fingerprint ${actual} differs from the pinned ${pinnedSha256}`,
    );
  }
  return { der, development: false };
}

export interface TrustedRootsConfig {
  /** PEM of the AWS Nitro root; checked against the pinned fingerprint. */
  awsRootPath?: string;
  /** DER of a development root (see dev-pki.ts). */
  developmentRoot?: Uint8Array;
  /** Must be true for `developmentRoot` to be accepted; never set it in production. */
  allowDevelopment: boolean;
}

let warnedDevelopment = false;

/** The roots to hand to verifyAttestationDocument, refusing a development root unless explicitly allowed. */
export function trustedRoots(cfg: TrustedRootsConfig): TrustedRoot[] {
  const roots: TrustedRoot[] = [];
  if (cfg.awsRootPath !== undefined) roots.push(loadAwsNitroRoot(cfg.awsRootPath));
  if (cfg.developmentRoot !== undefined) {
    if (cfg.allowDevelopment !== true) {
      throw new TrustedRootError(
        "a development root was configured but development is not allowed; refusing to trust it",
      );
    }
    if (!warnedDevelopment) {
      warnedDevelopment = true;
      console.warn(
        "\n*** WARNING: trusting a DEVELOPMENT attestation root. Documents it signs come from a simulated NSM\n" +
          "*** and prove NOTHING about a real enclave. Never enable development mode in production. ***\n",
      );
    }
    roots.push({ der: cfg.developmentRoot, development: true });
  }
  if (roots.length === 0)
    throw new TrustedRootError(
      "no trusted attestation root configured (set awsRootPath, or developmentRoot with allowDevelopment)",
    );
  return roots;
}
