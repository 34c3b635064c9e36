/**
 * KMS error shapes. The wire form `{"__type": ..., "message": ...}` is what the AWS SDK's
 * awsJson1_1 deserialiser turns into its own exception classes (modeled ones such as
 * NotFoundException, InvalidCiphertextException) or into a KMSServiceException whose `name`
 * is the type (unmodeled ones such as AccessDeniedException, ValidationException).
 */
export type KmsErrorType =
  | "AccessDeniedException"
  | "NotFoundException"
  | "ValidationException"
  | "InvalidCiphertextException"
  | "IncorrectKeyException"
  | "InvalidKeyUsageException"
  | "MalformedPolicyDocumentException"
  | "UnsupportedOperationException"
  | "KMSInvalidStateException"
  | "DisabledException"
  | "KMSInternalException"
  | "SerializationException"
  | "UnknownOperationException"
  | "InvalidSignatureException"
  | "IncompleteSignatureException"
  | "MissingAuthenticationTokenException"
  | "UnrecognizedClientException"
  | "RequestEntityTooLargeException";

export class KmsError extends Error {
  override name = "KmsError";
  constructor(
    readonly type: KmsErrorType,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export const accessDenied = (message: string) => new KmsError("AccessDeniedException", message);
export const validation = (message: string) => new KmsError("ValidationException", message);
export const notFound = (message: string) => new KmsError("NotFoundException", message);
export const invalidCiphertext = (
  message = "The ciphertext is invalid or was not produced by this key.",
) => new KmsError("InvalidCiphertextException", message);

export function errorBody(e: KmsError): string {
  return JSON.stringify({ __type: e.type, message: e.message });
}
