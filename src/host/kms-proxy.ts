/**
 * KMS calls the host makes on its enclave's behalf, with the real AWS SDK.
 * Every call carries the enclave's attestation document as Recipient, so KMS
 * answers with CiphertextForRecipient (encrypted to the enclave's per-boot
 * key) and the host never holds a plaintext data key.
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from "@aws-sdk/client-kms";

export interface DataKeyForEnclave {
  /** Data key under the KMS key: what the host stores beside the sealed share. */
  ciphertextBlob: Uint8Array;
  /** Data key encrypted to the enclave; relayed to it, useless to anyone else. */
  ciphertextForRecipient: Uint8Array;
}

export class KmsProxy {
  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  get kmsKeyId(): string {
    return this.keyId;
  }

  async generateDataKey(
    attestationDocument: Uint8Array,
    context: Record<string, string>,
  ): Promise<DataKeyForEnclave> {
    const out = await this.client.send(
      new GenerateDataKeyCommand({
        KeyId: this.keyId,
        KeySpec: "AES_256",
        EncryptionContext: context,
        Recipient: {
          AttestationDocument: attestationDocument,
          KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        },
      }),
    );
    if (out.Plaintext && out.Plaintext.length > 0) {
      // A KMS that returns the plaintext with a Recipient is misbehaving; never keep it.
      out.Plaintext.fill(0);
      throw new Error("KMS returned a plaintext data key despite a Recipient; refusing it");
    }
    if (!out.CiphertextBlob || !out.CiphertextForRecipient)
      throw new Error("KMS GenerateDataKey returned no CiphertextBlob or CiphertextForRecipient");
    return {
      ciphertextBlob: out.CiphertextBlob,
      ciphertextForRecipient: out.CiphertextForRecipient,
    };
  }

  async decryptForEnclave(
    ciphertextBlob: Uint8Array,
    attestationDocument: Uint8Array,
    context: Record<string, string>,
  ): Promise<Uint8Array> {
    const out = await this.client.send(
      new DecryptCommand({
        KeyId: this.keyId,
        CiphertextBlob: ciphertextBlob,
        EncryptionContext: context,
        Recipient: {
          AttestationDocument: attestationDocument,
          KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256",
        },
      }),
    );
    if (out.Plaintext && out.Plaintext.length > 0) {
      out.Plaintext.fill(0);
      throw new Error("KMS returned a plaintext data key despite a Recipient; refusing it");
    }
    if (!out.CiphertextForRecipient)
      throw new Error("KMS Decrypt returned no CiphertextForRecipient");
    return out.CiphertextForRecipient;
  }
}

/** Encryption context binding a data key to one share slot (checked by KMS on Decrypt). */
export function shareContext(
  walletId: string,
  nodeId: string,
  generation: number,
): Record<string, string> {
  return { purpose: "tss-share", wallet: walletId, node: nodeId, generation: String(generation) };
}
