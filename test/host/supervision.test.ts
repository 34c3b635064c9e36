/**
 * Surviving the loss of a peer or of the enclave, below the cluster level:
 * the host's enclave client notices a dropped channel, fails calls at once
 * and redials; presence carries "degraded"; the bus fails calls to a peer
 * whose Last Will arrives; a ceremony phase ends on its first failure; the
 * SDK's coordinator watch reads presence. The real-process versions are in
 * test/integration/faults.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcServer } from "../../src/shared/channel/rpc-server.ts";
import { listenUnix } from "../../src/shared/channel/unix-transport.ts";
import type { ChannelListener } from "../../src/shared/channel/transport.ts";
import { FrameType } from "../../src/shared/wire/frame.ts";
import { toBody } from "../../src/shared/wire/enclave-codec.ts";
import { EnclaveClient, type EnclaveChannelEvent } from "../../src/host/enclave-client.ts";
import { onlineRecord, parsePresence, PresenceView } from "../../src/host/mqtt/presence.ts";
import { startMosquitto, type Mosquitto } from "../../src/harness/mosquitto.ts";
import { connectBus, type Bus } from "../../src/host/mqtt/bus.ts";
import { CeremonyError, runCeremony, type Member } from "../../src/host/coordinator.ts";
import type { Participant } from "../../src/host/participant.ts";
import { CoordinatorWatch, presenceSaysOffline } from "../../src/client/coordinator-watch.ts";
import { presenceTopic } from "../../src/shared/wire/topics.ts";
import { NodeHost } from "../../src/host/node-host.ts";
import { insertActiveShare, insertWallet, openStore } from "../../src/host/store/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("EnclaveClient supervision", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tss-supervision-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function enclaveStandIn(
    path: string,
    pcr0: string,
  ): { listener: ChannelListener; server: RpcServer } {
    const server = new RpcServer({
      [FrameType.HEALTH]: () => toBody({ status: "ok", pcr0 }),
    });
    const listener = listenUnix(path, { removeStale: true });
    server.serve(listener);
    return { listener, server };
  }

  it("fails calls at once while the channel is down, redials and reports both transitions", async () => {
    const path = join(dir, "e.sock");
    let side = enclaveStandIn(path, "aa");
    const client = await EnclaveClient.connect(
      { kind: "unix", path },
      { reconnectMinMs: 20, reconnectMaxMs: 100 },
    );
    const events: EnclaveChannelEvent[] = [];
    client.onChannelEvent((e) => events.push(e));
    try {
      expect((await client.health()).pcr0).toBe("aa");
      expect(client.available).toBe(true);

      // The enclave process is gone: its listener and every connection close.
      side.server.close();
      await side.listener.close();
      await until(() => events.length >= 1, 3_000, "the lost event");
      expect(events[0]!.state).toBe("lost");
      expect(client.available).toBe(false);
      const started = Date.now();
      await expect(client.health()).rejects.toMatchObject({ code: "enclave_unavailable" });
      expect(Date.now() - started).toBeLessThan(500);

      // Its service manager starts it again on the same path.
      await sleep(150);
      side = enclaveStandIn(path, "bb");
      await until(() => events.length >= 2, 5_000, "the restored event");
      expect(events[1]).toMatchObject({ state: "restored", health: { pcr0: "bb" } });
      expect(client.available).toBe(true);
      expect(client.status().reconnects).toBe(1);
      expect((await client.health()).pcr0).toBe("bb");
    } finally {
      client.close();
      side.server.close();
      await side.listener.close();
    }
  });

  it("does not redial after close()", async () => {
    const path = join(dir, "f.sock");
    const side = enclaveStandIn(path, "aa");
    const client = await EnclaveClient.connect({ kind: "unix", path }, { reconnectMinMs: 10 });
    const events: EnclaveChannelEvent[] = [];
    client.onChannelEvent((e) => events.push(e));
    client.close();
    await sleep(100);
    expect(events).toEqual([]);
    await expect(client.health()).rejects.toMatchObject({ code: "enclave_unavailable" });
    side.server.close();
    await side.listener.close();
  });
});

describe("NodeHost after its enclave channel drops", () => {
  it("forgets what was loaded and the cached attestation, so both are redone in the new enclave", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tss-nodehost-"));
    const { db } = openStore({ path: join(dir, "host.db") });
    try {
      const walletId = "w-1";
      insertWallet(db, {
        walletId,
        threshold: 2,
        parties: 3,
        publicKey: new Uint8Array([2, ...randomBytes(32)]),
        chainCode: new Uint8Array(32).fill(7),
        publicPackage: new Uint8Array(randomBytes(200)),
      });
      // What the host stores of a sealed share; never opened here (the fake enclave "loads" anything).
      const sealed = { sealedShare: new Uint8Array(randomBytes(100)), kmsKeyId: "arn:aws:kms:k" };
      const blob = new Uint8Array(randomBytes(184));
      insertActiveShare(db, {
        walletId,
        nodeId: "node-a",
        partyIndex: 1,
        generation: 0,
        ...sealed,
        kmsCiphertextBlob: blob,
      });
      let loads = 0;
      let attests = 0;
      let channel: ((e: EnclaveChannelEvent) => void) | null = null;
      const enclave = {
        loadShare: async () => (loads++, { generation: 0, partyIndex: 1 }),
        attest: async () => (attests++, { document: new Uint8Array([attests]) }),
        onChannelEvent: (cb: (e: EnclaveChannelEvent) => void) => {
          channel = cb;
          return () => {};
        },
      } as unknown as EnclaveClient;
      const host = new NodeHost({
        nodeId: "node-a",
        enclave,
        credentials: async () => ({ accessKeyId: "a", secretAccessKey: "b" }),
        db,
      });
      await host.prepare(walletId);
      await host.prepare(walletId);
      await host.attestation();
      await host.attestation();
      expect([loads, attests]).toEqual([1, 1]);
      channel!({ state: "lost", error: "closed" });
      await host.prepare(walletId);
      expect((await host.attestation())[0]).toBe(2);
      expect([loads, attests]).toEqual([2, 2]);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("presence with degraded", () => {
  it("parses a degraded record and keeps the node live with its status", () => {
    const topic = presenceTopic("node-2");
    const e = parsePresence(topic, onlineRecord("node-2", 5, "ab", "1", "degraded"));
    expect(e).toEqual({ nodeId: "node-2", status: "degraded", since: 5, pcr0: "ab", version: "1" });
    const view = new PresenceView(() => {});
    view.apply(e!);
    expect(view.nodes()).toEqual([{ nodeId: "node-2", status: "degraded", since: 5, pcr0: "ab" }]);
    view.apply({ nodeId: "node-2", status: "offline" });
    expect(view.nodes()).toEqual([]);
    // Any other status is refused, not read as online.
    const bad = Buffer.from(JSON.stringify({ nodeId: "node-2", status: "dead", since: 1 }));
    expect(parsePresence(topic, bad)).toBeNull();
  });
});

describe("the SDK's coordinator watch", () => {
  it("reads only an offline record for the topic's own node", () => {
    const t = presenceTopic("node-3");
    expect(presenceSaysOffline(t, Buffer.from('{"nodeId":"node-3","status":"offline"}'))).toBe(
      "node-3",
    );
    expect(presenceSaysOffline(t, new Uint8Array())).toBe("node-3");
    expect(
      presenceSaysOffline(t, Buffer.from('{"nodeId":"node-4","status":"offline"}')),
    ).toBeNull();
    expect(presenceSaysOffline(t, onlineRecord("node-3", 1))).toBeNull();
    expect(presenceSaysOffline(t, Buffer.from("{nope"))).toBeNull();
    expect(presenceSaysOffline(t, Buffer.alloc(5000, 32))).toBeNull();
    expect(presenceSaysOffline("tss/v1/nodes/node-3/inbox", new Uint8Array())).toBeNull();
  });

  it("subscribes once per coordinator, fails its waiters on its Last Will, unsubscribes when done", async () => {
    const subs: string[] = [];
    const unsubs: string[] = [];
    const w = new CoordinatorWatch({
      subscribe: async (f) => void subs.push(f),
      unsubscribe: async (f) => void unsubs.push(f),
    });
    const lost: string[] = [];
    w.watch("a", "node-1", (n) => lost.push(`a:${n}`));
    w.watch("a", "node-1", (n) => lost.push(`a:${n}`));
    w.watch("b", "node-1", (n) => lost.push(`b:${n}`));
    w.watch("c", "node-2", (n) => lost.push(`c:${n}`));
    expect(subs).toEqual([presenceTopic("node-1"), presenceTopic("node-2")]);
    expect(w.onMessage(presenceTopic("node-1"), onlineRecord("node-1", 1))).toBe(true);
    expect(lost).toEqual([]);
    w.onMessage(presenceTopic("node-1"), Buffer.from('{"nodeId":"node-1","status":"offline"}'));
    expect(lost).toEqual(["a:node-1", "b:node-1"]);
    w.forget("a");
    expect(unsubs).toEqual([]);
    w.forget("b");
    expect(unsubs).toEqual([presenceTopic("node-1")]);
    expect(w.onMessage("tss/v1/responses/x/y", new Uint8Array())).toBe(false);
  });
});

describe("a ceremony phase ends on its first failure", () => {
  function participant(nodeId: string, step: () => Promise<never>): Participant {
    const reply = { messages: [], generation: 0 } as never;
    return {
      nodeId,
      attestation: async () => new Uint8Array([1]),
      start: async () => reply,
      step,
      abort: async () => {},
      prepare: async () => ({ walletId: "w", generation: 0, partyIndex: 1 }),
      persist: async () => Uint8Array.of(1),
      commit: async () => {},
      rollback: async () => {},
    } as Participant;
  }

  it("answers when the lost participant fails, not at the phase deadline, and blames it", async () => {
    const hang = () => new Promise<never>(() => {});
    const members: Member[] = [
      { participant: participant("node-1", hang), partyIndex: 1 },
      {
        participant: participant("node-2", async () => {
          await sleep(50);
          throw Object.assign(new Error("node node-2 went offline during the call"), {
            code: "ceremony_failed",
            blame: { node: "node-2" },
          });
        }),
        partyIndex: 2,
      },
    ];
    const started = Date.now();
    const err = await runCeremony("sign", members, randomBytes(32), () => ({}) as never, {
      phaseTimeoutMs: 20_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CeremonyError);
    expect((err as CeremonyError).node).toBe("node-2");
    expect((err as CeremonyError).code).toBe("ceremony_failed");
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("the bus and a lost peer", () => {
  const NODE = { username: "tss-node", password: randomBytes(12).toString("hex") };
  const CLIENT = { username: "tss-client", password: randomBytes(12).toString("hex") };
  let broker: Mosquitto;
  const buses: Bus[] = [];
  beforeAll(async () => {
    // One broker user per node (username = node id), as the ACL requires.
    broker = await startMosquitto({
      nodes: ["sup-a", "sup-b", "sup-c", "sup-d"].map((username) => ({
        username,
        password: NODE.password,
      })),
      clients: [CLIENT],
    });
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await broker?.stop();
  });
  const bus = async (nodeId: string) => {
    const b = await connectBus({
      url: broker.url,
      clientId: nodeId,
      username: nodeId,
      password: NODE.password,
      reconnectPeriodMs: 0,
    });
    buses.push(b);
    return b;
  };

  it("fails a pending call when the callee's Last Will arrives, and later calls at once", async () => {
    const a = await bus("sup-a");
    const b = await bus("sup-b");
    await b.serveNodeCalls(() => new Promise(() => {}));
    await until(() => a.liveNodes().some((n) => n.nodeId === "sup-b"), 3_000, "sup-b online");
    const call = a.callNode("sup-b", "step", {}, { timeoutMs: 30_000 });
    const outcome = call.catch((e: unknown) => e);
    await sleep(200);
    const killed = Date.now();
    // No DISCONNECT: the broker sees the socket die and publishes the Last Will.
    b.client.stream.destroy();
    const err = (await outcome) as { code?: string; blame?: { node?: string } };
    expect(Date.now() - killed).toBeLessThan(5_000);
    expect(err.code).toBe("ceremony_failed");
    expect(err.blame?.node).toBe("sup-b");
    const again = Date.now();
    await expect(a.callNode("sup-b", "step", {})).rejects.toMatchObject({
      code: "ceremony_failed",
    });
    expect(Date.now() - again).toBeLessThan(500);
  });

  it("publishes degraded and online again, seen by peers", async () => {
    const a = await bus("sup-c");
    const d = await bus("sup-d");
    const statusOf = () => a.liveNodes().find((n) => n.nodeId === "sup-d")?.status;
    await until(() => statusOf() === "online", 3_000, "sup-d online");
    await d.setStatus("degraded");
    await until(() => statusOf() === "degraded", 3_000, "sup-d degraded");
    expect(d.liveNodes().find((n) => n.nodeId === "sup-d")?.status).toBe("degraded");
    await d.setStatus("online");
    await until(() => statusOf() === "online", 3_000, "sup-d online again");
  });
});
