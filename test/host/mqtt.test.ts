/**
 * The node's MQTT bus against a real Mosquitto (loopback, passwords, the
 * project's ACL): shared-subscription requests, node RPC, presence with Last
 * Will, and what the ACL lets a client do. mqtt-mochi.test.ts runs these same
 * tests against mochi-mqtt (test/helpers/test-broker.ts picks the broker).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { aclText, EXAMPLE_ACL_USERS, type Mosquitto } from "../../src/harness/mosquitto.ts";
import { startTestBroker } from "../helpers/test-broker.ts";
import {
  connectBus,
  RemoteCallError,
  type Bus,
  type BusOptions,
  type PresenceEvent,
} from "../../src/host/mqtt/bus.ts";
import {
  decodeJson,
  encodeJson,
  JsonPayloadError,
  parseJson,
} from "../../src/shared/wire/json-payload.ts";
import { CeremonyError, runCeremony, type Member } from "../../src/host/coordinator.ts";
import { errorResponse } from "../../src/host/mqtt/requests.ts";
import { RemoteParticipant } from "../../src/host/remote-participant.ts";
import { ERROR_CODES } from "../../src/shared/wire/errors.ts";

// One broker user per node (username = node id) and per client, as in production; the
// tests give each role one password so a test can name its users by id alone.
const NODE_PASSWORD = randomBytes(12).toString("hex");
const CLIENT_PASSWORD = randomBytes(12).toString("hex");
const asNode = (username: string) => ({ username, password: NODE_PASSWORD });
const asClient = (username: string) => ({ username, password: CLIENT_PASSWORD });
const NODE_USERS = [
  "req-1",
  "req-2",
  "req-3",
  "rpc-a",
  "rpc-b",
  "rpc-raw",
  "bl-c",
  "bl-1",
  "bl-2",
  "watcher",
  "p-1",
  "presence-reader",
  "watcher-2",
  "spoofer",
  "acl-x",
  "acl-node",
  "id-node",
  "id-caller",
  "will-spoofer",
];
const CLIENT_USERS = [
  "sdk-1",
  "sdk-2",
  "sdk-3",
  "acl-client",
  "acl-spy",
  "acl-victim",
  "acl-intruder",
  "id-victim",
  "id-thief",
  "sdk-4",
  "will-reader",
];

let broker: Mosquitto;
const buses: Bus[] = [];
const raws: MqttClient[] = [];

beforeAll(async () => {
  broker = await startTestBroker({
    nodes: NODE_USERS.map(asNode),
    clients: CLIENT_USERS.map(asClient),
  });
});

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close().catch(() => {})));
  await Promise.all(raws.map((c) => c.endAsync(true).catch(() => {})));
  await broker?.stop();
});

async function node(nodeId: string, extra: Partial<BusOptions> = {}): Promise<Bus> {
  const b = await connectBus({
    url: broker.url,
    clientId: nodeId,
    username: nodeId,
    password: NODE_PASSWORD,
    pcr0: `pcr0-${nodeId}`,
    version: "test",
    ...extra,
  });
  buses.push(b);
  return b;
}

async function raw(clientId: string, user = asClient(clientId)): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    protocol: "mqtt",
    host: "127.0.0.1",
    port: broker.port,
    protocolVersion: 5,
    clientId,
    username: user.username,
    password: user.password,
    reconnectPeriod: 0,
  });
  raws.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Subscribes to filters the ACL gives no read access to. Brokers differ, within MQTT 5: Mosquitto
 * grants the SUBSCRIBE and withholds each message at delivery; mochi (like EMQX) refuses the
 * filter with 0x87 Not authorized. Either way nothing may arrive, which the caller asserts.
 */
async function subscribeForbidden(c: MqttClient, filters: string[]): Promise<void> {
  for (const f of filters)
    await c.subscribeAsync(f, { qos: 1 }).catch((e: unknown) => {
      expect(String(e)).toMatch(/Not authorized/);
    });
}

