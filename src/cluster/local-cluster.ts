/**
 * A complete local cluster: one Mosquitto, the KMS stand-in (HTTPS, a
 * development CA), and N nodes, each a separate enclave process (Unix socket
 * standing in for VSOCK, empty network namespace when root) and a separate
 * host process configured by a JSON file; the host runs the KMS relay its
 * enclave dials. Adding a node is writing one more config and starting it;
 * the key policy names every node's PCR4, so the policy is written for the
 * nodes the cluster may grow to (maxNodes).
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDevelopmentPki, derToPem, type DevelopmentPki } from "../dev/dev-pki.ts";
import {
  bundleEnclave,
  compiledEnclaveImage,
  type EnclaveImage,
} from "../harness/enclave-image.ts";
import {
  DEV_KMS_REGION,
  devNodePcr4Hex,
  enclaveKmsOptions,
  startDevKms,
  type DevKms,
} from "../harness/dev-kms.ts";
import { canIsolate } from "../harness/enclave-process.ts";
import {
  generatedUsers,
  startMosquitto,
  type BrokerUser,
  type Mosquitto,
} from "../harness/mosquitto.ts";
import { startProcess, type Started } from "../harness/processes.ts";
import { superviseEnclaveProcess, type Supervised } from "../harness/supervise.ts";
import type { NodeConfig } from "../host/config.ts";
import { DEFAULT_CLIENT_LIMITS, DEFAULT_MAX_CEREMONIES } from "../host/rate-limits.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

export interface ClusterNode {
  nodeId: string;
  config: string;
  /** Restarted when it dies (same socket, same PCR4), as a service manager would. */
  enclave: Supervised;
  /** The current host process (replaced by restartHost). */
  host: Started;
  /** Starts the host again from the same config (after a test killed it). */
  restartHost(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClientCredentials {
  url: string;
  username: string;
  password: string;
}

/** Client broker users the cluster creates: a user has one connection at a time. */
export const CLUSTER_CLIENT_USERS = ["tss-client", "tss-client-2", "tss-client-3"];

export interface LocalCluster {
  dataDir: string;
  /** The first client user (written to client.json for the CLI). */
  client: ClientCredentials;
  /** Every client user (CLUSTER_CLIENT_USERS), each with its own password. */
  clients: ClientCredentials[];
  /** A test-only broker user that reads every tss/v1 topic and writes none. */
  observer: ClientCredentials;
  /** Each admitted node's broker user (username = node id), started or not. */
  nodeUsers: Record<string, BrokerUser>;
  /** The broker (fault tests restart it). */
  broker: Mosquitto;
  image: EnclaveImage;
  /** The development PKI the enclaves' simulated NSM signs with (benchmarks' dealer: src/dev/bench-dealer.ts). */
  pki: DevelopmentPki;
  /** The KMS stand-in (its administrator's client, key and CA). */
  kms: DevKms;
  nodes: ClusterNode[];
  /** Starts one more node from a fresh config; nothing else changes. */
  addNode(nodeId?: string): Promise<ClusterNode>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes: number;
  /** Nodes the KMS key policy admits (node-1..node-maxNodes); default nodes + 2, room for addNode. */
  maxNodes?: number;
  dataDir: string;
  phaseTimeoutMs?: number;
  progress?: (line: string) => void;
  /** The enclaves' development administrators' policy (approval.ts encoding, hex); without it they do not require approvals. */
  adminPolicyHex?: string;
  /** Every host's admission limits (config.ts `limits`); default rate-limits.ts's. */
  limits?: Partial<NodeConfig["limits"]>;
  /** Each enclave's memory budget for loaded shares (its --share-budget-bytes); default its own. */
  enclaveShareBudgetBytes?: number;
  /**
   * Run the compiled executables (build/build-executables.sh; src/harness/executables.ts)
   * instead of the sources: the host, and the development enclave tss-enclave-dev. The
   * host then takes its broker password from env TSS_MQTT_PASSWORD, not its file.
   */
  executables?: { host: string; enclaveDev: string };
  /** The MQTT 5 broker harness: Mosquitto by default; src/harness/mochi.ts startMochi takes the same options. */
  startBroker?: typeof startMosquitto;
}

export async function startCluster(o: ClusterOptions): Promise<LocalCluster> {
  const say = o.progress ?? (() => {});
  mkdirSync(o.dataDir, { recursive: true });
  // Mosquitto drops to its own user and must traverse into its folder; 0711
  // lets it without letting anyone list what is here (configs are 0600).
  chmodSync(o.dataDir, 0o711);
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    // Hosts first (they announce "offline"), then enclaves, KMS, broker.
    for (const s of stoppers.reverse()) await s().catch(() => {});
    stoppers.length = 0;
  };
  try {
    say(o.executables ? "measuring the compiled enclave" : "bundling the enclave image");
    const image = o.executables
      ? compiledEnclaveImage(o.executables.enclaveDev)
      : await bundleEnclave(join(o.dataDir, "enclave-image"));
    say(`enclave image PCR0 ${image.pcr0Hex.slice(0, 24)}…`);
    const pki: DevelopmentPki = createDevelopmentPki();
    const rootPem = join(o.dataDir, "dev-attestation-root.pem");
    writeFileSync(rootPem, derToPem(pki.root.der));

    const admitted = Array.from({ length: o.maxNodes ?? o.nodes + 2 }, (_, i) => `node-${i + 1}`);
    say("starting Mosquitto (one broker user per node and per client)");
    // Every node the cluster may grow to has its own user now: addNode changes nothing else.
    const nodeUserList = generatedUsers(admitted);
    const nodeUsers = Object.fromEntries(nodeUserList.map((u) => [u.username, u]));
    const clientUsers = generatedUsers(CLUSTER_CLIENT_USERS);
    const [observerUser] = generatedUsers(["tss-observer"]);
    mkdirSync(join(o.dataDir, "mosquitto"), { recursive: true });
    const broker = await (o.startBroker ?? startMosquitto)({
      nodes: nodeUserList,
      clients: clientUsers,
      observers: [observerUser!],
      dataDir: join(o.dataDir, "mosquitto"),
    });
    stoppers.push(() => broker.stop());

    say("starting the KMS stand-in");
    const kms: DevKms = await startDevKms({
      dataDir: o.dataDir,
      devRootPem: rootPem,
      pcr0Hex: image.pcr0Hex,
      nodes: admitted.map((name) => ({ name, pcr4Hex: devNodePcr4Hex(name) })),
    });
    stoppers.push(() => kms.process.stop());

    const isolate = canIsolate();
    const nodeUser = (nodeId: string): BrokerUser => {
      const u = nodeUsers[nodeId];
      if (!u)
        throw new Error(`${nodeId} has no broker user: the cluster admits ${admitted.join(", ")}`);
      return u;
    };
    const startNode = async (nodeId: string): Promise<ClusterNode> => {
      const sock = join(o.dataDir, `${nodeId}.enclave.sock`);
      const relayPath = join(o.dataDir, `${nodeId}.kms-relay.sock`);
      say(`starting ${nodeId}: enclave${isolate ? " (empty network namespace)" : ""}`);
      const enclave = await superviseEnclaveProcess(say, {
        name: nodeId,
        image,
        socketPath: sock,
        pki,
        pcr4Hex: devNodePcr4Hex(nodeId),
        adminPolicyHex: o.adminPolicyHex,
        kms: enclaveKmsOptions(kms, relayPath),
        isolate,
        phaseTimeoutMs: o.phaseTimeoutMs ?? 120_000,
        shareBudgetBytes: o.enclaveShareBudgetBytes,
      });
      const config: NodeConfig = {
        nodeId,
        mqtt: {
          url: broker.url,
          username: nodeId,
          ...(o.executables ? {} : { password: nodeUser(nodeId).password }),
        },
        enclave: `unix:${sock}`,
        database: join(o.dataDir, `${nodeId}.db`),
        kms: {
          relay: `unix:${relayPath}`,
          target: `127.0.0.1:${kms.port}`,
          region: DEV_KMS_REGION,
          accessKeyId: kms.accessKeyId,
          secretAccessKey: kms.secretAccessKey,
        },
        phaseTimeoutMs: o.phaseTimeoutMs ?? 120_000,
        limits: {
          requestsPerSecond: DEFAULT_CLIENT_LIMITS.requestsPerSecond,
          requestBurst: DEFAULT_CLIENT_LIMITS.burst,
          maxInFlight: DEFAULT_CLIENT_LIMITS.maxInFlight,
          maxCeremonies: DEFAULT_MAX_CEREMONIES,
          ...o.limits,
        },
      };
      const configPath = join(o.dataDir, `${nodeId}.json`);
      writeFileSync(configPath, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
      say(`starting ${nodeId}: host`);
      const hostCmd = o.executables
        ? [o.executables.host]
        : [process.execPath, join(ROOT, "src/host/main.ts")];
      const startHost = () =>
        startProcess([...hostCmd, "--config", configPath], {
          name: `${nodeId} host`,
          readyEvent: "ready",
          ...(o.executables ? { env: { TSS_MQTT_PASSWORD: nodeUser(nodeId).password } } : {}),
        });
      let host: Started;
      try {
        host = await startHost();
      } catch (e) {
        await enclave.stop();
        throw e;
      }
      const node: ClusterNode = {
        nodeId,
        config: configPath,
        enclave,
        host,
        restartHost: async () => {
          await node.host.stop();
          node.host = await startHost();
        },
        stop: async () => {
          await node.host.stop();
          await enclave.stop();
        },
      };
      stoppers.push(() => node.stop());
      return node;
    };
    const nodes: ClusterNode[] = [];
    for (let i = 1; i <= o.nodes; i++) nodes.push(await startNode(`node-${i}`));
    const clients: ClientCredentials[] = clientUsers.map((u) => ({ url: broker.url, ...u }));
    // `trust` tells tss this cluster's development root and image (src/cli/trust.ts); it is
    // still used only with --allow-development.
    const clientFile = {
      ...clients[0],
      trust: { developmentRoot: "dev-attestation-root.pem", imageHashes: [image.pcr0Hex] },
    };
    writeFileSync(join(o.dataDir, "client.json"), JSON.stringify(clientFile, null, 2) + "\n", {
      mode: 0o600,
    });
    return {
      dataDir: o.dataDir,
      client: clients[0]!,
      clients,
      observer: { url: broker.url, ...observerUser! },
      nodeUsers,
      broker,
      image,
      pki,
      kms,
      nodes,
      addNode: async (nodeId = `node-${nodes.length + 1}`) => {
        const n = await startNode(nodeId);
        nodes.push(n);
        return n;
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
