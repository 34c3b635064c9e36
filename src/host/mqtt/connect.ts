/**
 * Opens an MQTT 5 connection and waits for the broker to accept it. A refused
 * login fails at once with the broker's reason; an unreachable broker fails
 * after `connectTimeoutMs` instead of retrying forever, because mqtt.js treats
 * socket errors as reasons to reconnect, not to report.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export interface ConnectOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  will?: IClientOptions["will"];
  /** Largest packet this client accepts; the broker drops bigger ones instead of sending them. */
  maxPacketBytes?: number;
  connectTimeoutMs?: number;
  /** Delay between reconnection attempts after a lost connection; 0 disables reconnecting. */
  reconnectPeriodMs?: number;
  keepaliveSec?: number;
}

function brokerAddress(
  url: string,
): Pick<IClientOptions, "protocol" | "host" | "hostname" | "port"> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `MQTT url ${JSON.stringify(url)} is not a URL (expected mqtt://host:port or mqtts://host:port)`,
    );
  }
  const protocol = u.protocol.replace(/:$/, "");
  if (protocol !== "mqtt" && protocol !== "mqtts")
    throw new Error(`MQTT url must use mqtt:// or mqtts://, not ${protocol}://`);
  if (u.username || u.password)
    throw new Error("put MQTT credentials in the username/password options, not in the URL");
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    protocol,
    host,
    hostname: host,
    port: u.port ? Number(u.port) : protocol === "mqtts" ? 8883 : 1883,
  };
}

export function openConnection(o: ConnectOptions): Promise<MqttClient> {
  const timeoutMs = o.connectTimeoutMs ?? 10_000;
  // Passing parsed parts, not the URL string, keeps mqtt.js off the deprecated url.parse.
  const client = mqtt.connect({
    ...brokerAddress(o.url),
    protocolVersion: 5,
    clientId: o.clientId,
    username: o.username,
    password: o.password,
    clean: true,
    keepalive: o.keepaliveSec ?? 30,
    connectTimeout: timeoutMs,
    reconnectPeriod: o.reconnectPeriodMs ?? 1_000,
    will: o.will,
    ...(o.maxPacketBytes ? { properties: { maximumPacketSize: o.maxPacketBytes } } : {}),
    ...(o.tls?.ca !== undefined ? { ca: o.tls.ca } : {}),
    ...(o.tls?.rejectUnauthorized !== undefined
      ? { rejectUnauthorized: o.tls.rejectUnauthorized }
      : {}),
  });
  return new Promise((resolve, reject) => {
    const fail = (message: string) => {
      clearTimeout(timer);
      client.removeListener("connect", onConnect);
      client.removeListener("error", onError);
      client.end(true);
      reject(new Error(message));
    };
    const timer = setTimeout(
      () => fail(`MQTT broker ${o.url} did not accept the connection within ${timeoutMs} ms`),
      timeoutMs,
    );
    const onConnect = () => {
      clearTimeout(timer);
      client.removeListener("error", onError);
      resolve(client);
    };
    const onError = (e: Error & { code?: number | string }) =>
      fail(
        `MQTT broker ${o.url} refused ${o.clientId}: ${e.message}${typeof e.code === "number" ? ` (reason code ${e.code})` : ""}`,
      );
    client.once("connect", onConnect);
    client.once("error", onError);
  });
}
