/**
 * A node's final answer survives the client's missing subscription: after a
 * broker restart without persistence the client is subscribed again only once
 * it has reconnected, possibly after the node finished, and the broker drops a
 * message nobody is subscribed to (PUBACK 0x10). The node offers the final
 * answer again until someone takes it or the request expires
 * (src/host/mqtt/requests.ts). Real Mosquitto, the project's ACL.
 *
 * And the re-offer is bounded: refusals (bad_request, rate_limited) are sent
 * once, each answer is offered a limited number of times within a limited
 * window, only so many answers are offered at once, and a PUBACK 0x10 for
 * some other publish does not make a delivered answer be sent again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { startMosquitto, type Mosquitto } from "../../src/harness/mosquitto.ts";
import { connectBus, type Bus, type RequestReply } from "../../src/host/mqtt/bus.ts";
import { RequestServer, type ReofferLimits } from "../../src/host/mqtt/requests.ts";
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
    nodes: ["ans-1", "ans-2"].map((username) => ({ username, password: PASSWORD })),
    clients: ["sdk-a", "sdk-b", "sdk-c"].map((username) => ({ username, password: PASSWORD })),
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

function connect(username: string, extra: mqtt.IClientOptions = {}) {
  return mqtt
    .connectAsync({
      protocol: "mqtt",
      host: "127.0.0.1",
      port: broker.port,
      protocolVersion: 5,
      clientId: username,
      username,
      password: PASSWORD,
      reconnectPeriod: 0,
      ...extra,
    })
    .then((c) => (clients.push(c), c));
}

/** A client that published `requestId` and then lost its response subscription (as at a broker restart). */
async function requestThenUnsubscribe(username: string, requestId: string, expiryS: number) {
  const c = await connect(username);
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

describe("bounds on offering again", () => {
  /** Message ids for `node`: counting up, or `fixed` while a test makes an id repeat. */
  const ids = { last: 0, fixed: null as number | null };
  const idProvider: NonNullable<mqtt.IClientOptions["messageIdProvider"]> = {
    allocate: () => (ids.last = ids.fixed ?? (ids.last % 65_535) + 1),
    getLastAllocated: () => ids.last,
    register: () => true,
    deallocate: () => {},
    clear: () => {},
  };
  let node: MqttClient;
  /** Publishes `node` sent, by topic. */
  const sent = new Map<string, number>();
  const servers: RequestServer[] = [];
  let n = 0;

  beforeAll(async () => {
    node = await connect("ans-2", { messageIdProvider: idProvider });
    node.on("packetsend", (p) => {
      if (p.cmd === "publish") sent.set(p.topic, (sent.get(p.topic) ?? 0) + 1);
    });
  });
  afterAll(() => {
    for (const s of servers) s.close();
  });

  /** A RequestServer on `node` (as bus.ts wires one) whose handler hands each reply to the test. */
  function server(limits: Partial<ReofferLimits> = {}) {
    const events: string[] = [];
    const s = new RequestServer(node, (e) => events.push(e), limits);
    node.on("packetreceive", (p) => s.onPacket(p));
    const replies: RequestReply[] = [];
    s.setHandler((_op, _body, reply) => replies.push(reply));
    servers.push(s);
    /** Hands `s` a request as the shared subscription would; returns its Response Topic. */
    const request = (o: { client?: string; payload?: string; expiryS?: number } = {}) => {
      const topic = `tss/v1/responses/${o.client ?? "sdk-c"}/r${++n}`;
      s.onMessage("tss/v1/requests/sign", Buffer.from(o.payload ?? `{"requestId":"r${n}"}`), {
        properties: {
          responseTopic: topic,
          correlationData: randomBytes(16),
          messageExpiryInterval: o.expiryS ?? 60,
        },
      } as IPublishPacket);
      return topic;
    };
    const offeringAgain = () => events.filter((e) => e === "answer_unheard_offering_again").length;
    return { s, replies, request, offeringAgain };
  }

  it("a rejection or a rate_limited refusal nobody hears is published once, not offered again", async () => {
    const { s, replies, request } = server();
    const malformed = request({ payload: "{not json" });
    const refused = request();
    replies.at(-1)!.fail({ code: "rate_limited", message: "too many", node: null });
    const ran = request();
    replies.at(-1)!.fail({ code: "ceremony_failed", message: "test", node: null });
    // The answer of a request that ran is offered again (so the refusals' single publish is the fix's doing).
    await until(() => (sent.get(ran) ?? 0) >= 3, 5_000, "the failure offered again");
    expect(sent.get(malformed)).toBe(1);
    expect(sent.get(refused)).toBe(1);
    expect(s.counters.badRequests).toBe(1);
    s.close();
  });

  it("an answer is offered at most maxOffers times, and not past the offer window whatever its expiry", async () => {
    const { s, replies, request } = server({ maxOffers: 3, offerWindowS: 1 });
    const capped = request({ expiryS: 600 });
    replies.at(-1)!.done({ n: 1 });
    await until(() => s.counters.unheardAnswers === 1, 5_000, "the offers ending");
    expect(sent.get(capped)).toBe(3);
    const { s: s2, replies: r2, request: req2 } = server({ offerWindowS: 1 });
    const t = Date.now();
    const windowed = req2({ expiryS: 600 });
    r2.at(-1)!.done({ n: 2 });
    await until(() => s2.counters.unheardAnswers === 1, 5_000, "the window ending");
    expect(Date.now() - t).toBeLessThan(2_000);
    expect(sent.get(windowed)).toBeGreaterThan(1);
    s.close();
    s2.close();
  });

  it("at most maxReoffering answers are offered at once: the oldest is dropped and counted", async () => {
    const { s, replies, request, offeringAgain } = server({ maxReoffering: 2 });
    const topics: string[] = [];
    for (let i = 0; i < 3; i++) {
      topics.push(request());
      replies.at(-1)!.done({ i });
      // Each is found unheard (its first PUBACK) before the next is answered.
      await until(() => offeringAgain() === i + 1, 2_000, "the answer found unheard");
    }
    expect(s.counters.droppedReoffers).toBe(1);
    await until(() => (sent.get(topics[2]!) ?? 0) >= 3, 5_000, "the newest offered again");
    expect(sent.get(topics[0]!)).toBe(1);
    expect(sent.get(topics[1]!)).toBeGreaterThanOrEqual(3);
    s.close();
  });

  it("a delivered answer is not sent again because its message id was once acknowledged as unheard for another publish", async () => {
    const { s, replies, request } = server();
    const c = await connect("sdk-c");
    const finals: unknown[] = [];
    c.on("message", (_t, payload) => finals.push(JSON.parse(payload.toString())));
    await c.subscribeAsync("tss/v1/responses/sdk-c/#", { qos: 1 });
    // A node call to an inbox nobody reads (PUBACK 0x10), then the answer with the same
    // message id (as when mqtt.js's ids wrap around), which is delivered.
    ids.fixed = 40_000;
    try {
      await node.publishAsync("tss/v1/nodes/nobody/inbox", "{}", { qos: 1 });
      request();
      replies.at(-1)!.done({ once: true });
      await until(() => finals.length > 0, 5_000, "the answer");
    } finally {
      ids.fixed = null;
    }
    await sleep(1_000); // a second offer would follow within 200 ms
    expect(finals).toEqual([{ ok: true, result: { once: true } }]);
    expect(s.counters.unheardAnswers).toBe(0);
    s.close();
  });
});
