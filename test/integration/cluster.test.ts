/**
 * The five-node cluster over a real Mosquitto: nodes are separate host and
 * enclave processes; the client uses the SDK (and raw MQTT where the test
 * needs to see the wire).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { fromHex } from "../../src/shared/hex.ts";
import { decodeNodePayload, encodeNodePayload } from "../../src/shared/wire/rpc-payload.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;
const recorded: { topic: string; payload: Buffer; props: mqtt.IPublishPacket["properties"] }[] = [];
let recorder: mqtt.MqttClient;

function verified(r: SignResult, digest: Uint8Array): boolean {
  return verifySignature(fromHex(r.publicKey), digest, {
    r: fromHex(r.signature.r),
    s: fromHex(r.signature.s),
    recoveryId: r.signature.recoveryId,
  });
}

/** Every byte field inside a decoded node RPC payload. */
function byteFields(v: unknown, out: Buffer[] = []): Buffer[] {
  if (v instanceof Uint8Array) out.push(Buffer.from(v));
  else if (Array.isArray(v)) for (const x of v) byteFields(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) byteFields(x, out);
  return out;
}

/** A recorded node RPC payload, decoded (binary or JSON, rpc-payload.ts). */
const nodeCall = (payload: Buffer) => decodeNodePayload(payload).value as Record<string, unknown>;

