/**
 * The production platform (main.ts): the NSM device, the AWS Nitro root for
 * peers and the Amazon Trust Services roots for KMS's TLS, both read from
 * beside the executable (so measured into PCR0 with the image) and refused
 * unless their fingerprints are the pinned ones. Apart from main.ts so a
 * test can run this path with a double of the device alone.
 */
import { join } from "node:path";
import { loadAmazonTrustRoots, loadAwsNitroRoot } from "../attestation/aws-root.ts";
import type { AttestRequest } from "../attestation/nsm.ts";
import type { EnclavePlatform } from "./program.ts";

export const AWS_NITRO_ROOT_FILE = "aws-nitro-root.pem";
export const AMAZON_TRUST_ROOTS_FILE = "amazon-trust-roots.pem";

export function productionPlatform(
  dir: string,
  device: (req: AttestRequest) => Uint8Array,
): EnclavePlatform {
  return {
    nsm: { attest: device },
    peerRoots: [loadAwsNitroRoot(join(dir, AWS_NITRO_ROOT_FILE))],
    kmsTrustedCaPem: loadAmazonTrustRoots(join(dir, AMAZON_TRUST_ROOTS_FILE)),
  };
}
