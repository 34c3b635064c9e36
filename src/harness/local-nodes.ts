/**
 * Starts N signing nodes on this machine for tests and the demo: the KMS
 * stand-in (its own process), N enclave processes (each on a Unix socket in
 * place of VSOCK, in an empty network namespace when possible) and N hosts
 * (in this process), each with its own libsql file. The KMS key policy
 * releases data keys only to the bundled enclave image's PCR0.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KMSClient } from "@aws-sdk/client-kms";
import { startDevKms } from "./dev-kms.ts";
import { createDevelopmentPki, derToPem } from "../dev/dev-pki.ts";
import { EnclaveClient } from "../host/enclave-client.ts";
import { KmsProxy } from "../host/kms-proxy.ts";
import { NodeHost } from "../host/node-host.ts";
import { openStore } from "../host/store/index.ts";
import { bundleEnclave, type EnclaveImage } from "./enclave-image.ts";
import type { Started } from "./processes.ts";
import { canIsolate, startEnclaveProcess } from "./enclave-process.ts";

export interface LocalNodesOptions {
  nodes: number;
  dataDir: string;
  /** Run each enclave under `unshare --net` (needs root). Default: when root and unshare exist. */
  isolateNetwork?: boolean;
  /** Override the image whose PCR0 the KMS policy allows (tests of a wrong image). */
  allowedPcr0Hex?: string;
  phaseTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface LocalNodes {
  hosts: NodeHost[];
  image: EnclaveImage;
  kms: KMSClient;
  kmsUrl: string;
  kmsKeyId: string;
  enclaves: Started[];
  kmsProcess: Started;
  /** Every line the hosts logged. */
  hostLog: string[];
  networkIsolated: boolean;
  stop(): Promise<void>;
}

export async function startLocalNodes(o: LocalNodesOptions): Promise<LocalNodes> {
  const say = o.progress ?? (() => {});
  mkdirSync(o.dataDir, { recursive: true });
  const started: Started[] = [];
  const clients: EnclaveClient[] = [];
  const stopAll = async () => {
    for (const c of clients) c.close();
    await Promise.allSettled(started.map((s) => s.stop()));
  };
  try {
    say("bundling the enclave image");
    const image = await bundleEnclave(join(o.dataDir, "enclave-image"));
    say(`enclave image PCR0 ${image.pcr0Hex.slice(0, 16)}…`);
    const pki = createDevelopmentPki();
    const rootPem = join(o.dataDir, "dev-attestation-root.pem");
    writeFileSync(rootPem, derToPem(pki.root.der));

    say("starting the KMS stand-in");
    const devKms = await startDevKms(o.dataDir, rootPem, o.allowedPcr0Hex ?? image.pcr0Hex);
    const kmsProcess = devKms.process;
    started.push(kmsProcess);
    const kmsUrl = devKms.url;
    const kms = devKms.client;
    const kmsKeyId = devKms.keyId;

    const isolate = o.isolateNetwork ?? canIsolate();
    const hostLog: string[] = [];
    const hosts: NodeHost[] = [];
    for (let i = 1; i <= o.nodes; i++) {
      const nodeId = `node-${i}`;
      const sock = join(o.dataDir, `${nodeId}.enclave.sock`);
      say(`starting ${nodeId}: enclave${isolate ? " (empty network namespace)" : ""} and host`);
      const enclave = await startEnclaveProcess({
        name: nodeId,
        image,
        socketPath: sock,
        pki,
        isolate,
        phaseTimeoutMs: o.phaseTimeoutMs ?? 180_000,
      });
      started.push(enclave);
      const client = await EnclaveClient.connect({ kind: "unix", path: sock });
      clients.push(client);
      const dbPath = join(o.dataDir, `${nodeId}.db`);
      const { db } = openStore({ path: dbPath });
      hosts.push(
        new NodeHost({
          nodeId,
          enclave: client,
          kms: new KmsProxy(kms, kmsKeyId),
          db,
          log: (event, fields) => hostLog.push(JSON.stringify({ node: nodeId, event, ...fields })),
        }),
      );
    }
    return {
      hosts,
      image,
      kms,
      kmsUrl,
      kmsKeyId,
      enclaves: started.slice(1),
      kmsProcess,
      hostLog,
      networkIsolated: isolate,
      stop: async () => {
        for (const h of hosts) h.db.close();
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
