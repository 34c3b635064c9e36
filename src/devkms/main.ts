/**
 * Development KMS, run as its own process:
 *   bun run src/devkms/main.ts --port 0 --data-dir ./data/devkms --credentials AKID:SECRET \
 *     [--nitro-root aws-nitro-root.pem] [--dev-root dev-root.pem --allow-development]
 * Prints one JSON line on stdout once listening (`{"event":"listening","url":...}`) so a harness
 * can find the port; request logs go to stderr.
 */
import { readFileSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadAwsNitroRoot, pemToDer } from "../attestation/aws-root.ts";
import { jsonLogger } from "../shared/log.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import {
  AttestationRejected,
  DEFAULT_ATTESTATION_MAX_AGE_MS,
  nitroAttestationVerifier,
  type AttestationVerifier,
} from "./attestation.ts";
import { startDevKms } from "./server.ts";

const HELP = `Development stand-in for AWS KMS (JSON 1.1 protocol, SigV4, attested Recipient support).
NOT FOR PRODUCTION: key material is sealed under a master key kept in the data dir.

Usage: bun run src/devkms/main.ts --data-dir DIR --credentials ACCESS:SECRET [options]

  --data-dir DIR              where keys persist (created 0700; master.key is 0600)       (required)
  --credentials A:S           accepted SigV4 access key id and secret; repeatable
                              (or DEVKMS_CREDENTIALS="A:S,A2:S2" to keep secrets out of ps)
  --port N                    TCP port; 0 (default) picks a free one
  --host ADDR                 listen address (default 127.0.0.1)
  --region R                  region requests must be signed for (default us-east-1)
  --account-id N              account id in key ARNs (default 111122223333)
  --nitro-root FILE           AWS Nitro root certificate PEM (SHA-256 fingerprint is pinned)
  --dev-root FILE             development attestation root (PEM or DER), e.g. the simulated NSM's
  --allow-development         required with --dev-root: trust documents from a simulated NSM
  --attestation-max-age-ms N  oldest attestation document accepted (default ${DEFAULT_ATTESTATION_MAX_AGE_MS})
  --tls-cert FILE             PEM server certificate (chain): serve HTTPS, as AWS KMS does
  --tls-key FILE              PEM private key of --tls-cert (both or neither)
  --quiet                     no request log on stderr
  --help                      this text

Without --nitro-root or --dev-root every request carrying a Recipient is denied.
Without --tls-cert/--tls-key it serves plain HTTP (tests of the stand-in only; enclaves speak
only HTTPS to KMS).
`;

class UsageError extends Error {}

function parseCredentials(list: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of list) {
    const i = entry.indexOf(":");
    if (i <= 0 || i === entry.length - 1)
      throw new UsageError("--credentials must look like ACCESS_KEY_ID:SECRET");
    out.set(entry.slice(0, i), entry.slice(i + 1));
  }
  if (out.size === 0) throw new UsageError("at least one --credentials ACCESS:SECRET is required");
  return out;
}

function readDevRoot(path: string): Uint8Array {
  if (statSync(path).size > 64 * 1024)
    throw new UsageError(`${path} is too large for a root certificate`);
  const raw = readFileSync(path);
  return raw.subarray(0, 11).toString("latin1") === "-----BEGIN "
    ? pemToDer(raw.toString("utf8"), path)
    : new Uint8Array(raw);
}

function positiveInt(v: string | undefined, name: string, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${name} must be an integer >= ${min}`);
  return n;
}

function buildVerifier(v: {
  nitroRoot?: string;
  devRoot?: string;
  allowDevelopment: boolean;
  maxAgeMs: number;
}): AttestationVerifier {
  const roots: TrustedRoot[] = [];
  if (v.nitroRoot !== undefined) roots.push(loadAwsNitroRoot(v.nitroRoot));
  if (v.devRoot !== undefined) {
    if (!v.allowDevelopment)
      throw new UsageError(
        "--dev-root needs --allow-development (documents from a simulated NSM prove nothing about real hardware)",
      );
    roots.push({ der: readDevRoot(v.devRoot), development: true });
    process.stderr.write(
      "devkms: WARNING: trusting a DEVELOPMENT attestation root (simulated NSM)\n",
    );
  }
  if (roots.length === 0) {
    return () => {
      throw new AttestationRejected(
        "untrusted_root",
        "the development KMS was started without a trusted attestation root",
      );
    };
  }
  return nitroAttestationVerifier({
    roots,
    allowDevelopment: v.allowDevelopment,
    maxAgeMs: v.maxAgeMs,
  });
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: "boolean" },
      "data-dir": { type: "string" },
      credentials: { type: "string", multiple: true },
      port: { type: "string" },
      host: { type: "string" },
      region: { type: "string" },
      "account-id": { type: "string" },
      "nitro-root": { type: "string" },
      "dev-root": { type: "string" },
      "allow-development": { type: "boolean" },
      "attestation-max-age-ms": { type: "string" },
      quiet: { type: "boolean" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const dataDir = values["data-dir"];
  if (!dataDir) throw new UsageError("--data-dir is required");
  const fromEnv = (process.env.DEVKMS_CREDENTIALS ?? "").split(",").filter((s) => s.length > 0);
  const credentials = parseCredentials([...(values.credentials ?? []), ...fromEnv]);
  const port = positiveInt(values.port, "--port", 0);
  if (port > 65535) throw new UsageError("--port must be at most 65535");
  const accountId = values["account-id"] ?? "111122223333";
  if (!/^\d{12}$/.test(accountId)) throw new UsageError("--account-id must be 12 digits");
  const region = values.region ?? "us-east-1";
  if (!/^[a-z0-9-]{1,32}$/.test(region)) throw new UsageError("--region is not a region name");

  const verifyAttestation = buildVerifier({
    nitroRoot: values["nitro-root"],
    devRoot: values["dev-root"],
    allowDevelopment: values["allow-development"] === true,
    maxAgeMs: positiveInt(
      values["attestation-max-age-ms"],
      "--attestation-max-age-ms",
      DEFAULT_ATTESTATION_MAX_AGE_MS,
    ),
  });
  const quiet = values.quiet === true;
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  const tls =
    certFile && keyFile
      ? { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") }
      : undefined;
  const kms = startDevKms({
    dataDir,
    credentials,
    verifyAttestation,
    region,
    accountId,
    hostname: values.host ?? "127.0.0.1",
    port,
    log: quiet ? undefined : jsonLogger("devkms"),
    tls,
  });
  process.stdout.write(
    `${JSON.stringify({ event: "listening", url: kms.url, host: kms.hostname, port: kms.port, pid: process.pid })}\n`,
  );
  const shutdown = () => {
    void kms.stop().finally(() => process.exit(0));
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  const usage =
    e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  process.stderr.write(`devkms: ${(e as Error).message}\n${usage ? "Try --help.\n" : ""}`);
  process.exit(2);
}
