/**
 * Watching every node's presence from outside the cluster (fault tests and
 * the load benchmark): one MQTT connection as a broker user that may read
 * presence (a client or the test-only observer), keeping every status each
 * node announced, with when it arrived. An empty (cleared) retained record
 * counts as offline. The connection reconnects on its own (a broker restart)
 * and resubscribes; callers may subscribe more topics on `client`.
 */
import mqtt from "mqtt";

export interface PresenceWatch {
  /** The connection (one per broker user at a time); its "message" event sees every topic subscribed. */
  client: mqtt.MqttClient;
  /** Every status `nodeId` announced since the watch began, oldest first. */
  history(nodeId: string): { status: string; at: number }[];
  /** The latest status of `nodeId`, if any arrived. */
  last(nodeId: string): string | undefined;
  close(): Promise<void>;
}

const PRESENCE = /^tss\/v1\/nodes\/([^/]+)\/presence$/;

export async function watchPresence(user: {
  url: string;
  username: string;
  password: string;
}): Promise<PresenceWatch> {
  const seen = new Map<string, { status: string; at: number }[]>();
  const client = await mqtt.connectAsync(user.url, {
    protocolVersion: 5,
    // The broker binds client id to username: a user has one connection at a time.
    clientId: user.username,
    username: user.username,
    password: user.password,
    reconnectPeriod: 500,
  });
  client.on("message", (topic, payload) => {
    const m = PRESENCE.exec(topic);
    if (!m) return;
    let status = "offline";
    if (payload.length)
      try {
        status = String((JSON.parse(payload.toString()) as { status?: unknown }).status);
      } catch {
        status = "unreadable";
      }
    seen.set(m[1]!, [...(seen.get(m[1]!) ?? []), { status, at: Date.now() }]);
  });
  await client.subscribeAsync("tss/v1/nodes/+/presence", { qos: 1 });
  return {
    client,
    history: (id) => seen.get(id) ?? [],
    last: (id) => seen.get(id)?.at(-1)?.status,
    close: () => client.endAsync().catch(() => {}),
  };
}