async function until(cond: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client as the SDK would be: requests with its own response topic, answers collected by correlation. */
async function sdkClient(clientId: string) {
  const c = await raw(clientId);
  const responseTopic = `tss/v1/responses/${clientId}/r`;
  const got = new Map<string, { topic: string; body: Record<string, unknown> }[]>();
  c.on("message", (topic: string, payload: Buffer, p: IPublishPacket) => {
    const key = p.properties?.correlationData?.toString("hex") ?? "none";
    got.set(key, [...(got.get(key) ?? []), { topic, body: JSON.parse(payload.toString()) }]);
  });
  await c.subscribeAsync(`tss/v1/responses/${clientId}/#`, { qos: 1 });
  return {
    client: c,
    got,
    async send(
      op: string,
      payload: string | Buffer,
      props: { responseTopic?: string; correlation?: Buffer | null } = {},
    ) {
      const correlation = props.correlation === undefined ? randomBytes(16) : props.correlation;
      await c.publishAsync(`tss/v1/requests/${op}`, payload, {
        qos: 1,
        properties: {
          ...(props.responseTopic !== ""
            ? { responseTopic: props.responseTopic ?? responseTopic }
            : {}),
          ...(correlation ? { correlationData: correlation } : {}),
        },
      });
      return correlation?.toString("hex") ?? "none";
    },
    final(key: string) {
      return (got.get(key) ?? []).find((m) => "ok" in m.body);
    },
  };
}

describe("deploy files", () => {
  it("deploy/mosquitto/acl.example is the ACL the harness uses", () => {
    expect(
      readFileSync(new URL("../../deploy/mosquitto/acl.example", import.meta.url), "utf8"),
    ).toBe(aclText(EXAMPLE_ACL_USERS));
  });
});

describe("json-bytes", () => {
  it("round-trips Uint8Array fields anywhere as $b64", () => {
    const v = {
      a: new Uint8Array([0, 1, 255]),
      list: [new Uint8Array(0), { deep: Buffer.from("hi") }],
      n: 1,
      s: "x",
      z: null,
    };
    const wire = JSON.parse(encodeJson(v).toString());
    expect(wire.a).toEqual({ $b64: "AAH/" });
    const back = decodeJson(encodeJson(v)) as typeof v;
    expect(back.a).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(back.a)).toBe(false);
    expect([...back.a]).toEqual([0, 1, 255]);
    expect(Buffer.from((back.list[1] as { deep: Uint8Array }).deep).toString()).toBe("hi");
  });

  it("bounds size, depth and base64, and keeps __proto__ as data", () => {
    const lim = { maxBytes: 100, maxDepth: 4 };
    expect(() => parseJson(Buffer.alloc(101, 0x20), lim)).toThrow(JsonPayloadError);
    expect(() => parseJson(Buffer.from("[[[[[1]]]]]"), lim)).toThrow(/deeper than 4/);
    expect(parseJson(Buffer.from('["[[[[[[", 1]'), lim)).toEqual(["[[[[[[", 1]);
    expect(() => decodeJson(Buffer.from("{1}"))).toThrow(/not valid JSON/);
    expect(() => decodeJson(Buffer.from([0x22, 0xff, 0x22]))).toThrow(/UTF-8/);
    expect(() => decodeJson(Buffer.from('{"$b64":"A"}'))).toThrow(/base64/);
    expect(() => decodeJson(Buffer.from('{"$b64":"AA=A"}'))).toThrow(/base64/);
    const p = decodeJson(Buffer.from('{"__proto__":{"polluted":1}}')) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect(() => encodeJson({ $b64: "AA==" })).toThrow(/cannot be encoded/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeJson(cyclic)).toThrow(/deeper than/);
    expect(() => encodeJson({ big: new Uint8Array(200) }, lim)).toThrow(/exceeds/);
  });
});

