/**
 * Starts a development enclave process from the bundled image (the
 * development entry, src/dev/enclave-main.ts): a Unix socket
 * in place of VSOCK, the simulated NSM's PKI on stdin (standing in for the
 * hardware), and an empty network namespace when the machine allows it.
 */
import { spawnSync } from "node:child_process";
import { serializeDevelopmentPki, type DevelopmentPki } from "../dev/dev-pki.ts";
import type { EnclaveImage } from "./enclave-image.ts";
import { startProcess, type Started } from "./processes.ts";

/** `unshare --net` needs root and the util-linux tool. */
export function canIsolate(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("unshare", ["--net", "true"]).status === 0;
}

export interface EnclaveProcessOptions {
  name: string;
  image: EnclaveImage;
  socketPath: string;
  pki: DevelopmentPki;
  isolate: boolean;
  phaseTimeoutMs: number;
}

export function startEnclaveProcess(o: EnclaveProcessOptions): Promise<Started> {
  const cmd = [
    process.execPath,
    o.image.entry,
    "--listen",
    `unix:${o.socketPath}`,
    "--phase-timeout-ms",
    String(o.phaseTimeoutMs),
  ];
  return startProcess(o.isolate ? ["unshare", "--net", ...cmd] : cmd, {
    name: `${o.name} enclave`,
    readyEvent: "listening",
    stdin: serializeDevelopmentPki(o.pki) + "\n",
  });
}
