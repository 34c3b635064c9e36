/**
 * HTTP front of the development KMS: the AWS JSON 1.1 protocol as the AWS SDK speaks it.
 * Every request is `POST /` with `X-Amz-Target: TrentService.<Op>`, a SigV4-signed JSON body,
 * and gets either the operation's JSON or an AWS error shape. Order of checks: size bound,
 * signature, protocol headers, then the operation, so an unauthenticated caller learns nothing
 * beyond "not authenticated".
 */
import { randomUUID } from "node:crypto";
import type { AttestationVerifier } from "./attestation.ts";
import { errorBody, KmsError } from "./errors.ts";
import { operations, TARGET_PREFIX, type HandlerContext } from "./handlers/index.ts";
import { KeyStore } from "./keystore.ts";
import { verifySigV4 } from "./sigv4.ts";
import type { Logger } from "../shared/log.ts";
import { asObject } from "../shared/wire/kms-json.ts";

const CONTENT_TYPE = "application/x-amz-json-1.1";
/** Largest legitimate body: a 6 KiB ciphertext blob plus a 16 KiB attestation document, base64, plus context. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface DevKmsOptions {
  dataDir: string;
  /** accessKeyId -> secretAccessKey */
  credentials: ReadonlyMap<string, string>;
  verifyAttestation: AttestationVerifier;
  region: string;
  accountId: string;
  hostname?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Called once per request with no secrets in it; default: nothing. */
  log?: Logger;
  /** PEM server certificate (chain) and key: serve HTTPS, as AWS KMS does. Without it, plain HTTP. */
  tls?: { cert: string; key: string };
}

export interface DevKms {
  url: string;
  hostname: string;
  port: number;
  stop(): Promise<void>;
}

async function readBody(req: Request): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && !(Number(declared) <= MAX_BODY_BYTES)) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const tooLarge = () =>
  new KmsError(
    "RequestEntityTooLargeException",
    `Request body exceeds ${MAX_BODY_BYTES} bytes`,
    413,
  );

function parseJson(body: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        body.length === 0 ? new TextEncoder().encode("{}") : body,
      ),
    );
  } catch {
    throw new KmsError("SerializationException", "The request body is not valid JSON");
  }
  try {
    return asObject(value, "The request body");
  } catch {
    throw new KmsError("SerializationException", "The request body must be a JSON object");
  }
}

function respond(status: number, body: string, requestId: string, errorType?: string): Response {
  const headers: Record<string, string> = {
    "content-type": CONTENT_TYPE,
    "x-amzn-requestid": requestId,
  };
  if (errorType) headers["x-amzn-errortype"] = errorType;
  return new Response(body, { status, headers });
}

export function startDevKms(opts: DevKmsOptions): DevKms {
  const store = KeyStore.open(opts.dataDir);
  const log = opts.log ?? (() => {});

  async function handle(req: Request): Promise<{ op: string; response: Response }> {
    const requestId = randomUUID();
    let op = "-";
    try {
      const url = new URL(req.url);
      if (req.method !== "POST" || url.pathname !== "/" || url.search !== "") {
        throw new KmsError(
          "UnknownOperationException",
          "The development KMS serves only POST / (AWS JSON 1.1)",
          404,
        );
      }
      const body = await readBody(req);
      const caller = await verifySigV4(
        { method: req.method, headers: req.headers, body },
        {
          credentials: opts.credentials,
          service: "kms",
          region: opts.region,
          now: new Date(),
        },
      );
      const contentType = req.headers.get("content-type") ?? "";
      if (contentType.split(";")[0]!.trim().toLowerCase() !== CONTENT_TYPE) {
        throw new KmsError("SerializationException", `Content-Type must be ${CONTENT_TYPE}`);
      }
      const target = req.headers.get("x-amz-target") ?? "";
      op = target.startsWith(TARGET_PREFIX)
        ? target.slice(TARGET_PREFIX.length, TARGET_PREFIX.length + 64)
        : "-";
      const handler = operations.get(op);
      if (!handler)
        throw new KmsError(
          "UnknownOperationException",
          `Unknown or unsupported operation '${target.slice(0, 80)}'`,
        );
      const ctx: HandlerContext = {
        store,
        verifyAttestation: opts.verifyAttestation,
        region: opts.region,
        accountId: opts.accountId,
        caller,
      };
      const output = handler(ctx, parseJson(body));
      return { op, response: respond(200, JSON.stringify(output), requestId) };
    } catch (e) {
      if (e instanceof KmsError)
        return { op, response: respond(e.status, errorBody(e), requestId, e.type) };
      // Unexpected faults: report and log the class only, since messages from deep inside could
      // echo input, and a request body may carry plaintext.
      log("internal_error", { op, error: (e as Error)?.name ?? "unknown" });
      const internal = new KmsError(
        "KMSInternalException",
        "An internal error occurred in the development KMS",
        500,
      );
      return { op, response: respond(500, errorBody(internal), requestId, internal.type) };
    }
  }

  const server = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    maxRequestBodySize: MAX_BODY_BYTES,
    ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    async fetch(req) {
      const started = performance.now();
      const { op, response } = await handle(req);
      const type = response.headers.get("x-amzn-errortype");
      log("request", {
        op,
        status: response.status,
        ...(type ? { type } : {}),
        ms: Number((performance.now() - started).toFixed(1)),
      });
      return response;
    },
  });
  const hostname = server.hostname ?? opts.hostname ?? "127.0.0.1";
  const port = server.port ?? 0;
  return {
    url: `${opts.tls ? "https" : "http"}://${hostname}:${port}`,
    hostname,
    port,
    stop: () => server.stop(true),
  };
}
