/**
 * The enclave's per-boot RSA-2048 key pair. Its public half goes into every
 * attestation document (`public_key`), so KMS encrypts data keys to it; the
 * private half never leaves this process and dies with it.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { decryptCiphertextForRecipient } from "./cms.ts";

export class RecipientKey {
  readonly spkiDer: Uint8Array;
  private readonly privateKey: KeyObject;

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicExponent: 0x10001,
    });
    this.spkiDer = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
    this.privateKey = privateKey;
  }

  /** Unwraps a KMS CiphertextForRecipient into the 32-byte data key. Caller wipes it. */
  dataKey(ciphertextForRecipient: Uint8Array): Uint8Array {
    const key = decryptCiphertextForRecipient(ciphertextForRecipient, this.privateKey);
    if (key.length !== 32) {
      key.fill(0);
      throw new Error(`KMS data key must be 32 bytes, got ${key.length}`);
    }
    return key;
  }
}
