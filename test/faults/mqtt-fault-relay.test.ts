/**
 * The fault relay the fault matrix puts between a node and the broker: it
 * must pass MQTT bytes unchanged when no fault is on (however TCP splits
 * them), drop exactly the PUBLISH packets a rule picks and nothing else, and
 * delay packets without reordering them. The far end here is a plain TCP
 * server recording what arrives.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createServer, connect, type Server, type Socket } from "node:net";
import {
  nextPacket,
  readPublish,
  startFaultRelay,
  type FaultRelay,
} from "../../src/harness/mqtt-fault-relay.ts";

/** A Remaining Length as MQTT encodes it (variable byte integer). */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** An MQTT 5 PUBLISH at QoS 1 with no properties. */
function publish(topic: string, payload: Buffer, packetId = 1): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([
    Buffer.from([t.length >> 8, t.length & 0xff]),
    t,
    Buffer.from([packetId >> 8, packetId & 0xff]),
    Buffer.from([0]),
    payload,
  ]);
  return Buffer.concat([Buffer.from([0x32]), varint(body.length), body]);
}
const PINGREQ = Buffer.from([0xc0, 0x00]);

let server: Server | null = null;
let relay: FaultRelay | null = null;
let sock: Socket | null = null;

afterEach(async () => {
  sock?.destroy();
  await relay?.close();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = relay = sock = null;
});

/** A far end that records every byte, a relay to it, and a client socket through the relay. */
async function setUp(): Promise<{ received: () => Buffer; arrivals: number[] }> {
  let got = Buffer.alloc(0);
  const arrivals: number[] = [];
  server = createServer((s) =>
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      arrivals.push(Date.now());
    }),
  );
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  relay = await startFaultRelay({ brokerPort: port });
  sock = connect({ host: "127.0.0.1", port: relay.port });
  await new Promise<void>((r) => sock!.once("connect", () => r()));
  return { received: () => got, arrivals };
}

async function settle(cond: () => boolean): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe("MQTT fault relay", () => {
  it("reads a PUBLISH's topic and payload, with multi-byte Remaining Lengths", () => {
    const big = Buffer.alloc(300_000, 7);
    const p = publish("tss/v1/nodes/node-3/inbox", big);
    const n = nextPacket(p)!;
    expect(n.length).toBe(p.length);
    expect(n.headerBytes).toBe(1 + varint(p.length - 4).length);
    const r = readPublish(p, n.headerBytes);
    expect(r.topic).toBe("tss/v1/nodes/node-3/inbox");
    expect(r.payload.equals(big)).toBe(true);
    // Not all there yet: no packet.
    expect(nextPacket(p.subarray(0, p.length - 1))).toBeNull();
    expect(nextPacket(p.subarray(0, 2))).toBeNull();
  });

  it("passes every byte unchanged and in order, however the stream is split", async () => {
    const { received } = await setUp();
    const stream = Buffer.concat([
      publish("a/b", Buffer.from("one")),
      PINGREQ,
      publish("c", Buffer.alloc(20_000, 1), 2),
      publish("d", Buffer.from("three"), 3),
    ]);
    for (let i = 0; i < stream.length; i += 7) sock!.write(stream.subarray(i, i + 7));
    await settle(() => received().length >= stream.length);
    expect(received().equals(stream)).toBe(true);
    expect(relay!.seen.map((p) => p.topic)).toEqual(["a/b", "c", "d"]);
  });

  it("drops exactly the PUBLISH packets the rule picks, whole, and nothing else", async () => {
    const { received } = await setUp();
    relay!.dropWhere((p) => p.direction === "to_broker" && p.payload.toString() === "drop me");
    const keep1 = publish("x", Buffer.from("keep"), 1);
    const dropped = publish("x", Buffer.from("drop me"), 2);
    const keep2 = publish("y", Buffer.from("keep too"), 3);
    sock!.write(Buffer.concat([keep1, dropped, PINGREQ, keep2]));
    const want = Buffer.concat([keep1, PINGREQ, keep2]);
    await settle(() => received().length >= want.length);
    await new Promise((r) => setTimeout(r, 100));
    expect(received().equals(want)).toBe(true);
    expect(relay!.seen.map((p) => p.dropped)).toEqual([false, true, false]);
  });

  it("holds packets for the delay and never lets a later one overtake", async () => {
    const { received, arrivals } = await setUp();
    relay!.setDelay(300);
    const first = publish("slow", Buffer.from("1"), 1);
    const t0 = Date.now();
    sock!.write(first);
    await new Promise((r) => setTimeout(r, 100));
    // Turned off while the first is held: the second still comes after it.
    relay!.setDelay(0);
    const second = publish("fast", Buffer.from("2"), 2);
    sock!.write(second);
    await settle(() => received().length >= first.length + second.length);
    expect(received().equals(Buffer.concat([first, second]))).toBe(true);
    expect(arrivals[0]! - t0).toBeGreaterThanOrEqual(290);
    expect(relay!.delayed).toBe(2);
  });
});
