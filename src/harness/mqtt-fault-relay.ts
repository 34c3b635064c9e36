/**
 * A TCP relay between one MQTT client (a node's host) and the broker that can
 * delay or drop that client's traffic, for fault tests: point the node's
 * `mqtt.url` at `relay.url` and restart its host.
 *
 * The relay reads the byte stream as MQTT packets (fixed header: one type
 * byte and a 1-4 byte Remaining Length), so it delays and drops whole packets
 * and never breaks the framing:
 *  - `setDelay(ms)` holds every packet in both directions for `ms` before
 *    passing it on, in order (a slow link: later packets never overtake);
 *  - `dropWhere(rule)` discards the PUBLISH packets the rule picks (by
 *    direction, topic and payload) as a lossy path would. A dropped QoS 1
 *    PUBLISH is never acknowledged, and MQTT 5 resends only on a new
 *    connection, so within one connection it is lost for good;
 *  - `cut()` closes every relayed connection at once (a broken link).
 * Nothing here is for production: it exists for src/harness tests only.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export type RelayDirection = "to_broker" | "to_client";

/** What a drop rule sees of one PUBLISH packet. */
export interface RelayedPublish {
  direction: RelayDirection;
  topic: string;
  payload: Buffer;
}

export interface FaultRelay {
  /** mqtt://127.0.0.1:<port> of the relay. */
  url: string;
  port: number;
  /** Holds every packet this long in both directions (0: pass at once). */
  setDelay(ms: number): void;
  /** Drops the PUBLISH packets `rule` returns true for; null drops nothing. */
  dropWhere(rule: ((p: RelayedPublish) => boolean) | null): void;
  /** Every PUBLISH that passed (or was dropped), in order, for assertions (empty with recordSeen: false). */
  readonly seen: (RelayedPublish & { dropped: boolean; at: number })[];
  /** Packets held back by a delay so far. */
  readonly delayed: number;
  /** Closes every relayed connection now (the client reconnects through the relay). */
  cut(): void;
  close(): Promise<void>;
}

const PUBLISH = 3;
/** A Remaining Length is at most 4 bytes (MQTT 5 §1.5.5). */
const MAX_LENGTH_BYTES = 4;

/** The whole packet at the start of `buf`, or null when it has not all arrived. */
export function nextPacket(buf: Buffer): { length: number; headerBytes: number } | null {
  let remaining = 0;
  let mult = 1;
  for (let i = 1; i <= MAX_LENGTH_BYTES; i++) {
    if (buf.length <= i) return null;
    const b = buf[i]!;
    remaining += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) {
      const headerBytes = 1 + i;
      return buf.length >= headerBytes + remaining
        ? { length: headerBytes + remaining, headerBytes }
        : null;
    }
    mult *= 128;
  }
  throw new Error("malformed MQTT Remaining Length");
}

/** Topic and payload of a PUBLISH packet (MQTT 5: topic, packet id if QoS > 0, properties, payload). */
export function readPublish(
  packet: Buffer,
  headerBytes: number,
): { topic: string; payload: Buffer } {
  let at = headerBytes;
  const topicLen = packet.readUInt16BE(at);
  at += 2;
  const topic = packet.subarray(at, at + topicLen).toString("utf8");
  at += topicLen;
  if (((packet[0]! >> 1) & 3) > 0) at += 2;
  // Property Length, a variable byte integer.
  let props = 0;
  let mult = 1;
  for (let i = 0; i < MAX_LENGTH_BYTES; i++) {
    const b = packet[at++]!;
    props += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) break;
    mult *= 128;
  }
  return { topic, payload: packet.subarray(at + props) };
}

export function startFaultRelay(o: {
  brokerPort: number;
  brokerHost?: string;
  /** Sees every whole packet, of any type, as it arrives (before drop or delay): byte counting (mqtt-traffic-meter.ts). */
  onPacket?: (direction: RelayDirection, packet: Buffer, headerBytes: number) => void;
  /** Keep `seen` (a copy of every PUBLISH); default true. A long byte count turns it off. */
  recordSeen?: boolean;
}): Promise<FaultRelay> {
  let delayMs = 0;
  let rule: ((p: RelayedPublish) => boolean) | null = null;
  let delayed = 0;
  const seen: FaultRelay["seen"] = [];
  const sockets = new Set<Socket>();

  /** One direction of one connection: cuts the stream into packets, then drops, delays or passes each. */
  const pipe = (from: Socket, to: Socket, direction: RelayDirection) => {
    let buf = Buffer.alloc(0);
    const queue: { due: number; bytes: Buffer }[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const drain = () => {
      timer = null;
      const now = Date.now();
      while (queue.length && queue[0]!.due <= now) to.write(queue.shift()!.bytes);
      if (queue.length) timer = setTimeout(drain, queue[0]!.due - now);
    };
    from.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        let next;
        try {
          next = nextPacket(buf);
        } catch {
          from.destroy();
          to.destroy();
          return;
        }
        if (!next) return;
        const packet = buf.subarray(0, next.length);
        buf = buf.subarray(next.length);
        o.onPacket?.(direction, packet, next.headerBytes);
        if (packet[0]! >> 4 === PUBLISH && (rule || o.recordSeen !== false)) {
          const p = { direction, ...readPublish(packet, next.headerBytes) };
          const dropped = rule?.(p) ?? false;
          if (o.recordSeen !== false)
            seen.push({ ...p, payload: Buffer.from(p.payload), dropped, at: Date.now() });
          if (dropped) continue;
        }
        const bytes = Buffer.from(packet);
        if (delayMs <= 0 && queue.length === 0) {
          to.write(bytes);
          continue;
        }
        delayed++;
        // Never before the packet ahead of it: a slow link keeps order.
        const due = Math.max(Date.now() + delayMs, queue.at(-1)?.due ?? 0);
        queue.push({ due, bytes });
        if (!timer) timer = setTimeout(drain, due - Date.now());
      }
    });
    const end = () => {
      if (timer) clearTimeout(timer);
      to.destroy();
    };
    from.on("close", end);
    from.on("error", end);
  };

  const server: Server = createServer((client) => {
    const broker = connect({ host: o.brokerHost ?? "127.0.0.1", port: o.brokerPort });
    for (const s of [client, broker]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
    }
    pipe(client, broker, "to_broker");
    pipe(broker, client, "to_client");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        url: `mqtt://127.0.0.1:${port}`,
        port,
        setDelay: (ms) => (delayMs = ms),
        dropWhere: (r) => (rule = r),
        seen,
        get delayed() {
          return delayed;
        },
        cut: () => {
          for (const s of sockets) s.destroy();
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
