/**
 * The stand-in's SigV4 verifier (src/devkms/sigv4.ts) on requests signed the way the AWS SDK
 * signs them (@smithy/signature-v4), then altered: the strictness kept on top of the signer.
 */
import { createHash } from "node:crypto";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
// The server's hash adapter; that it matches the SDK's own hash is shown by devkms.test.ts.
import { MAX_CLOCK_SKEW_MS, NodeSha256, verifySigV4 } from "../../src/devkms/sigv4.ts";

const KEY = { accessKeyId: "AKIASIGV4TEST0000001", secretAccessKey: "sigv4/test/secret" };
const CREDENTIALS = new Map([[KEY.accessKeyId, KEY.secretAccessKey]]);
const NOW = new Date("2026-03-04T05:06:07Z");
const BODY = new TextEncoder().encode('{"NumberOfBytes":8}');

/** Signs like the SDK; `extra` headers are signed too. */
async function signed(
  opts: {
    date?: Date;
    region?: string;
    service?: string;
    extra?: Record<string, string>;
    body?: Uint8Array;
  } = {},
): Promise<Headers> {
  const signer = new SignatureV4({
    credentials: KEY,
    region: opts.region ?? "us-east-1",
    service: opts.service ?? "kms",
    sha256: NodeSha256,
  });
  const req = await signer.sign(
    new HttpRequest({
      method: "POST",
      hostname: "127.0.0.1",
      path: "/",
      headers: {
        host: "127.0.0.1:4000",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "TrentService.GenerateRandom",
        ...opts.extra,
      },
      body: opts.body ?? BODY,
    }),
    { signingDate: opts.date ?? NOW },
  );
  return new Headers(req.headers as Record<string, string>);
}

const verify = (headers: Headers, body = BODY, now = NOW) =>
  verifySigV4(
    { method: "POST", headers, body },
    { credentials: CREDENTIALS, service: "kms", region: "us-east-1", now },
  );

const refusal = async (headers: Headers, body = BODY, now = NOW) => {
  const e = await verify(headers, body, now).then(
    () => null,
    (err: unknown) => err as { type: string; message: string },
  );
  expect(e, "accepted").not.toBeNull();
  return e!;
};

describe("SigV4 verification", () => {
  it("accepts what the SDK's signer produces, and names the caller", async () => {
    expect(await verify(await signed())).toEqual({
      accessKeyId: KEY.accessKeyId,
      region: "us-east-1",
    });
    expect(
      await verify(
        await signed({
          extra: { "x-amz-content-sha256": createHash("sha256").update(BODY).digest("hex") },
        }),
      ),
    ).toMatchObject({ region: "us-east-1" });
  });

  it("refuses an altered body, signed header or signature", async () => {
    expect(
      (await refusal(await signed(), new TextEncoder().encode('{"NumberOfBytes":9}'))).type,
    ).toBe("InvalidSignatureException");
    const h = await signed();
    h.set("x-amz-target", "TrentService.Decrypt");
    expect((await refusal(h)).type).toBe("InvalidSignatureException");
    const s = await signed();
    s.set(
      "authorization",
      s
        .get("authorization")!
        .replace(/Signature=[0-9a-f]/, (m) =>
          m.endsWith("0") ? `${m.slice(0, -1)}1` : `${m.slice(0, -1)}0`,
        ),
    );
    expect((await refusal(s)).type).toBe("InvalidSignatureException");
  });

  it("refuses a declared payload hash that is not the body's, though the signer would trust it", async () => {
    const lie = createHash("sha256").update("something else").digest("hex");
    expect(
      (await refusal(await signed({ extra: { "x-amz-content-sha256": lie } }))).message,
    ).toMatch(/x-amz-content-sha256/);
  });

  it("refuses clock skew beyond 15 minutes, and dates that do not exist", async () => {
    const late = new Date(NOW.getTime() + MAX_CLOCK_SKEW_MS + 1000);
    expect((await refusal(await signed(), BODY, late)).message).toMatch(/expired/);
    expect(
      await verify(await signed(), BODY, new Date(NOW.getTime() + MAX_CLOCK_SKEW_MS - 1000)),
    ).toBeTruthy();
    const h = await signed();
    h.set("x-amz-date", "20261304T050607Z"); // month 13
    expect((await refusal(h)).type).toBe("IncompleteSignatureException");
  });

  it("refuses a credential scope for another service or region, or an unknown key", async () => {
    expect((await refusal(await signed({ service: "s3" }))).message).toMatch(/service/);
    expect((await refusal(await signed({ region: "eu-west-1" }))).message).toMatch(/region/);
    const h = await signed();
    h.set(
      "authorization",
      h.get("authorization")!.replace(KEY.accessKeyId, "AKIAUNKNOWN000000000"),
    );
    expect((await refusal(h)).type).toBe("UnrecognizedClientException");
  });

  it("requires host and x-amz-date signed, SignedHeaders sorted, unique and bounded", async () => {
    const withHeaders = async (list: string) => {
      const h = await signed();
      h.set(
        "authorization",
        h.get("authorization")!.replace(/SignedHeaders=[^,]+/, `SignedHeaders=${list}`),
      );
      return refusal(h);
    };
    expect((await withHeaders("content-type;x-amz-date;x-amz-target")).message).toMatch(
      /must include 'host'/,
    );
    expect((await withHeaders("content-type;host;x-amz-target")).message).toMatch(
      /must include 'x-amz-date'/,
    );
    expect((await withHeaders("host;content-type;x-amz-date")).message).toMatch(
      /sorted and unique/,
    );
    expect((await withHeaders("host;host;x-amz-date")).message).toMatch(/sorted and unique/);
    const many = Array.from({ length: 33 }, (_, i) => `x-h${String(i).padStart(2, "0")}`);
    expect((await withHeaders(["host", ...many, "x-amz-date"].sort().join(";"))).message).toMatch(
      /malformed/,
    );
    expect((await withHeaders("host;x-absent;x-amz-date")).message).toMatch(
      /missing from the request/,
    );
    const long = await signed();
    long.set("authorization", `${long.get("authorization")!}, Pad=${"x".repeat(5000)}`);
    expect((await refusal(long)).message).toMatch(/too long/);
  });

  it("refuses a request without an Authorization header", async () => {
    const h = await signed();
    h.delete("authorization");
    expect((await refusal(h)).type).toBe("MissingAuthenticationTokenException");
  });
});
