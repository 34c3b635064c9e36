/**
 * One MQTT 5 connection to the broker: fails fast when the broker cannot be
 * reached or refuses us, then keeps reconnecting on its own. The session
 * outlives short drops (clean: false with an expiry), so replies published
 * while we reconnect are queued by the broker instead of lost.
 */
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { TssError } from "./errors.ts";
import { MAX_RESPONSE_BYTES } from "./responses.ts";
import type { TlsOptions } from "./types.ts";

const DEFAULT_PORTS: Record<string, number> = {
  "mqtt:": 1883,
  "mqtts:": 8883,
  "ws:": 80,
  "wss:": 443,
};
/** Long enough to ride out a reconnect; close() sets it to 0 so nothing lingers. */
const SESSION_EXPIRY_S = 120;
const CLOSE_WAIT_MS = 2000;
/** PUBACK reason code 0x10: the broker had no subscriber for the message, so it was dropped. */
const NO_MATCHING_SUBSCRIBERS = 16;

export interface OpenOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  tls?: TlsOptions;
  connectTimeoutMs: number;
  /** The filter to subscribe (QoS 1) before open() resolves. */
  subscribe: string;
  onMessage: (topic: string, payload: Buffer, packet: IPublishPacket) => void;
}

function badUrl(message: string): TssError {
  return new TssError("bad_request", message);
}

/** Builds mqtt.js options from a WHATWG-parsed URL (mqtt.js's own parsing uses the deprecated url.parse, which warns on stderr). */
function brokerOptions(o: OpenOptions): { options: IClientOptions; where: string } {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw badUrl(`The broker URL ${JSON.stringify(o.url.slice(0, 200))} is not a valid URL.`);
  }
  const port = DEFAULT_PORTS[url.protocol];
  if (port === undefined)
    throw badUrl("The broker URL must start with mqtt://, mqtts://, ws:// or wss://.");
  const secure = url.protocol === "mqtts:" || url.protocol === "wss:";
  const web = url.protocol === "ws:" || url.protocol === "wss:";
  if (o.tls && !secure) throw badUrl("TLS options need an mqtts:// or wss:// broker URL.");
  const options: IClientOptions = {
    protocol: url.protocol.slice(0, -1) as IClientOptions["protocol"],
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : port,
    ...(web ? { path: url.pathname + url.search } : {}),
    protocolVersion: 5,
    clientId: o.clientId,
    username: o.username ?? (url.username ? decodeURIComponent(url.username) : undefined),
    password: o.password ?? (url.password ? decodeURIComponent(url.password) : undefined),
    clean: false,
    properties: {
      sessionExpiryInterval: SESSION_EXPIRY_S,
      maximumPacketSize: MAX_RESPONSE_BYTES + 64 * 1024,
    },
    reconnectPeriod: 1000,
    connectTimeout: o.connectTimeoutMs,
    keepalive: 30,
    resubscribe: true,
    ...o.tls,
  };
  // Credentials never appear in messages.
  return { options, where: `${url.protocol}//${url.host}` };
}

function describe(e: Error & { code?: unknown }): string {
  if (e.code === "ECONNREFUSED") return "connection refused";
  if (e.code === "ENOTFOUND" || e.code === "EAI_AGAIN") return "host not found";
  const m = e.message.replace(/[.\s]+$/, "");
  return m.charAt(0).toLowerCase() + m.slice(1);
}

export class Connection {
  private readonly noSubscribers = new Set<number>();

  private constructor(private readonly client: MqttClient) {
    client.on("packetreceive", (p) => {
      if (
        p.cmd !== "puback" ||
        p.reasonCode !== NO_MATCHING_SUBSCRIBERS ||
        p.messageId === undefined
      )
        return;
      // Only a broken broker acks ids we never used; keep the set bounded anyway.
      if (this.noSubscribers.size > 1024) this.noSubscribers.clear();
      this.noSubscribers.add(p.messageId);
    });
  }

  static async open(o: OpenOptions): Promise<Connection> {
    const { options, where } = brokerOptions(o);
    const client = connect(options);
    // An 'error' event with no listener would throw; after connecting, mqtt.js reconnects by itself.
    client.on("error", () => {});
    client.on("message", o.onMessage);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => done(`no answer within ${Math.ceil(o.connectTimeoutMs / 1000)} s`),
          o.connectTimeoutMs,
        );
        const onError = (e: Error) => done(describe(e));
        const onClose = () => done("the connection was closed");
        const onConnect = () => done(null);
        function done(failure: string | null) {
          clearTimeout(timer);
          client.off("error", onError).off("close", onClose).off("connect", onConnect);
          if (failure === null) resolve();
          else
            reject(
              new TssError(
                "connection_failed",
                `Could not connect to the MQTT broker at ${where}: ${failure}.`,
              ),
            );
        }
        client.on("error", onError).on("close", onClose).on("connect", onConnect);
      });
      await client.subscribeAsync(o.subscribe, { qos: 1 }).catch(() => {
        throw new TssError(
          "connection_failed",
          `The broker at ${where} refused the subscription to ${o.subscribe}; its ACL must let client ${o.clientId} read that topic.`,
        );
      });
    } catch (e) {
      client.end(true);
      throw e;
    }
    return new Connection(client);
  }

  /** Publishes at QoS 1; resolves false when the broker dropped the message because nobody is subscribed. */
  async publish(
    topic: string,
    payload: string,
    properties: NonNullable<IPublishPacket["properties"]>,
  ): Promise<boolean> {
    const packet = await this.client.publishAsync(topic, payload, { qos: 1, properties });
    const id = packet?.messageId;
    return !(id !== undefined && this.noSubscribers.delete(id));
  }

  /** Subscribes (QoS 1) to `filter`, e.g. a coordinator's retained presence; messages go to onMessage. */
  async subscribe(filter: string): Promise<void> {
    await this.client.subscribeAsync(filter, { qos: 1 });
  }

  async unsubscribe(filter: string): Promise<void> {
    await this.client.unsubscribeAsync(filter);
  }

  async close(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
    await Promise.race([
      this.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } }).catch(() => {}),
      waited,
    ]);
    clearTimeout(timer);
    if (!this.client.disconnected) this.client.end(true);
  }
}
