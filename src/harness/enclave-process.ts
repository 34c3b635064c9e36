/**
 * Starts a development enclave process from the bundled image (the
 * development entry, src/dev/enclave-main.ts) or the compiled
 * tss-enclave-dev (enclave-image.ts compiledEnclaveImage): a Unix socket
 * in place of VSOCK, an empty network namespace when the machine allows it,
 * and on stdin what stands in for the hardware and AWS: the simulated NSM's
 * PKI, this node's PCR4 (on Nitro: the parent instance id's hash) and the
 * development CA the KMS stand-in's certificate chains to (on AWS: the
 * Amazon Trust Services roots built into the image).
 *
 * Its KMS configuration comes as flags, as the production EIF's ENTRYPOINT
 * fixes them: where to dial its host's KMS relay, the HTTPS endpoint (the
 * TLS server name it verifies), the region and the share-wrapping key.
 */
import { spawnSync } from "node:child_process";
import { serializeDevelopmentPki, type DevelopmentPki } from "../dev/dev-pki.ts";
import { devNodePcr4Hex } from "./dev-kms.ts";
import type { EnclaveImage } from "./enclave-image.ts";
import { startProcess, type Started } from "./processes.ts";

/** `unshare --net` needs root and the util-linux tool. */
export function canIsolate(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("unshare", ["--net", "true"]).status === 0;
}

/** The enclave's KMS settings; the relay is the host's and may start after the enclave. */
export interface EnclaveKmsOptions {
  /** Unix socket of the host's KMS relay (stands in for the parent's VSOCK port). */
  relayPath: string;
  /** https://HOST:PORT, HOST a name in the stand-in's certificate. */
  endpoint: string;
  region: string;
  keyArn: string;
  /** PEM of the development CA the enclave trusts for KMS (development entry only). */
  caPem: string;
}

export interface EnclaveProcessOptions {
  name: string;
  image: EnclaveImage;
  socketPath: string;
  pki: DevelopmentPki;
  /** This node's identity as its attestation documents carry it (48 bytes, hex); default devNodePcr4Hex(name). */
  pcr4Hex?: string;
  /** Without it the enclave runs but cannot seal or load shares (tests of other operations). */
  kms?: EnclaveKmsOptions;
  isolate: boolean;
  phaseTimeoutMs: number;
  /** The enclave's --max-sessions; default its own (ceremony-registry.ts DEFAULT_MAX_OPEN_SESSIONS). */
  maxSessions?: number;
  /** The enclave's --share-budget-bytes; default its own (share-cache.ts DEFAULT_SHARE_BUDGET_BYTES). */
  shareBudgetBytes?: number;
  /** A development administrators' policy (approval.ts encoding, hex). */
  adminPolicyHex?: string;
  /**
   * Start the enclave explicitly requiring no approvals (dev-enclave-input.ts
   * unapprovedWallets); default: when no adminPolicyHex is given, since a
   * harness cluster without administrators is a cluster without approvals.
   * false without adminPolicyHex: an enclave that creates no wallets.
   */
  unapprovedWallets?: boolean;
}

/** The development enclave's stdin line (src/dev/enclave-main.ts reads it). */
export function developmentStdin(o: EnclaveProcessOptions): string {
  return `${JSON.stringify({
    pki: JSON.parse(serializeDevelopmentPki(o.pki)),
    pcr4: o.pcr4Hex ?? devNodePcr4Hex(o.name),
    ...(o.kms ? { kmsCaPem: o.kms.caPem } : {}),
    ...(o.adminPolicyHex === undefined ? {} : { adminPolicy: o.adminPolicyHex }),
    ...((o.unapprovedWallets ?? o.adminPolicyHex === undefined) ? { unapprovedWallets: true } : {}),
  })}\n`;
}

export function startEnclaveProcess(o: EnclaveProcessOptions): Promise<Started> {
  const cmd = [
    ...(o.image.executable ? [] : [process.execPath]),
    o.image.entry,
    "--listen",
    `unix:${o.socketPath}`,
    "--phase-timeout-ms",
    String(o.phaseTimeoutMs),
    ...(o.maxSessions === undefined ? [] : ["--max-sessions", String(o.maxSessions)]),
    ...(o.shareBudgetBytes === undefined
      ? []
      : ["--share-budget-bytes", String(o.shareBudgetBytes)]),
    ...(o.kms
      ? [
          "--kms-relay",
          `unix:${o.kms.relayPath}`,
          "--kms-endpoint",
          o.kms.endpoint,
          "--kms-region",
          o.kms.region,
          "--kms-key-id",
          o.kms.keyArn,
        ]
      : []),
  ];
  return startProcess(o.isolate ? ["unshare", "--net", ...cmd] : cmd, {
    name: `${o.name} enclave`,
    readyEvent: "listening",
    stdin: developmentStdin(o),
  });
}
