/**
 * Server-side AWS Signature Version 4 check (Authorization-header form, the only one the SDK
 * uses for KMS). The stand-in only ever serves `POST /` without a query string, so the canonical
 * URI is "/" and the canonical query string is empty; the server refuses anything else before
 * calling this.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
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
  if (!value.startsWith(`${ALGORITHM} `)) throw incomplete(`Unsupported authorization algorithm; expected ${ALGORITHM}`);
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) throw incomplete(`Authorization header component is not key=value: '${part.trim().slice(0, 40)}'`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters");
  }
  const scope = credential.split("/");
  if (scope.length !== 5 || scope[4] !== "aws4_request" || !/^\d{8}$/.test(scope[1]!)) {
    throw incomplete("Credential must have the form <key>/<yyyymmdd>/<region>/<service>/aws4_request");
  }
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete("Signature must be 64 lowercase hex characters");
  const headers = signedHeaders.split(";");
  if (headers.length > MAX_SIGNED_HEADERS || headers.some((h) => !/^[a-z0-9-]+$/.test(h))) {
    throw incomplete("SignedHeaders is malformed");
  }
  const sorted = [...headers].sort();
  if (sorted.some((h, i) => h !== headers[i] || h === headers[i + 1])) throw incomplete("SignedHeaders must be sorted and unique");
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
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

const sha256Hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** Canonical header value: trimmed, inner runs of spaces collapsed (SigV4 spec). */
const canonicalValue = (v: string) => v.trim().replace(/ +/g, " ");

export function verifySigV4(req: SigV4Request, opts: SigV4Options): SigV4Identity {
  const authorization = req.headers.get("authorization");
  if (!authorization) throw new KmsError("MissingAuthenticationTokenException", "Missing Authentication Token");
  const auth = parseAuthorization(authorization);

  const secret = opts.credentials.get(auth.accessKeyId);
  if (secret === undefined) throw new KmsError("UnrecognizedClientException", "The security token included in the request is invalid.");
  if (auth.service !== opts.service) throw invalid(`Credential should be scoped to correct service: '${opts.service}'.`);
  if (opts.region !== undefined && auth.region !== opts.region) {
    throw invalid(`Credential should be scoped to a valid region, not '${auth.region}'.`);
  }
  for (const required of ["host", "x-amz-date"]) {
    if (!auth.signedHeaders.includes(required)) throw incomplete(`SignedHeaders must include '${required}'`);
  }
  const amzDate = req.headers.get("x-amz-date") ?? "";
  const signedAt = parseAmzDate(amzDate);
  if (amzDate.slice(0, 8) !== auth.date) throw invalid("Credential date does not match X-Amz-Date");
  if (Math.abs(opts.now.getTime() - signedAt.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw invalid(`Signature expired: ${amzDate} is not within 15 minutes of the server time ${opts.now.toISOString()}.`);
  }

  const payloadHash = sha256Hex(req.body);
  const declared = req.headers.get("x-amz-content-sha256");
  if (declared !== null && declared !== payloadHash) throw invalid("x-amz-content-sha256 does not match the request body");

  const canonicalHeaders = auth.signedHeaders
    .map((name) => {
      const value = req.headers.get(name);
      if (value === null) throw incomplete(`Signed header '${name}' is missing from the request`);
      return `${name}:${canonicalValue(value)}\n`;
    })
    .join("");
  const canonicalRequest = [req.method, "/", "", canonicalHeaders, auth.signedHeaders.join(";"), payloadHash].join("\n");
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, auth.date), auth.region), auth.service), "aws4_request");
  const expected = hmac(signingKey, stringToSign);
  if (!timingSafeEqual(expected, auth.signature)) {
    throw invalid(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    );
  }
  return { accessKeyId: auth.accessKeyId, region: auth.region };
}
