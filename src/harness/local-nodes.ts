/**
 * Starts N signing nodes on this machine for tests and the demo: the KMS
 * stand-in (its own process, HTTPS with a development CA), N enclave
 * processes (each on a Unix socket in place of VSOCK, in an empty network
 * namespace when possible) and N hosts (in this process), each with its own
 * libsql file and its own KMS relay, the enclave's only way to KMS. The key
 * policy releases a node's data keys only to an enclave of the bundled image
 * that attests that node's PCR4.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KMSClient } from "@aws-sdk/client-kms";
import { devNodePcr4Hex, enclaveKmsOptions, startDevKms } from "./dev-kms.ts";
import { createDevelopmentPki, derToPem } from "../dev/dev-pki.ts";
import { EnclaveClient } from "../host/enclave-client.ts";
import { staticCredentials, type KmsCredentials } from "../host/kms-credentials.ts";
import { startKmsRelay, type KmsRelay, type RelayDirection } from "../host/kms-relay.ts";
import { NodeHost } from "../host/node-host.ts";
import { openStore } from "../host/store/index.ts";
import { bundleEnclave, type EnclaveImage } from "./enclave-image.ts";
import type { Started } from "./processes.ts";
import { canIsolate } from "./enclave-process.ts";
import { superviseEnclaveProcess } from "./supervise.ts";

export interface LocalNodesOptions {
  nodes: number;
  dataDir: string;
  /** Run each enclave under `unshare --net` (needs root). Default: when root and unshare exist. */
  isolateNetwork?: boolean;
  /** Override the image whose PCR0 the KMS policy allows (tests of a wrong image). */
  allowedPcr0Hex?: string;
  phaseTimeoutMs?: number;
  /** Keep a copy of every byte the KMS relays carry (tests search it for secrets). */
  recordRelayTraffic?: boolean;
  /** The enclaves' development administrators' policy (hex); without it they do not require approvals. */
  adminPolicyHex?: string;
  /** Each host's cap on ceremonies it takes part in at once (NodeHostOptions.maxCeremonies). */
  maxCeremonies?: number;
  /** Each enclave's cap on open ceremony sessions (its --max-sessions). */
  enclaveMaxSessions?: number;
  /** Each enclave's memory budget for loaded shares (its --share-budget-bytes). */
  enclaveShareBudgetBytes?: number;
  progress?: (line: string) => void;
}

/** One chunk a node's KMS relay carried. */
export interface RelayedChunk {
  nodeId: string;
  direction: RelayDirection;
  bytes: Uint8Array;
}

export interface LocalNodes {
  hosts: NodeHost[];
  image: EnclaveImage;
  /** PCR4 (hex) each node's enclave attests, by host index. */
  pcr4Hex: string[];
  /** The key administrator's client (trusts the development CA). */
  kms: KMSClient;
  kmsUrl: string;
  kmsKeyId: string;
  kmsKeyArn: string;
  /** What the enclaves trust for KMS's certificate. */
  kmsCaPem: string;
  /** The credentials every host hands its enclave. */
  kmsCredentials: KmsCredentials;
  relays: KmsRelay[];
  /** Everything the relays carried, when recordRelayTraffic was set. */
  relayTraffic: RelayedChunk[];
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
  const relays: KmsRelay[] = [];
  const stopAll = async () => {
    for (const c of clients) c.close();
    await Promise.allSettled(relays.map((r) => r.close()));
    await Promise.allSettled(started.map((s) => s.stop()));
  };
  try {
    say("bundling the enclave image");
    const image = await bundleEnclave(join(o.dataDir, "enclave-image"));
    say(`enclave image PCR0 ${image.pcr0Hex.slice(0, 16)}…`);
    const pki = createDevelopmentPki();
    const rootPem = join(o.dataDir, "dev-attestation-root.pem");
    writeFileSync(rootPem, derToPem(pki.root.der));
    const nodeIds = Array.from({ length: o.nodes }, (_, i) => `node-${i + 1}`);
    const pcr4Hex = nodeIds.map(devNodePcr4Hex);

    say("starting the KMS stand-in (HTTPS, development CA)");
    const devKms = await startDevKms({
      dataDir: o.dataDir,
      devRootPem: rootPem,
      pcr0Hex: o.allowedPcr0Hex ?? image.pcr0Hex,
      nodes: nodeIds.map((name, i) => ({ name, pcr4Hex: pcr4Hex[i]! })),
    });
    const kmsProcess = devKms.process;
    started.push(kmsProcess);
    const kmsCredentials = {
      accessKeyId: devKms.accessKeyId,
      secretAccessKey: devKms.secretAccessKey,
    };

    const isolate = o.isolateNetwork ?? canIsolate();
    const hostLog: string[] = [];
    const relayTraffic: RelayedChunk[] = [];
    const hosts: NodeHost[] = [];
    for (const [i, nodeId] of nodeIds.entries()) {
      const sock = join(o.dataDir, `${nodeId}.enclave.sock`);
      const relayPath = join(o.dataDir, `${nodeId}.kms-relay.sock`);
      const log = (event: string, fields: Record<string, unknown>) =>
        hostLog.push(JSON.stringify({ node: nodeId, event, ...fields }));
      relays.push(
        startKmsRelay({
          listen: { kind: "unix", path: relayPath },
          target: { host: "127.0.0.1", port: devKms.port },
          log,
          onBytes: o.recordRelayTraffic
            ? (direction, bytes) => relayTraffic.push({ nodeId, direction, bytes: bytes.slice() })
            : undefined,
        }),
      );
      say(`starting ${nodeId}: enclave${isolate ? " (empty network namespace)" : ""} and host`);
      // Restarted when it dies (same socket, same PCR4), as a service manager would.
      const enclave = await superviseEnclaveProcess(say, {
        name: nodeId,
        image,
        socketPath: sock,
        pki,
        pcr4Hex: pcr4Hex[i]!,
        adminPolicyHex: o.adminPolicyHex,
        kms: enclaveKmsOptions(devKms, relayPath),
        isolate,
        phaseTimeoutMs: o.phaseTimeoutMs ?? 180_000,
        maxSessions: o.enclaveMaxSessions,
        shareBudgetBytes: o.enclaveShareBudgetBytes,
      });
      started.push(enclave);
      const client = await EnclaveClient.connect({ kind: "unix", path: sock });
      clients.push(client);
      const { db } = openStore({ path: join(o.dataDir, `${nodeId}.db`) });
      hosts.push(
        new NodeHost({
          nodeId,
          enclave: client,
          credentials: staticCredentials(kmsCredentials),
          db,
          log,
          maxCeremonies: o.maxCeremonies,
        }),
      );
    }
    // In process there is no bus: each host asks the others directly, as the ceremonyOutcome
    // op would (a coordinator's refresh rollback is settled from these answers, node-host.ts).
    for (const h of hosts)
      h.outcomeSource = async (walletId, sessionId) =>
        hosts
          .filter((o) => o.nodeId !== h.nodeId)
          .map((o) => ({ nodeId: o.nodeId, answer: o.ceremonyOutcome(walletId, sessionId) }));
    return {
      hosts,
      image,
      pcr4Hex,
      kms: devKms.client,
      kmsUrl: devKms.url,
      kmsKeyId: devKms.keyId,
      kmsKeyArn: devKms.keyArn,
      kmsCaPem: devKms.tls.caPem,
      kmsCredentials,
      relays,
      relayTraffic,
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
