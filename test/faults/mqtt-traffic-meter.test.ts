/**
 * The byte counter of bench:cluster's bytes pass: each whole MQTT packet is
 * tallied by kind (from its topic) and direction, control packets apart, and
 * the protocol messages inside a node RPC payload are found in either format
 * (binary, or base64 in JSON), in envelope bytes and the core's bytes within
 * them, each message once however many links it crosses.
 */
import { describe, expect, it } from "vitest";
import mqttPacket from "mqtt-packet";
import { nextPacket } from "../../src/harness/mqtt-fault-relay.ts";
import {
  addPacket,
  copyTally,
  diffTally,
  newTally,
  summarizeTally,
} from "../../src/harness/mqtt-traffic-meter.ts";
import { encodeNodePayload } from "../../src/shared/wire/rpc-payload.ts";
import {
  BROADCAST_OVERHEAD,
  encodeEnvelopeHeader,
  P2P_OVERHEAD,
} from "../../src/shared/wire/peer-envelope-header.ts";

const publish = (topic: string, payload: Buffer): Buffer =>
  mqttPacket.generate(
    { cmd: "publish", topic, payload, qos: 1, messageId: 7, dup: false, retain: false },
    { protocolVersion: 5 },
  );

const add = (t: ReturnType<typeof newTally>, d: "to_broker" | "to_client", p: Buffer) =>
  addPacket(t, d, p, nextPacket(p)!.headerBytes);

/** An envelope: its clear header for (from, to) and `bodyLen` further bytes standing for the sealed body. */
function envelope(from: number, to: number, bodyLen: number): Uint8Array {
  const header = encodeEnvelopeHeader({
    ceremony: "sign",
    phase: 2,
    from,
    to,
    sessionId: new Uint8Array(32).fill(9),
  });
  const out = new Uint8Array(header.length + bodyLen);
  out.set(header);
  return out;
}

describe("mqtt-traffic-meter", () => {
  it("tallies packets by kind and direction, and protocol messages in node RPC", () => {
    const t = newTally();
    const p2p = envelope(1, 2, 100 + P2P_OVERHEAD);
    const bcast = envelope(1, 0, 50 + BROADCAST_OVERHEAD);
    const reply = encodeNodePayload({ ok: true, result: { messages: [p2p, bcast] } });
    const replyPacket = publish("tss/v1/nodes/node-2/replies", reply);
    add(t, "to_broker", replyPacket);
    // The same messages go on to a recipient in a JSON call: crossings again, not new messages.
    const call = encodeNodePayload(
      { op: "step", args: { messages: [p2p, bcast] }, from: "node-1" },
      "json",
    );
    const callPacket = publish("tss/v1/nodes/node-3/inbox", call);
    add(t, "to_client", callPacket);
    add(t, "to_client", publish("tss/v1/nodes/node-1/presence", Buffer.from("{}")));
    add(t, "to_broker", publish("tss/v1/requests/sign", Buffer.from("{}")));
    add(t, "to_client", publish("tss/v1/responses/tss-client/x", Buffer.from("{}")));
    const puback = mqttPacket.generate({ cmd: "puback", messageId: 7 }, { protocolVersion: 5 });
    add(t, "to_client", puback);

    expect(t.byKind["node RPC reply"].to_broker).toEqual({
      packets: 1,
      wireBytes: replyPacket.length,
      payloadBytes: reply.length,
    });
    expect(t.byKind["node RPC call"].to_client.wireBytes).toBe(callPacket.length);
    expect(t.byKind["node RPC call"].to_broker.packets).toBe(0);
    expect(t.byKind.presence.to_client.packets).toBe(1);
    expect(t.byKind["client request"].to_broker.packets).toBe(1);
    expect(t.byKind["client response"].to_client.packets).toBe(1);
    expect(t.byKind["MQTT control"].to_client).toEqual({
      packets: 1,
      wireBytes: puback.length,
      payloadBytes: 0,
    });
    const core = 37 + 100 + 37 + 50;
    for (const d of ["to_broker", "to_client"] as const)
      expect(t.protocol[d]).toEqual({
        messages: 2,
        envelopeBytes: p2p.length + bcast.length,
        coreBytes: core,
      });
    expect(t.distinct).toEqual({
      messages: 2,
      envelopeBytes: p2p.length + bcast.length,
      coreBytes: core,
    });
    const s = summarizeTally(t);
    expect(s.packets).toBe(6);
    expect(s.protocolCoreBytes).toBe(2 * core);
    expect(s.distinctCoreBytes).toBe(core);
    expect(s.wirePerCoreByte).toBeCloseTo(s.wireBytes / core, 2);
  });

  it("gives one ceremony's traffic as the difference of two snapshots", () => {
    const t = newTally();
    add(t, "to_broker", publish("tss/v1/requests/sign", Buffer.alloc(10)));
    const before = copyTally(t);
    add(t, "to_broker", publish("tss/v1/requests/sign", Buffer.alloc(20)));
    const d = diffTally(t, before);
    expect(d.byKind["client request"].to_broker.packets).toBe(1);
    expect(d.byKind["client request"].to_broker.payloadBytes).toBe(20);
    expect(before.byKind["client request"].to_broker.payloadBytes).toBe(10);
  });
});
