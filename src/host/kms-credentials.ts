/**
 * The AWS credentials the host hands its enclave with each LOAD_SHARE and
 * SEAL_SHARE, for the enclave to sign its own KMS requests. They gate
 * nothing that attestation does not also gate: the key policy releases data
 * keys only to a Recipient attestation of the signing image and this node's
 * PCR4, and only as CiphertextForRecipient, so a host that keeps them (it
 * has them anyway) can call KMS but never obtain a data key.
 */
import { KMSClient } from "@aws-sdk/client-kms";
import type { KmsCredentialFields } from "../shared/wire/enclave-ops.ts";

export type KmsCredentials = KmsCredentialFields;

/** Resolves the credentials to hand over now (temporary ones are refreshed by the source). */
export type CredentialSource = () => Promise<KmsCredentials>;

export function staticCredentials(c: KmsCredentials): CredentialSource {
  const copy = { ...c };
  return async () => ({ ...copy });
}

/**
 * The AWS SDK's default chain (environment, shared config, the instance
 * role through IMDS, ...) exactly as a KMS client would resolve it, with its
 * caching and refresh of temporary credentials. No request is ever sent
 * with this client: it only resolves credentials.
 */
export function sdkDefaultCredentials(region: string): CredentialSource {
  const resolver = new KMSClient({ region });
  return async () => {
    const c = await resolver.config.credentials();
    return {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    };
  };
}