describe("client requests (shared subscription)", () => {
  const served = new Map<string, string[]>();
  let nodes: Bus[];
  /** Request ids whose handler fails with this error, as a RequestHandler would. */
  const failures: Record<string, { code: string; message: string; node?: string | null }> = {
    "fail-blamed": {
      code: "ceremony_failed",
      message: "req-2: protocol_abort: bad commitment",
      node: "req-2",
    },
    "fail-raw-code": {
      code: "unseal_failed",
      message: "sealed share does not open",
      node: "req-1",
    },
    "fail-bad-node": { code: "stale_share", message: "stale", node: "req/1" },
  };

  beforeAll(async () => {
    nodes = await Promise.all(["req-1", "req-2", "req-3"].map((id) => node(id)));
    await Promise.all(
      nodes.map((b) =>
        b.serveClientRequests((op, body, reply) => {
          const id = (body as { requestId: string }).requestId;
          served.set(id, [...(served.get(id) ?? []), b.nodeId]);
          if (failures[id]) return reply.fail(failures[id]);
          reply.progress({ stage: "sign", phase: 1, of: 4 });
          setTimeout(() => reply.done({ op, requestId: id, by: b.nodeId }), 5);
        }),
      ),
    );
  });

  it("delivers each of 20 requests to exactly one node, answering on the Response Topic with the same Correlation Data", async () => {
    const sdk = await sdkClient("sdk-1");
    const keys: string[] = [];
    for (let i = 0; i < 20; i++)
      keys.push(await sdk.send("sign", JSON.stringify({ requestId: `r-${i}` })));
    await until(() => keys.every((k) => sdk.final(k)), 10_000, "20 answers");
    await sleep(200); // a duplicate delivery would show up here

    for (let i = 0; i < 20; i++) {
      expect(served.get(`r-${i}`)?.length).toBe(1);
      const msgs = sdk.got.get(keys[i]!)!;
      expect(msgs.map((m) => m.topic)).toEqual([
        "tss/v1/responses/sdk-1/r",
        "tss/v1/responses/sdk-1/r",
      ]);
      expect(msgs[0]!.body).toEqual({ progress: { stage: "sign", phase: 1, of: 4 } });
      expect(msgs[1]!.body).toMatchObject({
        ok: true,
        result: { op: "sign", requestId: `r-${i}`, by: served.get(`r-${i}`)![0] },
      });
    }
    const takers = new Set([...served.values()].flat());
    expect(takers.size).toBeGreaterThan(1);
  });

  it("a degraded node leaves the shared subscription (it would fail each request) and rejoins it once online", async () => {
    const sdk = await sdkClient("sdk-4");
    const [, , third] = nodes as [Bus, Bus, Bus];
    await third.setStatus("degraded");
    const paused: string[] = [];
    for (let i = 0; i < 12; i++)
      paused.push(await sdk.send("sign", JSON.stringify({ requestId: `deg-${i}` })));
    await until(() => paused.every((k) => sdk.final(k)), 10_000, "12 answers");
    for (let i = 0; i < 12; i++) expect(served.get(`deg-${i}`)).not.toContain("req-3");
    await third.setStatus("online");
    let tookOne = false;
    for (let i = 0; i < 30 && !tookOne; i++) {
      const k = await sdk.send("sign", JSON.stringify({ requestId: `back-${i}` }));
      await until(() => sdk.final(k) !== undefined, 5_000, `answer ${i}`);
      tookOne = served.get(`back-${i}`)?.includes("req-3") ?? false;
    }
    expect(tookOne).toBe(true);
  });

  it("answers malformed requests with bad_request and drops those it cannot answer", async () => {
    const sdk = await sdkClient("sdk-2");
    const bad = await sdk.send("sign", "{not json");
    const huge = await sdk.send(
      "sign",
      JSON.stringify({ requestId: "big", pad: "x".repeat(70_000) }),
    );
    const deep = await sdk.send("sign", "[".repeat(100) + "]".repeat(100));
    await until(() => [bad, huge, deep].every((k) => sdk.final(k)), 5_000, "bad_request answers");
    for (const k of [bad, huge, deep])
      expect(sdk.final(k)!.body).toMatchObject({
        ok: false,
        error: { code: "bad_request", node: null },
      });
    expect((sdk.final(huge)!.body.error as { message: string }).message).toMatch(/exceeds/);

    const dropped = () => nodes.reduce((n, b) => n + b.stats().droppedRequests, 0);
    const before = dropped();
    await sdk.send("sign", JSON.stringify({ requestId: "no-corr" }), { correlation: null });
    await sdk.send("sign", JSON.stringify({ requestId: "no-topic" }), { responseTopic: "" });
    await until(() => dropped() === before + 2, 5_000, "two dropped requests");
    expect(served.has("no-corr") || served.has("no-topic")).toBe(false);
  });

  it("answers a failure as {code, message, node}: the blamed node as a field, only contract codes", async () => {
    const sdk = await sdkClient("sdk-3");
    const keys = Object.fromEntries(
      await Promise.all(
        Object.keys(failures).map(
          async (id) => [id, await sdk.send("sign", JSON.stringify({ requestId: id }))] as const,
        ),
      ),
    );
    await until(() => Object.values(keys).every((k) => sdk.final(k)), 5_000, "failure answers");
    expect(sdk.final(keys["fail-blamed"]!)!.body).toEqual({
      ok: false,
      error: {
        code: "ceremony_failed",
        message: "req-2: protocol_abort: bad commitment",
        node: "req-2",
      },
    });
    // A code outside the contract is a node bug: answered as internal, the raw code kept in the sentence.
    expect(sdk.final(keys["fail-raw-code"]!)!.body).toEqual({
      ok: false,
      error: {
        code: "internal",
        message: "unseal_failed: sealed share does not open",
        node: "req-1",
      },
    });
    expect(sdk.final(keys["fail-bad-node"]!)!.body).toEqual({
      ok: false,
      error: { code: "stale_share", message: "stale", node: null },
    });
  });
});

