/**
 * The `Recipient` request parameter: verify its attestation document, take the enclave's RSA
 * public key from it, and expose the attested measurements as policy condition keys, which is
 * what makes `kms:RecipientAttestation:*` conditions mean anything.
 */
import { createPublicKey } from "node:crypto";
import { accessDenied, validation } from "./errors.ts";
import { AttestationRejected, type AttestationVerifier } from "./attestation.ts";
import { IMAGE_SHA384_KEY, pcrKey } from "./policy.ts";
import {
  asObject,
  decodeBase64,
  LIMITS,
  optionalString,
  type JsonObject,
} from "../shared/wire/kms-json.ts";

export const KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256";

export interface Recipient {
  /** DER SubjectPublicKeyInfo exactly as attested: its SHA-256 is the CMS recipient identifier. */
  spki: Uint8Array;
  /** Lower-cased condition key -> lower-case hex. */
  conditionKeys: Map<string, string>;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function recipientPublicKey(spki: Uint8Array | null): Uint8Array {
  if (spki === null) throw validation("The attestation document does not contain a public key");
  let bits: number | undefined;
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
    bits = key.asymmetricKeyType === "rsa" ? key.asymmetricKeyDetails?.modulusLength : undefined;
  } catch {
    throw validation(
      "The public key in the attestation document is not a DER SubjectPublicKeyInfo",
    );
  }
  if (bits === undefined || bits < 2048 || bits > 4096) {
    throw validation(
      "The public key in the attestation document must be an RSA key of 2048 to 4096 bits",
    );
  }
  return spki;
}

/** `undefined` when the request has no Recipient; otherwise a verified recipient or an error. */
export function resolveRecipient(
  input: JsonObject,
  verify: AttestationVerifier,
): Recipient | undefined {
  if (input.Recipient === undefined || input.Recipient === null) return undefined;
  const r = asObject(input.Recipient, "Recipient");
  const algorithm = optionalString(r, "KeyEncryptionAlgorithm", 64) ?? KEY_ENCRYPTION_ALGORITHM;
  if (algorithm !== KEY_ENCRYPTION_ALGORITHM)
    throw validation(`Recipient.KeyEncryptionAlgorithm must be ${KEY_ENCRYPTION_ALGORITHM}`);
  if (r.AttestationDocument === undefined || r.AttestationDocument === null)
    throw validation("Recipient.AttestationDocument is required");
  const document = decodeBase64(
    r.AttestationDocument,
    "Recipient.AttestationDocument",
    LIMITS.attestationDocument,
  );

  let attested;
  try {
    attested = verify(document);
  } catch (e) {
    const reason =
      e instanceof AttestationRejected ? `${e.reason}: ${e.message}` : "verification failed";
    throw accessDenied(
      `The attestation document in the Recipient parameter is not valid (${reason})`,
    );
  }

  const conditionKeys = new Map<string, string>();
  for (const [index, value] of attested.pcrs) conditionKeys.set(pcrKey(index), hex(value));
  const pcr0 = attested.pcrs.get(0);
  if (pcr0) conditionKeys.set(IMAGE_SHA384_KEY, hex(pcr0));
  return { spki: recipientPublicKey(attested.publicKey), conditionKeys };
}
