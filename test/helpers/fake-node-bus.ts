/**
 * A real Mosquitto with one fake node answering client requests from the shared subscription,
 * and two SDK clients (one with wallet trust, one without): for SDK tests whose node answers
 * are scripted (test/client/import-key.test.ts, repair-target.test.ts).
 */
import mqtt, { type MqttClient } from "mqtt";
import { TssClient, type WalletTrust } from "../../src/client/index.ts";
import { generatedUsers, type Mosquitto, startMosquitto } from "../../src/harness/mosquitto.ts";

/** Answers one request: `op` from the topic, the parsed body, and `reply` to its response topic. */
export type FakeNodeAnswer = (
  op: string,
  body: Record<string, unknown>,
  reply: (msg: unknown) => Promise<unknown>,
) => Promise<void>;

export interface FakeNodeBus {
  broker: Mosquitto;
  /** Connected with `trust`. */
  client: TssClient;
  /** Connected without wallet trust. */
  untrusting: TssClient;
  close(): Promise<void>;
}

export async function startFakeNodeBus(
  trust: WalletTrust,
  answer: FakeNodeAnswer,
): Promise<FakeNodeBus> {
  const [node] = generatedUsers(["node-1"]);
  const users = generatedUsers(["client-1", "client-2"]);
  const broker = await startMosquitto({ nodes: [node!], clients: users });
  const nodeMqtt: MqttClient = await mqtt.connectAsync(broker.url, {
    protocolVersion: 5,
    clientId: node!.username,
    username: node!.username,
    password: node!.password,
  });
  nodeMqtt.on("message", (topic, payload, packet) => {
    const props = packet.properties!;
    const reply = (msg: unknown) =>
      nodeMqtt.publishAsync(props.responseTopic!, JSON.stringify(msg), {
        qos: 1,
        properties: { correlationData: props.correlationData! },
      });
    void answer(topic.split("/").pop()!, JSON.parse(payload.toString()), reply);
  });
  await nodeMqtt.subscribeAsync("$share/tss-nodes/tss/v1/requests/+", { qos: 1 });
  const connect = (u: (typeof users)[number], withTrust: boolean) =>
    TssClient.connect({
      url: broker.url,
      username: u.username,
      password: u.password,
      timeoutMs: 20_000,
      ...(withTrust ? { trust } : {}),
    });
  const client = await connect(users[0]!, true);
  const untrusting = await connect(users[1]!, false);
  return {
    broker,
    client,
    untrusting,
    async close() {
      await client.close();
      await untrusting.close();
      await nodeMqtt.endAsync(true);
      await broker.stop();
    },
  };
}
