/**
 * Counting what crosses the broker (bench/cluster.ts's bytes pass): fault
 * relays (mqtt-fault-relay.ts) in front of every connection feed each whole
 * packet to `addPacket`, which tallies it by kind and by direction:
 *  - by kind, from the PUBLISH topic (src/shared/wire/topics.ts): client
 *    request, client response (progress and answers), node RPC call (to a
 *    node's inbox), node RPC reply, presence, any other PUBLISH; every other
 *    packet type (PUBACK, PINGREQ, SUBSCRIBE, ...) as MQTT control;
 *  - by direction: to the broker (what a client sent) and from the broker
 *    (what it delivered), so a message published once and delivered once
 *    counts twice, as it crosses two links;
 *  - the protocol messages inside node RPC (the `messages` lists of
 *    node-rpc.ts, peer envelopes: peer-envelope-header.ts), in envelope bytes
 *    and in the core's own bytes within them (an envelope less its AEAD nonce
 *    and tag, or its broadcast signature), so the rest is node-layer overhead.
 * Wire bytes are whole MQTT packets (fixed header, topic, properties,
 * payload); TCP/IP headers are not counted. Decoding node RPC costs CPU, so
 * this is for a separate measuring pass, never under a latency figure.
 */
import type { RelayDirection } from "./mqtt-fault-relay.ts";
import { readPublish } from "./mqtt-fault-relay.ts";
import { decodeNodePayload } from "../shared/wire/rpc-payload.ts";
import { BROADCAST_OVERHEAD, P2P_OVERHEAD } from "../shared/wire/peer-envelope-header.ts";
import { BROADCAST, HEADER_LEN } from "../shared/wire/protocol-message.ts";

export const TRAFFIC_KINDS = [
  "client request",
  "client response",
  "node RPC call",
  "node RPC reply",
  "presence",
  "other publish",
  "MQTT control",
] as const;
export type TrafficKind = (typeof TRAFFIC_KINDS)[number];
const DIRECTIONS: RelayDirection[] = ["to_broker", "to_client"];

export interface TrafficCell {
  packets: number;
  /** Whole MQTT packets. */
  wireBytes: number;
  /** PUBLISH payloads only (0 for control packets). */
  payloadBytes: number;
}

export interface ProtocolCell {
  /** Protocol messages carried in node RPC. */
  messages: number;
  /** Their bytes as carried (peer envelopes). */
  envelopeBytes: number;
  /** The core's own message bytes within them. */
  coreBytes: number;
}

export interface TrafficTally {
  byKind: Record<TrafficKind, Record<RelayDirection, TrafficCell>>;
  /** Every crossing of a protocol message (one relayed through the coordinator crosses up to four links). */
  protocol: Record<RelayDirection, ProtocolCell>;
  /** Each protocol message once (by its clear header: ceremony, phase, from, to, session), whatever the links it crossed. */
  distinct: ProtocolCell;
}

const cell = (): TrafficCell => ({ packets: 0, wireBytes: 0, payloadBytes: 0 });
const protoCell = (): ProtocolCell => ({ messages: 0, envelopeBytes: 0, coreBytes: 0 });

export function newTally(): TrafficTally {
  return {
    byKind: Object.fromEntries(
      TRAFFIC_KINDS.map((k) => [k, { to_broker: cell(), to_client: cell() }]),
    ) as TrafficTally["byKind"],
    protocol: { to_broker: protoCell(), to_client: protoCell() },
    distinct: protoCell(),
  };
}

/** The clear headers of the protocol messages a tally has seen (for `distinct`). */
const seenHeaders = new WeakMap<TrafficTally, Set<string>>();

const PUBLISH = 3;

function kindOf(topic: string): TrafficKind {
  if (topic.startsWith("tss/v1/requests/")) return "client request";
  if (topic.startsWith("tss/v1/responses/")) return "client response";
  if (topic.startsWith("tss/v1/nodes/")) {
    if (topic.endsWith("/inbox")) return "node RPC call";
    if (topic.endsWith("/replies")) return "node RPC reply";
    if (topic.endsWith("/presence")) return "presence";
  }
  return "other publish";
}

/** One envelope's bytes as carried, and the core message's within it (BROADCAST: signed; else AEAD-sealed). */
function countEnvelope(t: TrafficTally, into: ProtocolCell, env: Uint8Array): void {
  const overhead = env[4] === BROADCAST ? BROADCAST_OVERHEAD : P2P_OVERHEAD;
  const core = Math.max(0, env.length - overhead);
  into.messages++;
  into.envelopeBytes += env.length;
  into.coreBytes += core;
  let seen = seenHeaders.get(t);
  if (!seen) seenHeaders.set(t, (seen = new Set()));
  const key = Buffer.from(env.subarray(1, HEADER_LEN)).toString("hex");
  if (seen.has(key)) return;
  seen.add(key);
  t.distinct.messages++;
  t.distinct.envelopeBytes += env.length;
  t.distinct.coreBytes += core;
}

