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

/** Reads a PEM file of at most `maxBytes`, naming `what` in every refusal. */
function readBoundedPem(path: string, what: string, maxBytes = MAX_PEM_BYTES): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new TrustedRootError(`cannot read ${what} at ${path}: ${(e as Error).message}`);
  }
  if (size > maxBytes)
    throw new TrustedRootError(`${path} is ${size} bytes, too large for ${what}`);
  return readFileSync(path, "utf8");
}

/** Loads the AWS root from `path`, refusing it unless its fingerprint is the pinned one. */
export function loadAwsNitroRoot(
  path: string,
  pinnedSha256: string = AWS_NITRO_ROOT_SHA256,
): TrustedRoot {
  const der = pemToDer(readBoundedPem(path, "the AWS Nitro root certificate"), path);
  const actual = fingerprintSha256(der);
  if (actual !== pinnedSha256.toUpperCase()) {
    throw new TrustedRootError(
      `refusing ${path} as the AWS Nitro root: SHA-256 fingerprint ${actual} differs from the pinned ${pinnedSha256}`,
    );
  }
  return { der, development: false };
}

/**
 * Amazon Trust Services Root CA 1-4 (CN=Amazon Root CA n), the roots AWS's
 * public endpoints (KMS included) chain to; the fingerprints of Debian's
 * /usr/share/ca-certificates/mozilla/Amazon_Root_CA_{1..4}.crt.
 */
export const AMAZON_TRUST_ROOTS_SHA256: readonly string[] = [
  "8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E",
  "1B:A5:B2:AA:8C:65:40:1A:82:96:01:18:F8:0B:EC:4F:62:30:4D:83:CE:C4:71:3A:19:C3:9C:01:1E:A4:6D:B4",
  "18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4",
  "E3:5D:28:41:9E:D0:20:25:CF:A6:90:38:CD:62:39:62:45:8D:A5:C6:95:FB:DE:A3:C2:2B:0B:FB:25:89:70:92",
];

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/**
 * The certificates of a PEM bundle, as PEM blocks (what node:tls takes as `ca`), refusing the
 * bundle unless it holds exactly the pinned certificates: a swapped or extended file cannot
 * widen trust.
 */
export function pinnedPemBundle(
  text: string,
  pinnedSha256: readonly string[],
  source: string,
): string[] {
  const blocks = [...text.matchAll(CERTIFICATE_BLOCK)].map((m) => m[0]);
  const fingerprints = blocks.map((b) => fingerprintSha256(pemToDer(b, source)));
  const want = [...pinnedSha256].map((f) => f.toUpperCase()).sort();
  const got = [...fingerprints].sort();
  if (got.length !== want.length || got.some((f, i) => f !== want[i]))
    throw new TrustedRootError(
      `refusing ${source}: its certificates (${got.join(", ") || "none"}) are not exactly the pinned ${want.length}`,
    );
  return blocks;
}

/** Loads the Amazon Trust Services roots shipped beside the enclave (amazon-trust-roots.pem). */
export function loadAmazonTrustRoots(
  path: string,
  pinnedSha256: readonly string[] = AMAZON_TRUST_ROOTS_SHA256,
): string[] {
  return pinnedPemBundle(
    readBoundedPem(path, "the Amazon Trust Services roots"),
    pinnedSha256,
    path,
  );
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
