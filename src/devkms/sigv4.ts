/**
 * Server-side AWS Signature Version 4 check (Authorization-header form, the only one the SDK
 * uses for KMS). The stand-in only ever serves `POST /` without a query string, so the canonical
 * URI is "/" and the canonical query string is empty; the server refuses anything else before
 * calling this.
 *
 * The signature itself is recomputed by @smithy/signature-v4, the signer the AWS SDK uses, so
 * canonicalisation cannot drift from the client's. This file adds what a signer does not check
 * for a verifier: a strict, bounded Authorization header, the credential scope (service, region,
 * date = X-Amz-Date's), `host` and `x-amz-date` signed, clock skew, x-amz-content-sha256 equal to
 * the body's hash (the signer trusts that header), and the signer's own SignedHeaders equal to
 * the client's.
 */
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { KmsError } from "./errors.ts";

const ALGORITHM = "AWS4-HMAC-SHA256";
/** AWS rejects signatures whose X-Amz-Date is more than 15 minutes off. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
const MAX_AUTH_HEADER = 4096;
const MAX_SIGNED_HEADERS = 32;

export interface SigV4Request {
  method: string;
  headers: Headers;
  body: Uint8Array;
}

export interface SigV4Options {
  /** accessKeyId -> secretAccessKey */
  credentials: ReadonlyMap<string, string>;
  service: string;
  /** When set, the credential scope must name this region. */
  region?: string;
  now: Date;
}

export interface SigV4Identity {
  accessKeyId: string;
  region: string;
}

const incomplete = (m: string) => new KmsError("IncompleteSignatureException", m);
const invalid = (m: string) => new KmsError("InvalidSignatureException", m);

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: Buffer;
}

function parseAuthorization(value: string): ParsedAuthorization {
  if (value.length > MAX_AUTH_HEADER) throw incomplete("Authorization header too long");
  if (!value.startsWith(`${ALGORITHM} `))
    throw incomplete(`Unsupported authorization algorithm; expected ${ALGORITHM}`);
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0)
      throw incomplete(
        `Authorization header component is not key=value: '${part.trim().slice(0, 40)}'`,
      );
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw incomplete(
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
    );
  }
  const scope = credential.split("/");
  if (scope.length !== 5 || scope[4] !== "aws4_request" || !/^\d{8}$/.test(scope[1]!)) {
    throw incomplete(
      "Credential must have the form <key>/<yyyymmdd>/<region>/<service>/aws4_request",
    );
  }
  if (!/^[0-9a-f]{64}$/.test(signature))
    throw incomplete("Signature must be 64 lowercase hex characters");
  const headers = signedHeaders.split(";");
  if (headers.length > MAX_SIGNED_HEADERS || headers.some((h) => !/^[a-z0-9-]+$/.test(h))) {
    throw incomplete("SignedHeaders is malformed");
  }
  const sorted = [...headers].sort();
  if (sorted.some((h, i) => h !== headers[i] || h === headers[i + 1]))
    throw incomplete("SignedHeaders must be sorted and unique");
  return {
    accessKeyId: scope[0]!,
    date: scope[1]!,
    region: scope[2]!,
    service: scope[3]!,
    signedHeaders: headers,
    signature: Buffer.from(signature, "hex"),
  };
}

function parseAmzDate(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw incomplete("X-Amz-Date must have the form yyyyMMddTHHmmssZ");
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  // Date.UTC rolls month 13 or second 60 over; such a date is refused, not reinterpreted.
  if (d.toISOString().replace(/[-:]|\.\d{3}/g, "") !== s)
    throw incomplete("X-Amz-Date is not a valid date and time");
  return d;
}

const sha256Hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** SHA-256, or HMAC-SHA256 when given a key: the hash interface @smithy/signature-v4 takes. */
export class NodeSha256 {
  private h: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    if (this.secret === undefined) return createHash("sha256");
    const s = this.secret;
    const key =
      typeof s === "string"
        ? s
        : ArrayBuffer.isView(s)
          ? new Uint8Array(s.buffer, s.byteOffset, s.byteLength)
          : new Uint8Array(s);
    return createHmac("sha256", key);
  }
  update(data: string | Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.fresh();
  }
}

export async function verifySigV4(req: SigV4Request, opts: SigV4Options): Promise<SigV4Identity> {
  const authorization = req.headers.get("authorization");
  if (!authorization)
    throw new KmsError("MissingAuthenticationTokenException", "Missing Authentication Token");
  const auth = parseAuthorization(authorization);

  const secret = opts.credentials.get(auth.accessKeyId);
  if (secret === undefined)
    throw new KmsError(
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  if (auth.service !== opts.service)
    throw invalid(`Credential should be scoped to correct service: '${opts.service}'.`);
  if (opts.region !== undefined && auth.region !== opts.region) {
    throw invalid(`Credential should be scoped to a valid region, not '${auth.region}'.`);
  }
  for (const required of ["host", "x-amz-date"]) {
    if (!auth.signedHeaders.includes(required))
      throw incomplete(`SignedHeaders must include '${required}'`);
  }
  const amzDate = req.headers.get("x-amz-date") ?? "";
  const signedAt = parseAmzDate(amzDate);
  if (amzDate.slice(0, 8) !== auth.date) throw invalid("Credential date does not match X-Amz-Date");
  if (Math.abs(opts.now.getTime() - signedAt.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw invalid(
      `Signature expired: ${amzDate} is not within 15 minutes of the server time ${opts.now.toISOString()}.`,
    );
  }

  const declared = req.headers.get("x-amz-content-sha256");
  if (declared !== null && declared !== sha256Hex(req.body))
    throw invalid("x-amz-content-sha256 does not match the request body");

  // Only the headers the client signed go to the signer, and all of them are signable, so the
  // signer's SignedHeaders must come out equal to the client's.
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = req.headers.get(name);
    if (value === null) throw incomplete(`Signed header '${name}' is missing from the request`);
    headers[name] = value;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: secret },
    region: auth.region,
    service: auth.service,
    sha256: NodeSha256,
    // Add no x-amz-content-sha256 the client did not send.
    applyChecksum: false,
  });
  const resigned = await signer.sign(
    new HttpRequest({
      method: req.method,
      hostname: headers.host,
      path: "/",
      headers,
      body: req.body,
    }),
    {
      signingDate: signedAt,
      signableHeaders: new Set(auth.signedHeaders),
    },
  );
  const expected = parseAuthorization(String(resigned.headers.authorization ?? ""));
  if (expected.signedHeaders.join(";") !== auth.signedHeaders.join(";"))
    throw incomplete("SignedHeaders names a header this server cannot sign");
  if (!timingSafeEqual(expected.signature, auth.signature)) {
    throw invalid(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    );
  }
  return { accessKeyId: auth.accessKeyId, region: auth.region };
}
