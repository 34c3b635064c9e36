/**
 * A bounded sample of faults against the local cluster (separate host and
 * enclave processes, a real Mosquitto), one cluster for the file:
 *  - kill -9 of a participant's enclave: its node turns degraded and is not
 *    selected, requests succeed with the other nodes, the harness restarts
 *    the enclave (same socket, same PCR4), the node returns online and signs;
 *  - kill -9 of an enclave mid-ceremony: every request is answered;
 *  - kill -9 of a participant's host mid-ceremony: answered at once, the node
 *    blamed, not at the phase deadline;
 *  - kill -9 of the coordinator's host: the SDK fails with coordinator_lost
 *    naming it, and resubmitting the request id signs once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import {
  startCluster,
  type ClusterNode,
  type LocalCluster,
} from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import type { CreateWalletResult, Progress } from "../../src/client/types.ts";
import { rejected } from "../helpers/thrown.ts";
import { until } from "../helpers/until.ts";

/** Far beyond every bound asserted below: an answer that waited for it would fail the test. */
const PHASE_TIMEOUT_MS = 90_000;

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
let watcher: mqtt.MqttClient;
/** Every presence status seen, per node, in order. */
const presence = new Map<string, string[]>();

const lastStatus = (nodeId: string) => presence.get(nodeId)?.at(-1);
const node = (nodeId: string): ClusterNode => cluster.nodes.find((n) => n.nodeId === nodeId)!;
const kill9 = (pid: number | undefined) => process.kill(pid!, "SIGKILL");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-faults-"));
  cluster = await startCluster({ nodes: 5, dataDir: dir, phaseTimeoutMs: PHASE_TIMEOUT_MS });
  // Clients may read presence (the SDK watches its coordinator's): the test watches everyone's.
  watcher = await mqtt.connectAsync(cluster.client.url, {
    protocolVersion: 5,
    // Its own client user: a broker user has one connection at a time.
    clientId: cluster.clients[1]!.username,
    username: cluster.clients[1]!.username,
    password: cluster.clients[1]!.password,
  });
  watcher.on("message", (topic, payload) => {
    const m = /^tss\/v1\/nodes\/([^/]+)\/presence$/.exec(topic);
    if (!m) return;
    const status = payload.length
      ? (JSON.parse(payload.toString()) as { status: string }).status
      : "offline";
    presence.set(m[1]!, [...(presence.get(m[1]!) ?? []), status]);
  });
  await watcher.subscribeAsync("tss/v1/nodes/+/presence", { qos: 1 });
  client = await TssClient.connect({
    ...cluster.client,
    clientId: "faults-client",
    timeoutMs: 120_000,
  });
  wallet = await client.createWallet({ threshold: 3, parties: 5 });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await watcher?.endAsync().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("faults", () => {
  it("an enclave killed between requests: degraded, not selected, restarted by the harness, online and signing again", async () => {
    const victim = node("node-5");
    const release = victim.enclave.holdRestarts();
    const seen = presence.get("node-5")?.length ?? 0;
    kill9(victim.enclave.proc.pid);
    await until(() => lastStatus("node-5") === "degraded", 10_000, "node-5 degraded");
    expect(presence.get("node-5")!.slice(seen)).toEqual(["degraded"]);
    const shown = await client.nodes();
    expect(shown.nodes.find((n) => n.nodeId === "node-5")?.status).toBe("degraded");

    // 3-of-5 with one enclave down: every request signs, never with node-5.
    for (let i = 0; i < 4; i++) {
      const r = await client.sign({ walletId: wallet.walletId, digest: randomBytes(32) });
      expect(r.signers).toHaveLength(3);
      expect(r.signers).not.toContain("node-5");
    }

    // The service manager restarts the enclave; the host redials, re-attests, goes online.
    release();
    await victim.enclave.restarted(1);
    await until(() => lastStatus("node-5") === "online", 20_000, "node-5 online again");
    let signedBy5 = false;
    for (let i = 0; i < 10 && !signedBy5; i++) {
      const r = await client.sign({ walletId: wallet.walletId, digest: randomBytes(32) });
      signedBy5 = r.signers.includes("node-5");
    }
    // Its shares were reloaded lazily into the new enclave.
    expect(signedBy5).toBe(true);
  });

  it("an enclave killed mid-ceremony: every request is answered, failures blame its node", async () => {
    const victim = node("node-4");
    let killedAt = 0;
    const onProgress = (p: Progress) => {
      if (killedAt === 0 && p.stage === "sign" && p.phase === 2) {
        killedAt = Date.now();
        kill9(victim.enclave.proc.pid);
      }
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 4 }, () =>
        client.sign({ walletId: wallet.walletId, digest: randomBytes(32), onProgress }),
      ),
    );
    expect(killedAt).toBeGreaterThan(0);
    for (const o of outcomes) {
      if (o.status === "fulfilled") continue;
      expect(o.reason).toBeInstanceOf(TssError);
      expect((o.reason as TssError).node).toBe("node-4");
    }
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    await until(() => lastStatus("node-4") === "online", 20_000, "node-4 online again");
    await victim.enclave.restarted(1);
    const r = await client.sign({ walletId: wallet.walletId, digest: randomBytes(32) });
    expect(r.signers).toHaveLength(3);
  });

  it("a participant's host killed mid-ceremony: answered at once, the node blamed", async () => {
    let victim: string | null = null;
    let killedAt = 0;
    const err = await rejected(
      TssError,
      client.createWallet({
        threshold: 3,
        parties: 5,
        onProgress: (p) => {
          if (victim || p.stage !== "dkg" || p.phase !== 2 || !p.coordinator) return;
          // Every node takes part in a 5-of-5 DKG on five nodes: kill one that is not coordinating.
          victim = cluster.nodes.map((n) => n.nodeId).find((id) => id !== p.coordinator)!;
          killedAt = Date.now();
          kill9(node(victim).host.proc.pid);
        },
      }),
    );
    expect(victim).not.toBeNull();
    expect(err.code).toBe("ceremony_failed");
    expect(err.node).toBe(victim);
    // Far below the phase deadline: the Last Will ended the wait.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    await node(victim!).restartHost();
    await until(() => lastStatus(victim!) === "online", 10_000, `${victim} online again`);
  });

  it("the coordinator's host killed: coordinator_lost naming it; the same request id then signs once", async () => {
    const requestId = `faults-${randomBytes(6).toString("hex")}`;
    const digest = randomBytes(32);
    let coordinator: string | null = null;
    let killedAt = 0;
    const err = await rejected(
      TssError,
      client.sign({
        walletId: wallet.walletId,
        digest,
        requestId,
        onProgress: (p) => {
          if (coordinator || !p.coordinator) return;
          coordinator = p.coordinator;
          killedAt = Date.now();
          kill9(node(coordinator).host.proc.pid);
        },
      }),
    );
    expect(coordinator).not.toBeNull();
    expect(err.code).toBe("coordinator_lost");
    expect(err.node).toBe(coordinator);
    expect(err.requestId).toBe(requestId);
    expect(Date.now() - killedAt).toBeLessThan(10_000);

    // Another node takes the resubmitted id (the dead one's "running" row is not reachable).
    const again = await client.sign({ walletId: wallet.walletId, digest, requestId });
    expect(again.coordinator).not.toBe(coordinator);
    const third = await client.sign({ walletId: wallet.walletId, digest, requestId });
    expect(third.signature).toEqual(again.signature);

    // Back with its stale "running" row: the stored success still wins.
    await node(coordinator!).restartHost();
    await until(() => lastStatus(coordinator!) === "online", 10_000, `${coordinator} online`);
    for (let i = 0; i < 3; i++) {
      const r = await client.sign({ walletId: wallet.walletId, digest, requestId });
      expect(r.signature).toEqual(again.signature);
    }
  });
});