/** Every `messages` list in a decoded node RPC value (either format decodes byte strings to Uint8Array). */
function countMessages(t: TrafficTally, into: ProtocolCell, v: unknown, depth = 0): void {
  if (depth > 16 || !v || typeof v !== "object" || v instanceof Uint8Array) return;
  if (Array.isArray(v)) {
    for (const x of v) countMessages(t, into, x, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (k === "messages" && Array.isArray(x)) {
      for (const m of x) if (m instanceof Uint8Array) countEnvelope(t, into, m);
    } else countMessages(t, into, x, depth + 1);
  }
}

/** Tallies one whole MQTT packet (what FaultRelay's onPacket hands over). */
export function addPacket(
  t: TrafficTally,
  direction: RelayDirection,
  packet: Buffer,
  headerBytes: number,
): void {
  if (packet[0]! >> 4 !== PUBLISH) {
    const c = t.byKind["MQTT control"][direction];
    c.packets++;
    c.wireBytes += packet.length;
    return;
  }
  const { topic, payload } = readPublish(packet, headerBytes);
  const kind = kindOf(topic);
  const c = t.byKind[kind][direction];
  c.packets++;
  c.wireBytes += packet.length;
  c.payloadBytes += payload.length;
  if (kind === "node RPC call" || kind === "node RPC reply") {
    try {
      countMessages(t, t.protocol[direction], decodeNodePayload(payload).value);
    } catch {
      // not a node RPC payload: counted as bytes only
    }
  }
}

/** `after` less `before`: what one ceremony sent. */
export function diffTally(after: TrafficTally, before: TrafficTally): TrafficTally {
  const out = newTally();
  for (const k of TRAFFIC_KINDS)
    for (const d of DIRECTIONS)
      for (const f of ["packets", "wireBytes", "payloadBytes"] as const)
        out.byKind[k][d][f] = after.byKind[k][d][f] - before.byKind[k][d][f];
  for (const d of DIRECTIONS)
    for (const f of ["messages", "envelopeBytes", "coreBytes"] as const)
      out.protocol[d][f] = after.protocol[d][f] - before.protocol[d][f];
  for (const f of ["messages", "envelopeBytes", "coreBytes"] as const)
    out.distinct[f] = after.distinct[f] - before.distinct[f];
  return out;
}

export function copyTally(t: TrafficTally): TrafficTally {
  return diffTally(t, newTally());
}

/** `t` divided by `n` (per ceremony of a run of n). */
export function scaleTally(t: TrafficTally, n: number): TrafficTally {
  const out = copyTally(t);
  for (const k of TRAFFIC_KINDS)
    for (const d of DIRECTIONS)
      for (const f of ["packets", "wireBytes", "payloadBytes"] as const)
        out.byKind[k][d][f] = Math.round((out.byKind[k][d][f] / n) * 10) / 10;
  for (const d of DIRECTIONS)
    for (const f of ["messages", "envelopeBytes", "coreBytes"] as const)
      out.protocol[d][f] = Math.round((out.protocol[d][f] / n) * 10) / 10;
  for (const f of ["messages", "envelopeBytes", "coreBytes"] as const)
    out.distinct[f] = Math.round((out.distinct[f] / n) * 10) / 10;
  return out;
}

/** Totals over every kind and direction, and the core's protocol bytes' share of the wire bytes. */
export function summarizeTally(t: TrafficTally): {
  packets: number;
  wireBytes: number;
  payloadBytes: number;
  protocolEnvelopeBytes: number;
  protocolCoreBytes: number;
  /** protocolCoreBytes / wireBytes: the rest is node-layer (and MQTT) overhead. */
  coreShare: number;
  /** The core's bytes of each message once. */
  distinctCoreBytes: number;
  distinctMessages: number;
  /** wireBytes / distinctCoreBytes: what the node layer and MQTT make of each byte the core sends (hops, framing, everything else). */
  wirePerCoreByte: number;
} {
  let packets = 0;
  let wireBytes = 0;
  let payloadBytes = 0;
  for (const k of TRAFFIC_KINDS)
    for (const d of DIRECTIONS) {
      packets += t.byKind[k][d].packets;
      wireBytes += t.byKind[k][d].wireBytes;
      payloadBytes += t.byKind[k][d].payloadBytes;
    }
  const env = t.protocol.to_broker.envelopeBytes + t.protocol.to_client.envelopeBytes;
  const core = t.protocol.to_broker.coreBytes + t.protocol.to_client.coreBytes;
  return {
    packets,
    wireBytes,
    payloadBytes,
    protocolEnvelopeBytes: env,
    protocolCoreBytes: core,
    coreShare: wireBytes ? Math.round((core / wireBytes) * 1000) / 1000 : 0,
    distinctCoreBytes: t.distinct.coreBytes,
    distinctMessages: t.distinct.messages,
    wirePerCoreByte: t.distinct.coreBytes
      ? Math.round((wireBytes / t.distinct.coreBytes) * 100) / 100
      : 0,
  };
}
