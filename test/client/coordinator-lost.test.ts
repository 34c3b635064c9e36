/**
 * The SDK against a real Mosquitto (the project's ACL) and a stand-in
 * coordinator: when the coordinator named in a progress message loses its
 * connection, the broker publishes its Last Will and the SDK fails the
 * request with coordinator_lost naming it, long before the request deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import { startMosquitto, type Mosquitto } from "../../src/harness/mosquitto.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { presenceTopic } from "../../src/shared/wire/topics.ts";

const NODE = { username: "tss-node", password: randomBytes(12).toString("hex") };
const CLIENT = { username: "tss-client", password: randomBytes(12).toString("hex") };
let broker: Mosquitto;
let client: TssClient;
const coordinators: MqttClient[] = [];

/** A coordinator that sends one progress message (naming itself or not) and then dies without DISCONNECT. */
async function dyingCoordinator(nodeId: string, nameItself: boolean): Promise<MqttClient> {
  const offline = JSON.stringify({ nodeId, status: "offline" });
  const c = await mqtt.connectAsync({
    protocol: "mqtt",
    host: "127.0.0.1",
    port: broker.port,
    protocolVersion: 5,
    clientId: nodeId,
    username: nodeId,
    password: NODE.password,
    reconnectPeriod: 0,
    will: { topic: presenceTopic(nodeId), payload: Buffer.from(offline), qos: 1, retain: true },
  });
  coordinators.push(c);
  await c.publishAsync(
    presenceTopic(nodeId),
    JSON.stringify({ nodeId, status: "online", since: Date.now(), pcr0: null, version: "t" }),
    { qos: 1, retain: true },
  );
  c.on("message", (_t, _p, packet) => {
    const progress = {
      stage: "sign",
      phase: 1,
      of: 4,
      ...(nameItself ? { coordinator: nodeId } : {}),
    };
    void c
      .publishAsync(packet.properties!.responseTopic!, JSON.stringify({ progress }), {
        qos: 1,
        properties: { correlationData: packet.properties!.correlationData! },
      })
      .then(() => setTimeout(() => c.stream.destroy(), 100));
  });
  await c.subscribeAsync("$share/tss-nodes/tss/v1/requests/+", { qos: 1 });
  return c;
}

beforeAll(async () => {
  // One broker user per node (username = node id), as the ACL requires.
  broker = await startMosquitto({
    nodes: ["coord-1", "coord-2"].map((username) => ({ username, password: NODE.password })),
    clients: [CLIENT],
  });
  client = await TssClient.connect({
    url: broker.url,
    username: CLIENT.username,
    password: CLIENT.password,
    timeoutMs: 30_000,
  });
});

afterAll(async () => {
  await client?.close();
  for (const c of coordinators) c.end(true);
  await broker?.stop();
});

const sign = (o: { timeoutMs?: number } = {}) =>
  client.sign({ walletId: "w_test", digest: randomBytes(32), requestId: "r-lost", ...o }).then(
    () => null,
    (e: unknown) => e as TssError,
  );

describe("coordinator_lost", () => {
  it("fails the request as soon as the named coordinator's Last Will arrives", async () => {
    await dyingCoordinator("coord-1", true);
    const started = Date.now();
    const e = await sign();
    expect(e).toBeInstanceOf(TssError);
    expect(e!.code).toBe("coordinator_lost");
    expect(e!.node).toBe("coord-1");
    expect(e!.requestId).toBe("r-lost");
    expect(e!.message).toMatch(/same requestId/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("without a coordinator in the progress, waits for its own deadline", async () => {
    await dyingCoordinator("coord-2", false);
    const e = await sign({ timeoutMs: 2_000 });
    expect(e!.code).toBe("deadline_exceeded");
  });
});