describe("error responses", () => {
  it("keep contract codes and well-formed node ids, and replace everything else", () => {
    for (const code of ERROR_CODES)
      expect(errorResponse({ code, message: "m", node: "node-1" })).toEqual({
        code,
        message: "m",
        node: "node-1",
      });
    expect(errorResponse({ code: "bad_message", message: "m" })).toEqual({
      code: "internal",
      message: "bad_message: m",
      node: null,
    });
    expect(
      errorResponse({ code: "internal", message: "x".repeat(5_000), node: "#" }).message,
    ).toHaveLength(1_000);
    expect(errorResponse({ code: "internal", message: "m", node: "#" }).node).toBeNull();
  });
});

describe("node RPC", () => {
  let a: Bus;
  let b: Bus;
  const callers: string[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([node("rpc-a"), node("rpc-b", { callTimeoutMs: 5_000 })]);
    await a.serveNodeCalls(async (op, args, callerId) => {
      callers.push(callerId);
      if (op === "echo") return { got: args, sessionId: new Uint8Array([9, 8, 7]) };
      if (op === "slow") {
        await sleep(700);
        return {};
      }
      throw Object.assign(new Error(`wallet ${String(args.walletId)} is not held here`), {
        code: "not_found",
      });
    });
  });

  it("round-trips args and results with bytes", async () => {
    const msgs = [new Uint8Array(randomBytes(300)), new Uint8Array(0)];
    const r = (await b.callNode("rpc-a", "echo", {
      sessionId: new Uint8Array(32).fill(1),
      messages: msgs,
      phase: 2,
    })) as {
      got: { sessionId: Uint8Array; messages: Uint8Array[]; phase: number };
      sessionId: Uint8Array;
    };
    expect(r.got.sessionId).toEqual(new Uint8Array(32).fill(1));
    expect(r.got.messages).toEqual(msgs);
    expect(r.got.phase).toBe(2);
    expect(r.sessionId).toEqual(new Uint8Array([9, 8, 7]));
    expect(callers).toContain("rpc-b");
  });

  it("rethrows a remote failure with its code", async () => {
    const e = await b.callNode("rpc-a", "walletInfo", { walletId: "w-1" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RemoteCallError);
    expect(e).toMatchObject({ code: "not_found", message: "wallet w-1 is not held here" });
  });

  it("times out, and drops the late reply", async () => {
    const t0 = Date.now();
    const e = await b.callNode("rpc-a", "slow", {}, { timeoutMs: 250 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "deadline_exceeded" });
    expect((e as Error).message).toMatch(/rpc-a did not answer slow within 250 ms/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await until(() => b.stats().lateReplies === 1, 3_000, "the late reply");

    const gone = await b
      .callNode("nobody-here", "prepare", {}, { timeoutMs: 200 })
      .catch((x: unknown) => x);
    expect(gone).toMatchObject({ code: "deadline_exceeded" });
  });

  it("answers a malformed call with bad_request", async () => {
    const c = await raw("rpc-raw", asNode("rpc-raw"));
    const answers: Buffer[] = [];
    c.on("message", (_t: string, p: Buffer) => answers.push(p));
    await c.subscribeAsync("tss/v1/nodes/rpc-raw/replies", { qos: 1 });
    await c.publishAsync("tss/v1/nodes/rpc-a/inbox", "[1,2", {
      qos: 1,
      properties: {
        responseTopic: "tss/v1/nodes/rpc-raw/replies",
        correlationData: randomBytes(16),
      },
    });
    await until(() => answers.length === 1, 3_000, "bad_request reply");
    expect(JSON.parse(answers[0]!.toString())).toMatchObject({
      ok: false,
      error: { code: "bad_request" },
    });
  });

  it("refuses a call whose named caller is not the owner of its replies topic, and lets no node read another's inbox", async () => {
    const c = await raw("rpc-raw", asNode("rpc-raw"));
    const answers: Record<string, unknown>[] = [];
    const overheard: string[] = [];
    c.on("message", (t: string, p: Buffer) =>
      t.endsWith("/inbox") ? overheard.push(t) : answers.push(decodeJson(p) as never),
    );
    await c.subscribeAsync("tss/v1/nodes/rpc-raw/replies", { qos: 1 });
    await subscribeForbidden(c, ["tss/v1/nodes/rpc-a/inbox"]);
    const call = (from: string | undefined) =>
      c.publishAsync("tss/v1/nodes/rpc-a/inbox", encodeJson({ op: "echo", args: {}, from }), {
        qos: 1,
        properties: {
          responseTopic: "tss/v1/nodes/rpc-raw/replies",
          correlationData: randomBytes(16),
        },
      });
    await call("rpc-b");
    await call(undefined);
    await until(() => answers.length === 2, 3_000, "two refusals");
    for (const a of answers)
      expect(a).toMatchObject({ ok: false, error: { code: "unauthorised" } });
    expect(JSON.stringify(answers[0])).toMatch(/rpc-b.*rpc-raw/);
    await call("rpc-raw");
    await until(() => answers.length === 3, 3_000, "the honest call's answer");
    expect(answers[2]).toMatchObject({ ok: true });
    // Calls to rpc-a (its own and b's) went by; rpc-raw saw none of them.
    await b.callNode("rpc-a", "echo", {});
    await sleep(200);
    expect(overheard).toEqual([]);
  });
});

describe("blame end to end", () => {
  /**
   * Participants over real node RPC. bl-1's enclave fails phase 1 blaming
   * protocol party `blamedParty` (as its ERROR frame's `party` field, which
   * the enclave client keeps in `blame.party`); the coordinator must name the
   * node holding that party, never parse it from the sentence, which names
   * `sentenceParty` instead.
   */
  async function ceremonyBlaming(blamedParty: number, code: string, sentenceParty: number) {
    const [coord, ...peers] = await Promise.all(["bl-c", "bl-1", "bl-2"].map((id) => node(id)));
    for (const p of peers) {
      await p.serveNodeCalls(async (op) => {
        if (op === "attestation") return { document: new Uint8Array([1]) };
        if (op === "abort") return {};
        if (op === "start" && p.nodeId === "bl-1")
          throw Object.assign(
            new Error(`${code}: commitment of [party ${sentenceParty}] does not open`),
            { code, blame: { party: blamedParty } },
          );
        if (op === "start") return { messages: [] };
        throw new Error(`unexpected ${op}`);
      });
    }
    const members: Member[] = [
      { participant: new RemoteParticipant("bl-1", coord!, 5_000), partyIndex: 2 },
      { participant: new RemoteParticipant("bl-2", coord!, 5_000), partyIndex: 3 },
    ];
    const sessionId = new Uint8Array(32).fill(7);
    const e = await runCeremony("sign", members, sessionId, () => ({
      kind: "sign",
      sessionId,
      walletId: "w-bl",
    })).catch((x: unknown) => x);
    // The next run reuses these client ids.
    await Promise.all([coord, ...peers].map((b) => b!.close()));
    expect(e).toBeInstanceOf(CeremonyError);
    return e as CeremonyError;
  }

  it("maps the blamed party to its node through the members, and the client answer carries that node as a field", async () => {
    const e = await ceremonyBlaming(3, "protocol_abort", 2);
    expect(e.code).toBe("ceremony_failed");
    expect(e.blame).toEqual({ node: "bl-2", party: 3 });
    expect(e.node).toBe("bl-2");
    expect(errorResponse(e)).toEqual({ code: "ceremony_failed", message: e.message, node: "bl-2" });
  });

  it("blames the failing node when the party is no member (the sentence is never read), and maps raw codes to the contract", async () => {
    const e = await ceremonyBlaming(9, "generation_mismatch", 3);
    expect(e.code).toBe("stale_share");
    expect(e.blame).toEqual({ node: "bl-1" });
  });
});

describe("presence", () => {
  it("shows a node online, offline through its Last Will when its connection dies, online again after reconnecting, and offline after a clean close", async () => {
    const watcher = await node("watcher");
    const seen: PresenceEvent[] = [];
    watcher.onPresence((e) => {
      if (e.nodeId === "p-1") seen.push(e);
    });
    expect(watcher.liveNodes().map((n) => n.nodeId)).toContain("watcher");

    const p1 = await node("p-1", { reconnectPeriodMs: 300 });
    await p1.serveNodeCalls(async (op) => ({ op }));
    await until(() => watcher.liveNodes().some((n) => n.nodeId === "p-1"), 3_000, "p-1 online");
    expect(watcher.liveNodes().find((n) => n.nodeId === "p-1")).toMatchObject({ pcr0: "pcr0-p-1" });
    expect(seen.at(-1)).toMatchObject({ status: "online", version: "test" });

    // No DISCONNECT packet: the broker must publish the Last Will.
    p1.client.stream.destroy();
    await until(() => seen.at(-1)?.status === "offline", 3_000, "p-1 offline via Last Will");
    expect(watcher.liveNodes().some((n) => n.nodeId === "p-1")).toBe(false);

    await until(
      () => seen.at(-1)?.status === "online",
      5_000,
      "p-1 back online after reconnecting",
    );
    // Its subscriptions came back with the connection.
    expect(await watcher.callNode("p-1", "ping", {}, { timeoutMs: 3_000 })).toEqual({ op: "ping" });

    await p1.close();
    await until(() => seen.at(-1)?.status === "offline", 3_000, "p-1 offline after close");
    expect(watcher.liveNodes().some((n) => n.nodeId === "p-1")).toBe(false);

    // The retained record says offline to anyone who looks later.
    const late = await raw("presence-reader", asNode("presence-reader"));
    const retained: string[] = [];
    late.on("message", (_t: string, p: Buffer) => retained.push(p.toString()));
    await late.subscribeAsync("tss/v1/nodes/p-1/presence", { qos: 1 });
    await until(() => retained.length === 1, 3_000, "retained presence");
    expect(JSON.parse(retained[0]!)).toEqual({ nodeId: "p-1", status: "offline" });
  });

  it("ignores a presence record that speaks for another node", async () => {
    const watcher = await node("watcher-2");
    const c = await raw("spoofer", asNode("spoofer"));
    // The broker lets a node announce only its own presence.
    expect(
      await c
        .publishAsync(
          "tss/v1/nodes/victim/presence",
          JSON.stringify({ nodeId: "victim", status: "online", since: 1 }),
          { qos: 1 },
        )
        .catch((x: unknown) => x),
    ).toMatchObject({ code: 135 }); // Not authorized
    // On its own topic, a record naming another node, and one that does not parse.
    await c.publishAsync(
      "tss/v1/nodes/spoofer/presence",
      JSON.stringify({ nodeId: "someone-else", status: "online", since: 1 }),
      { qos: 1 },
    );
    await c.publishAsync("tss/v1/nodes/spoofer/presence", "not json", { qos: 1 });
    await until(() => watcher.stats().ignoredPresence >= 2, 3_000, "both records ignored");
    expect(watcher.liveNodes().map((n) => n.nodeId)).not.toContain("victim");
    expect(watcher.liveNodes().map((n) => n.nodeId)).not.toContain("someone-else");
  });

  it("never delivers a Last Will set on another node's presence topic", async () => {
    const reader = await raw("will-reader");
    const got: string[] = [];
    reader.on("message", (t: string, p: Buffer) => got.push(`${t} ${p}`));
    await reader.subscribeAsync("tss/v1/nodes/will-victim/presence", { qos: 1 });
    // Brokers differ, within MQTT 5: Mosquitto accepts the CONNECT and drops the will it may not
    // publish; mochi (our hook) refuses the CONNECT. Either way no spoofed record arrives.
    const spoofer = await mqtt
      .connectAsync({
        protocol: "mqtt",
        host: "127.0.0.1",
        port: broker.port,
        protocolVersion: 5,
        clientId: "will-spoofer",
        username: "will-spoofer",
        password: NODE_PASSWORD,
        reconnectPeriod: 0,
        will: {
          topic: "tss/v1/nodes/will-victim/presence",
          payload: Buffer.from(JSON.stringify({ nodeId: "will-victim", status: "online" })),
          qos: 1,
          retain: true,
        },
      })
      .catch(() => null);
    // A dropped connection, not a clean DISCONNECT: the broker would now publish the will.
    spoofer?.stream.destroy();
    await sleep(500);
    expect(got).toEqual([]);
  });
});

describe("access control", () => {
  it("lets a client publish requests but not call a node's inbox", async () => {
    const x = await node("acl-x");
    let calls = 0;
    await x.serveNodeCalls(async () => {
      calls++;
      return {};
    });
    const c = await raw("acl-client");
    const e = await c
      .publishAsync("tss/v1/nodes/acl-x/inbox", JSON.stringify({ op: "abort", args: {} }), {
        qos: 1,
        properties: {
          responseTopic: "tss/v1/responses/acl-client/r",
          correlationData: randomBytes(16),
        },
      })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 135 }); // Not authorized
    await c.publishAsync("tss/v1/requests/nodes", JSON.stringify({ requestId: "acl-ok" }), {
      qos: 1,
      properties: {
        responseTopic: "tss/v1/responses/acl-client/r",
        correlationData: randomBytes(16),
      },
    });
    await sleep(200);
    expect(calls).toBe(0);
  });

  it("does not deliver another client's responses or node traffic other than presence to a client", async () => {
    const spy = await raw("acl-spy");
    const got: string[] = [];
    spy.on("message", (t: string) => got.push(t));
    // Broad enough to cover presence, which a client may read; the rest is filtered per message.
    await spy.subscribeAsync("tss/v1/nodes/#", { qos: 1 });
    await subscribeForbidden(spy, ["tss/v1/responses/acl-victim/#", "tss/v1/requests/#"]);
    const victim = await raw("acl-victim");
    const victimGot: string[] = [];
    victim.on("message", (t: string) => victimGot.push(t));
    await victim.subscribeAsync("tss/v1/responses/acl-victim/#", { qos: 1 });

    const n = await raw("acl-node", asNode("acl-node"));
    await n.publishAsync(
      "tss/v1/responses/acl-victim/r",
      JSON.stringify({ ok: true, result: {} }),
      { qos: 1, properties: { correlationData: randomBytes(16) } },
    );
    await n.publishAsync(
      "tss/v1/nodes/acl-node/presence",
      JSON.stringify({ nodeId: "acl-node", status: "offline" }),
      { qos: 1 },
    );
    await n.publishAsync("tss/v1/nodes/acl-node/inbox", JSON.stringify({ op: "x", args: {} }), {
      qos: 1,
    });
    await victim.publishAsync("tss/v1/requests/nodes", JSON.stringify({ requestId: "spy-test" }), {
      qos: 1,
      properties: {
        responseTopic: "tss/v1/responses/acl-victim/r",
        correlationData: randomBytes(16),
      },
    });
    await until(() => victimGot.length >= 1, 3_000, "the victim's own response");
    await sleep(200);
    // Presence is the one node topic a client reads (the SDK watches its coordinator's Last Will).
    // (The spy also gets every earlier test's retained presence record.)
    expect(got.filter((t) => !/^tss\/v1\/nodes\/[^/]+\/presence$/.test(t))).toEqual([]);
    expect(got).toContain("tss/v1/nodes/acl-node/presence");
  });

  it("refuses a wrong password", async () => {
    await expect(
      connectBus({
        url: broker.url,
        clientId: "bad-pw",
        username: "acl-x",
        password: "wrong",
        connectTimeoutMs: 3_000,
      }),
    ).rejects.toThrow(/refused bad-pw: .*(Not authorized|Bad User Name or Password)/);
    // A node's username with a client's password: the node's identity needs the node's password.
    await expect(
      connectBus({
        url: broker.url,
        clientId: "acl-x",
        username: "acl-x",
        password: CLIENT_PASSWORD,
        connectTimeoutMs: 3_000,
      }),
    ).rejects.toThrow(/(Not authorized|Bad User Name or Password)/);
    await expect(
      mqtt.connectAsync({
        protocol: "mqtt",
        host: "127.0.0.1",
        port: broker.port,
        protocolVersion: 5,
        clientId: "bad-pw-2",
        username: "acl-client",
        password: "wrong",
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    await expect(
      mqtt.connectAsync({
        protocol: "mqtt",
        host: "127.0.0.1",
        port: broker.port,
        protocolVersion: 5,
        clientId: "anon",
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
  });
});

describe("per-user broker identity (client id bound to username)", () => {
  it("a client connecting with another user's client id neither reads that user's responses nor knocks it off", async () => {
    const victim = await raw("id-victim");
    const victimGot: string[] = [];
    victim.on("message", (t: string) => victimGot.push(t));
    await victim.subscribeAsync("tss/v1/responses/id-victim/#", { qos: 1 });
    // The thief asks for the victim's client id; the broker gives it its own username instead.
    const thief = await raw("id-victim", asClient("id-thief"));
    const thiefGot: string[] = [];
    thief.on("message", (t: string) => thiefGot.push(t));
    await thief.subscribeAsync("tss/v1/responses/id-victim/#", { qos: 1 }).catch(() => {});
    const n = await raw("id-node", asNode("id-node"));
    await n.publishAsync("tss/v1/responses/id-victim/r", JSON.stringify({ ok: true, result: {} }), {
      qos: 1,
      properties: { correlationData: randomBytes(16) },
    });
    await until(() => victimGot.length >= 1, 3_000, "the victim's own response");
    await sleep(200);
    expect(thiefGot).toEqual([]);
    expect(victim.connected).toBe(true);
    await n.endAsync(true);
  });

  it("a client connecting with a node's client id does not take the node's place", async () => {
    const target = await node("id-node");
    await target.serveNodeCalls(async (op) => ({ op }));
    const caller = await node("id-caller");
    // Connects (as itself): the requested client id is replaced by the username.
    const intruder = await raw("id-node", asClient("acl-intruder"));
    await sleep(300);
    expect(intruder.connected).toBe(true);
    expect(target.client.connected).toBe(true);
    expect(await caller.callNode("id-node", "ping", {}, { timeoutMs: 3_000 })).toEqual({
      op: "ping",
    });
    // Nor can it serve the node's inbox.
    const got: string[] = [];
    intruder.on("message", (t: string) => got.push(t));
    await intruder.subscribeAsync("tss/v1/nodes/id-node/inbox", { qos: 1 }).catch(() => {});
    await caller.callNode("id-node", "ping", {}, { timeoutMs: 3_000 });
    await sleep(200);
    expect(got).toEqual([]);
  });
});
