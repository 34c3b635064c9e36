/** How the KMS tests see a refused request through the real AWS SDK. */
import { KMSServiceException } from "@aws-sdk/client-kms";
import { expect } from "vitest";

export async function rejected(p: Promise<unknown>): Promise<KMSServiceException> {
  const e = await p.then(
    () => {
      throw new Error("expected the request to be refused");
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(KMSServiceException);
  return e as KMSServiceException;
}

/** @aws-sdk/client-kms models no AccessDeniedException class: it surfaces as KMSServiceException named so. */
export async function expectAccessDenied(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const e = await rejected(p);
  expect(e.name).toBe("AccessDeniedException");
  expect(e.$fault).toBe("client");
  expect(e.$metadata.httpStatusCode).toBe(400);
  if (message) expect(e.message).toMatch(message);
}
