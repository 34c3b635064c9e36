/**
 * A node's final answer survives the client's missing subscription: after a
 * broker restart without persistence the client is subscribed again only once
 * it has reconnected, possibly after the node finished, and the broker drops a
 * message nobody is subscribed to (PUBACK 0x10). The node offers the final
 * answer again until someone takes it or the request expires
 * (src/host/mqtt/requests.ts). Real Mosquitto, the project's ACL.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import { startMosquitto, type Mosquitto } from "../../src/harness/mosquitto.ts";
import { connectBus, type Bus, type RequestReply } from "../../src/host/mqtt/bus.ts";
import { sleep, until } from "../helpers/until.ts";

const PASSWORD = randomBytes(12).toString("hex");
let broker: Mosquitto;
let bus: Bus;
const logged: string[] = [];
/** Requests the node took, by request id, waiting for the test to answer them. */
const taken = new Map<string, RequestReply>();
const clients: MqttClient[] = [];

beforeAll(async () => {
  broker = await startMosquitto({
    nodes: [{ username: "ans-1", password: PASSWORD }],
    clients: ["sdk-a", "sdk-b"].map((username) => ({ username, password: PASSWORD })),
  });
  bus = await connectBus({
    url: broker.url,
    clientId: "ans-1",
    username: "ans-1",
    password: PASSWORD,
    log: (event) => logged.push(event),
  });
  await bus.serveClientRequests((_op, body, reply) =>
    taken.set((body as { requestId: string }).requestId, reply),
  );
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await bus?.close();
  await broker?.stop();
});

/** A client that published `requestId` and then lost its response subscription (as at a broker restart). */
async function requestThenUnsubscribe(username: string, requestId: string, expiryS: number) {
  const c = await mqtt.connectAsync({
    protocol: "mqtt",
    host: "127.0.0.1",
    port: broker.port,
    protocolVersion: 5,
    clientId: username,
    username,
    password: PASSWORD,
    reconnectPeriod: 0,
  });
  clients.push(c);
  const finals: unknown[] = [];
  c.on("message", (_t, payload) => {
    const m = JSON.parse(payload.toString()) as Record<string, unknown>;
    if ("ok" in m) finals.push(m);
  });
  const filter = `tss/v1/responses/${username}/#`;
  await c.subscribeAsync(filter, { qos: 1 });
  await c.publishAsync("tss/v1/requests/sign", JSON.stringify({ requestId }), {
    qos: 1,
    properties: {
      responseTopic: `tss/v1/responses/${username}/r`,
      correlationData: randomBytes(16),
      messageExpiryInterval: expiryS,
    },
  });
  await until(() => taken.has(requestId), 5_000, `the node taking ${requestId}`);
  await c.unsubscribeAsync(filter);
  return { finals, resubscribe: () => c.subscribeAsync(filter, { qos: 1 }) };
}

it("a final answer published while the client is not subscribed reaches it once it subscribes again, exactly once", async () => {
  const c = await requestThenUnsubscribe("sdk-a", "late-sub", 60);
  taken.get("late-sub")!.done({ signed: true });
  // Dropped by the broker at least once (nobody subscribed), then offered again.
  await until(
    () => logged.includes("answer_unheard_offering_again"),
    5_000,
    "the node seeing its answer unheard",
  );
  await sleep(1_000);
  expect(c.finals).toEqual([]);
  await c.resubscribe();
  await until(() => c.finals.length > 0, 5_000, "the final answer after resubscribing");
  await sleep(2_500); // a further offer would arrive within one longest wait
  expect(c.finals).toEqual([{ ok: true, result: { signed: true } }]);
  expect(logged).toContain("answer_delivered_late");
  expect(bus.stats().unheardAnswers).toBe(0);
});

it("stops offering an unheard final answer when the request expires (the client gave up)", async () => {
  const c = await requestThenUnsubscribe("sdk-b", "gone", 2);
  const t = Date.now();
  taken.get("gone")!.fail({ code: "ceremony_failed", message: "test", node: null });
  await until(() => bus.stats().unheardAnswers === 1, 8_000, "the node giving up");
  expect(Date.now() - t).toBeLessThan(4_000);
  expect(logged).toContain("answer_unheard");
  await c.resubscribe();
  await sleep(2_500);
  expect(c.finals).toEqual([]);
});