/** Protocol messages (start/step args and replies) in recorded node traffic. */
function protocolMessages(): Buffer[] {
  const out: Buffer[] = [];
  for (const r of recorded) {
    if (!r.topic.startsWith("tss/v1/nodes/") || r.topic.endsWith("/presence")) continue;
    // Node RPC goes out in binary (rpc-payload.ts), not base64 in JSON.
    expect(r.payload[0]).toBe(0xb5);
    const j = nodeCall(r.payload) as {
      op?: string;
      args?: { messages?: unknown };
      result?: { messages?: unknown };
    };
    for (const m of [j.args?.messages, j.result?.messages])
      if (Array.isArray(m)) out.push(...byteFields(m));
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-cluster-"));
  cluster = await startCluster({ nodes: 5, dataDir: dir, phaseTimeoutMs: 60_000 });
  recorder = await mqtt.connectAsync(cluster.client.url, {
    protocolVersion: 5,
    // The cluster's test-only observer user reads every tss/v1 topic; nodes read only their own.
    clientId: cluster.observer.username,
    username: cluster.observer.username,
    password: cluster.observer.password,
  });
  recorder.on("message", (topic, payload, packet) =>
    recorded.push({ topic, payload, props: packet.properties }),
  );
  await recorder.subscribeAsync("tss/v1/#", { qos: 1 });
  client = await TssClient.connect({
    url: cluster.client.url,
    username: cluster.client.username,
    password: cluster.client.password,
    timeoutMs: 120_000,
  });
  wallet = await client.createWallet({ threshold: 3, parties: 5 });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await recorder?.endAsync().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("cluster over MQTT", () => {
  it("created a 3-of-5 wallet held by five nodes", async () => {
    expect(wallet.threshold).toBe(3);
    expect(new Set(wallet.nodes).size).toBe(5);
    const shown = await client.wallet(wallet.walletId);
    expect(shown.publicKey).toBe(wallet.publicKey);
    // Every wallet answer names its key type (docs/mqtt-api.md "Key types").
    expect(wallet.keyType).toBe("secp256k1-ecdsa");
    expect(shown.keyType).toBe("secp256k1-ecdsa");
    expect((await client.nodes()).nodes.map((n) => n.nodeId).sort()).toEqual([
      "node-1",
      "node-2",
      "node-3",
      "node-4",
      "node-5",
    ]);
  });

  it("20 sign requests: each answered exactly once, all verify, several quorums and more than one coordinator", async () => {
    // Raw MQTT so the test sees every response on the wire.
    const rawUser = cluster.clients[1]!;
    const raw = await mqtt.connectAsync(cluster.client.url, {
      protocolVersion: 5,
      // Its own client user (one connection per user); its responses topic is its username's.
      clientId: rawUser.username,
      username: rawUser.username,
      password: rawUser.password,
    });
    const finals = new Map<string, unknown[]>();
    raw.on("message", (_t, payload, packet) => {
      const j = JSON.parse(payload.toString()) as { ok?: boolean };
      if (j.ok === undefined) return; // progress
      const key = Buffer.from(packet.properties!.correlationData!).toString("hex");
      finals.set(key, [...(finals.get(key) ?? []), j]);
    });
    await raw.subscribeAsync(`tss/v1/responses/${rawUser.username}/#`, { qos: 1 });
    const digests = new Map<string, Uint8Array>();
    for (let k = 0; k < 20; k++) {
      const corr = randomBytes(16);
      const digest = randomBytes(32);
      digests.set(corr.toString("hex"), digest);
      await raw.publishAsync(
        "tss/v1/requests/sign",
        JSON.stringify({
          requestId: `raw-${k}-${randomBytes(4).toString("hex")}`,
          walletId: wallet.walletId,
          digest: digest.toString("hex"),
        }),
        {
          qos: 1,
          properties: {
            responseTopic: `tss/v1/responses/${rawUser.username}/${k}`,
            correlationData: corr,
          },
        },
      );
    }
    const deadline = Date.now() + 110_000;
    while (finals.size < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500)); // room for a duplicate answer to show up
    await raw.endAsync();
    expect(finals.size).toBe(20);
    const coordinators = new Set<string>();
    const quorums = new Set<string>();
    for (const [corr, answers] of finals) {
      expect(answers).toHaveLength(1);
      const a = answers[0] as { ok: boolean; result: SignResult };
      expect(a.ok).toBe(true);
      expect(a.result.keyType).toBe("secp256k1-ecdsa");
      expect(verified(a.result, digests.get(corr)!)).toBe(true);
      coordinators.add(a.result.coordinator);
      quorums.add([...a.result.signers].sort().join(","));
    }
    expect(coordinators.size).toBeGreaterThan(1);
    expect(quorums.size).toBeGreaterThan(1);
  });

  it("a repeated request id returns the same signature, not a second one", async () => {
    const digest = randomBytes(32);
    const requestId = `idem-${randomBytes(6).toString("hex")}`;
    const a = await client.sign({ walletId: wallet.walletId, digest, requestId });
    const b = await client.sign({ walletId: wallet.walletId, digest, requestId });
    expect(b.signature).toEqual(a.signature);
    expect(b.signers).toEqual(a.signers);
  });

  it("a request id belongs to its client user: another digest is a conflict, another user's same id is a new request", async () => {
    const digest = randomBytes(32);
    const other = randomBytes(32);
    const requestId = `scoped-${randomBytes(6).toString("hex")}`;
    const first = await client.sign({ walletId: wallet.walletId, digest, requestId });
    const reused = await client
      .sign({ walletId: wallet.walletId, digest: other, requestId })
      .catch((e: unknown) => e);
    expect(reused).toBeInstanceOf(TssError);
    expect((reused as TssError).code).toBe("conflict");
    // Nothing of the first request is told: not its digest, nor its signature.
    expect((reused as Error).message).not.toContain(first.signature.r.replace(/^0x/, ""));
    expect((reused as Error).message).not.toContain(Buffer.from(digest).toString("hex"));
    // The same id and parameters still answer the stored result.
    expect((await client.sign({ walletId: wallet.walletId, digest, requestId })).signature).toEqual(
      first.signature,
    );
    // Another client user (its own broker user, so its own response topic) runs the id afresh.
    const second = await TssClient.connect({ ...cluster.clients[2]!, timeoutMs: 120_000 });
    try {
      const theirs = await second.sign({ walletId: wallet.walletId, digest: other, requestId });
      expect(verified(theirs, other)).toBe(true);
      expect(theirs.signature).not.toEqual(first.signature);
    } finally {
      await second.close();
    }
  });

  it("node traffic carries only sealed protocol messages; a replayed call is refused", async () => {
    const msgs = protocolMessages();
    expect(msgs.length).toBeGreaterThan(50);
    // 0x81 = sealed end to end by the enclaves; the core's plaintext version is 0x01.
    for (const m of msgs) expect(m[0]).toBe(0x81);
    // Replay one recorded `step` call, as recorded, into the node it was for.
    const step = recorded.find(
      (r) => r.topic.endsWith("/inbox") && (nodeCall(r.payload) as { op?: string }).op === "step",
    )!;
    const replies: unknown[] = [];
    // The replayer holds a node's broker credentials: node-7's, admitted but never started.
    const replayer = cluster.nodeUsers["node-7"]!;
    const me = await mqtt.connectAsync(cluster.client.url, {
      protocolVersion: 5,
      clientId: replayer.username,
      username: replayer.username,
      password: replayer.password,
    });
    me.on("message", (_t, p) => replies.push(decodeNodePayload(p).value));
    await me.subscribeAsync("tss/v1/nodes/node-7/replies", { qos: 1 });
    const replay = async (payload: Buffer | Uint8Array) => {
      const before = replies.length;
      await me.publishAsync(step.topic, Buffer.from(payload), {
        qos: 1,
        properties: {
          responseTopic: "tss/v1/nodes/node-7/replies",
          correlationData: randomBytes(8),
        },
      });
      const until = Date.now() + 10_000;
      while (replies.length === before && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      return replies[before];
    };
    // As recorded: it names the original caller, whose replies topic this is not.
    const asRecorded = await replay(step.payload);
    expect(asRecorded).toMatchObject({ ok: false, error: { code: "unauthorised" } });
    // Claiming to be node-7 (whose replies it reads) gets it to the enclave, which refuses it.
    const call = nodeCall(step.payload);
    const renamed = await replay(encodeNodePayload({ ...call, from: "node-7" }));
    await me.endAsync();
    expect(renamed).toMatchObject({ ok: false });
    expect(JSON.stringify(renamed)).toMatch(/unknown_session|already|closed/);
  });

  it("a tampered sealed message makes its receiver abort; a message from another session is refused", async () => {
    // Drive a signing directly against three enclaves (as a hostile host could).
    const enclaves = await Promise.all(
      [1, 2, 3].map((i) =>
        EnclaveClient.connect({ kind: "unix", path: join(dir, `node-${i}.enclave.sock`) }),
      ),
    );
    try {
      const info = (await client.wallet(wallet.walletId)).nodes;
      const party = (node: string) => info.indexOf(node) + 1;
      const signers = [1, 2, 3].map((i) => party(`node-${i}`)).sort((a, b) => a - b);
      const docs = await Promise.all(enclaves.map(async (e) => (await e.attest({})).document));
      const runPhase1 = async (sessionId: Uint8Array, digest: Uint8Array) =>
        Promise.all(
          enclaves.map((e, k) =>
            e.startCeremony({
              kind: "sign",
              sessionId,
              walletId: wallet.walletId,
              signers,
              digest,
              expectedGeneration: 0,
              peerDocuments: docs.filter((_, j) => j !== k),
              peerParties: [1, 2, 3].filter((_, j) => j !== k).map((i) => party(`node-${i}`)),
            }),
          ),
        );
      const to = (m: Uint8Array) => m[4]!;
      const sidA = randomBytes(32);
      const a1 = await runPhase1(sidA, randomBytes(32));
      const target = party("node-1");
      const forTarget = a1.flatMap((r) => r.messages).filter((m) => to(m) === target);
      const tampered = forTarget.map((m, k) =>
        k === 0 ? Uint8Array.from(m, (b, i) => (i === 60 ? b ^ 1 : b)) : m,
      );
      await expect(
        enclaves[0]!.stepCeremony({ sessionId: sidA, phase: 2, messages: tampered }),
      ).rejects.toMatchObject({ code: "ceremony_failed" });
      // The session is gone for good: even the genuine messages are refused now.
      await expect(
        enclaves[0]!.stepCeremony({ sessionId: sidA, phase: 2, messages: forTarget }),
      ).rejects.toMatchObject({ code: "unknown_session" });
      // Session B: delivering session A's (genuine) messages is refused.
      const sidB = randomBytes(32);
      await runPhase1(sidB, randomBytes(32));
      await expect(
        enclaves[0]!.stepCeremony({ sessionId: sidB, phase: 2, messages: forTarget }),
      ).rejects.toMatchObject({ code: "ceremony_failed" });
      for (const e of enclaves)
        for (const s of [sidA, sidB]) await e.abortCeremony({ sessionId: s });
    } finally {
      for (const e of enclaves) e.close();
    }
  });

  it("refresh keeps the key and the refreshed wallet signs", async () => {
    const r = await client.refresh({ walletId: wallet.walletId });
    expect(r.generation).toBe(1);
    expect(r.publicKey).toBe(wallet.publicKey);
    const digest = randomBytes(32);
    expect(verified(await client.sign({ walletId: wallet.walletId, digest }), digest)).toBe(true);
  });

  it("a sixth node joins with only its own configuration, coordinates requests and holds shares of new wallets", async () => {
    await cluster.addNode("node-6");
    const until = Date.now() + 10_000;
    while ((await client.nodes()).nodes.length < 6 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 200));
    expect((await client.nodes()).nodes.map((n) => n.nodeId)).toContain("node-6");
    const six = await client.createWallet({ threshold: 3, parties: 6 });
    expect(six.nodes).toContain("node-6");
    const coordinators = new Set<string>();
    for (let k = 0; k < 12 && !coordinators.has("node-6"); k++) {
      const digest = randomBytes(32);
      const r = await client.sign({ walletId: six.walletId, digest });
      expect(verified(r, digest)).toBe(true);
      coordinators.add(r.coordinator);
    }
    expect(coordinators.has("node-6")).toBe(true);
  });

  it("signs with two of five holders stopped; with three stopped it fails fast with a clear error", async () => {
    await cluster.nodes.find((n) => n.nodeId === "node-4")!.stop();
    await cluster.nodes.find((n) => n.nodeId === "node-5")!.stop();
    const digest = randomBytes(32);
    const r = await client.sign({ walletId: wallet.walletId, digest });
    expect(verified(r, digest)).toBe(true);
    expect(r.signers).not.toContain("node-4");
    await cluster.nodes.find((n) => n.nodeId === "node-3")!.stop();
    const t = Date.now();
    const err = await client
      .sign({ walletId: wallet.walletId, digest: randomBytes(32), timeoutMs: 30_000 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TssError);
    expect((err as TssError).code).toBe("not_enough_nodes");
    expect((err as TssError).message).toMatch(/needs 3 signers/);
    expect(Date.now() - t).toBeLessThan(30_000);
  });
});
