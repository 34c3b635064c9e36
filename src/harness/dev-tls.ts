/**
 * The development TLS PKI for the KMS stand-in: a throwaway CA and one server
 * certificate for localhost / 127.0.0.1, made with the openssl command line
 * (already on every machine that builds this project; no X.509 library for a
 * test fixture). The CA is what a development enclave is told to trust in
 * place of the Amazon Trust Services roots, and what the harness's own admin
 * KMS client trusts.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface DevTls {
  /** PEM of the development CA: the only trust anchor for the stand-in's certificate. */
  caPem: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The names the server certificate is valid for. */
  serverNames: readonly string[];
}

/** Server names in the certificate: what a development enclave may use in --kms-endpoint. */
export const DEV_KMS_SERVER_NAMES = ["localhost", "127.0.0.1"] as const;

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(
      `openssl ${args[0]} failed: ${(r.stderr || r.error?.message || "no output").trim().slice(-800)}`,
    );
}

/** Writes ca.pem, server.pem and server.key into `dir` (P-256 keys, valid for two days). */
export function createDevTls(dir: string): DevTls {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=tss development KMS CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(
    ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  writeFileSync(
    join(dir, "server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "",
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ],
    dir,
  );
  const caFile = join(dir, "ca.pem");
  return {
    caPem: readFileSync(caFile, "utf8"),
    caFile,
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    serverNames: DEV_KMS_SERVER_NAMES,
  };
}
