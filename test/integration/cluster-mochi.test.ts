/**
 * A small real cluster over the second MQTT 5 broker (mochi-mqtt,
 * src/harness/mochi.ts) instead of Mosquitto: three nodes (separate host and
 * enclave processes), the client SDK, a 2-of-3 DKG and signatures, a node's
 * Last Will seen as it dies, and a signature by the two left. The same
 * users, ACL and limits as on Mosquitto; what differs is the implementation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { startMochi } from "../../src/harness/mochi.ts";
import { fromHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { until } from "../helpers/until.ts";

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;

const verified = (r: SignResult, digest: Uint8Array) =>
  verifySignature(fromHex(r.publicKey), digest, {
    r: fromHex(r.signature.r),
    s: fromHex(r.signature.s),
    recoveryId: r.signature.recoveryId,
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-cluster-mochi-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    startBroker: startMochi,
  });
  client = await TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    timeoutMs: 120_000,
  });
}, 180_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a 3-node cluster over mochi-mqtt", () => {
  it("runs on the mochi broker, not Mosquitto", () => {
    expect(cluster.broker.proc.spawnfile).toMatch(/mochi-broker$/);
  });

  it("creates a 2-of-3 wallet by DKG and signs; the signature verifies", async () => {
    expect((await client.nodes()).nodes.map((n) => n.nodeId).sort()).toEqual([
      "node-1",
      "node-2",
      "node-3",
    ]);
    wallet = await client.createWallet({ threshold: 2, parties: 3 });
    expect(wallet.threshold).toBe(2);
    expect(new Set(wallet.nodes).size).toBe(3);
    for (let k = 0; k < 3; k++) {
      const digest = randomBytes(32);
      const r = await client.sign({ walletId: wallet.walletId, digest });
      expect(r.signers).toHaveLength(2);
      expect(verified(r, digest)).toBe(true);
    }
  }, 120_000);

  it("sees a killed node leave through its Last Will and signs with the two left", async () => {
    const victim = cluster.nodes[2]!;
    // Watch its presence directly: a request sent while the broker still counts the dying node
    // in the shared subscription could be handed to it and lost (on either broker), and the
    // client would then wait out its deadline; that is the documented contract, not tested here.
    const watcher = await mqtt.connectAsync(cluster.observer.url, {
      protocolVersion: 5,
      clientId: cluster.observer.username,
      username: cluster.observer.username,
      password: cluster.observer.password,
    });
    try {
      const statuses: string[] = [];
      watcher.on("message", (_t, payload) =>
        statuses.push(payload.length ? String(JSON.parse(payload.toString()).status) : "cleared"),
      );
      await watcher.subscribeAsync(`tss/v1/nodes/${victim.nodeId}/presence`, { qos: 1 });
      await until(() => statuses.at(-1) === "online", 10_000, "the node's retained presence");
      victim.host.proc.kill("SIGKILL");
      await until(() => statuses.at(-1) === "offline", 20_000, "the killed node's Last Will");
    } finally {
      await watcher.endAsync();
    }
    expect((await client.nodes()).nodes.map((n) => n.nodeId).sort()).toEqual(["node-1", "node-2"]);
    const digest = randomBytes(32);
    const r = await client.sign({ walletId: wallet.walletId, digest });
    expect([...r.signers].sort(), JSON.stringify(r)).toEqual(["node-1", "node-2"]);
    expect(verified(r, digest)).toBe(true);
  }, 120_000);
});
