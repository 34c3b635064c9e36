/**
 * Participants act only on ceremony steps for sessions that an approved
 * request started (issue 9 item 4), over the real broker with per-user
 * credentials: three nodes (separate host and enclave processes), a 2-of-3
 * wallet with an approval policy, and a test that holds node-5's broker
 * credentials (admitted, never started) and node-4's, and calls the holders'
 * node RPC directly, as a compromised host acting as coordinator would:
 *  - a start without approvals is refused by every holder's enclave before
 *    phase 1: no protocol message comes back;
 *  - a step, or an abort, for a session nobody started produces nothing;
 *  - the approvals of a request that already ran, relayed into a new
 *    session, are refused (approval_replayed), no message comes back;
 *  - a session one caller started cannot be stepped or aborted by another
 *    node: its host refuses before its enclave sees the call, and the session
 *    is still there for the caller that started it.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { presenceWill } from "../../src/host/mqtt/presence.ts";
import { decodeJson, encodeJson } from "../../src/shared/wire/json-payload.ts";
import { rawClient, signApproval, signBody } from "../helpers/raw-client.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");

let cluster: LocalCluster;
let dir: string;
let client: TssClient;
let wallet: CreateWalletResult;

interface Answer {
  ok: boolean;
  result?: Record<string, unknown> & { messages?: unknown[] };
  error?: { code: string; message: string; reason?: string };
}

/** Node RPC as the holder of `nodeId`'s broker credentials: the same topics and payloads a host uses. */
async function rpcAs(nodeId: string, o: { will?: boolean } = {}) {
  const user = cluster.nodeUsers[nodeId]!;
  const conn = await mqtt.connectAsync(cluster.client.url, {
    protocolVersion: 5,
    clientId: user.username,
    username: user.username,
    password: user.password,
    // As a host connects: its Last Will says "offline" when the connection dies.
    ...(o.will ? { will: presenceWill(nodeId) } : {}),
  });
  const waiting = new Map<string, (a: Answer) => void>();
  conn.on("message", (_t, payload, packet) => {
    const key = Buffer.from(packet.properties!.correlationData!).toString("hex");
    waiting.get(key)?.(decodeJson(payload) as Answer);
  });
  await conn.subscribeAsync(`tss/v1/nodes/${nodeId}/replies`, { qos: 1 });
  return {
    async call(target: string, op: string, args: Record<string, unknown>): Promise<Answer> {
      const corr = randomBytes(8);
      const answer = new Promise<Answer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${op} on ${target}: no answer`)), 30_000);
        waiting.set(corr.toString("hex"), (a) => {
          clearTimeout(timer);
          resolve(a);
        });
      });
      await conn.publishAsync(
        `tss/v1/nodes/${target}/inbox`,
        encodeJson({ op, args, from: nodeId }),
        {
          qos: 1,
          properties: { responseTopic: `tss/v1/nodes/${nodeId}/replies`, correlationData: corr },
        },
      );
      return answer;
    },
    close: () => conn.endAsync(),
    /** Drops the connection as a killed process would: the broker publishes the Last Will. */
    die: () => conn.stream.destroy(),
  };
}

type Rpc = Awaited<ReturnType<typeof rpcAs>>;

/** A sign start for holders `signers` (node ids), with the peers' documents as a coordinator gathers them. */
async function signStarts(
  rpc: Rpc,
  signers: string[],
  digest: Uint8Array,
  extra: Record<string, unknown> = {},
  sessionId: Uint8Array = randomBytes(32),
) {
  const party = (n: string) => wallet.nodes.indexOf(n) + 1;
  const docs = new Map<string, Uint8Array>();
  for (const n of signers) {
    const a = await rpc.call(n, "attestation", {});
    expect(a.ok).toBe(true);
    docs.set(n, a.result!.document as Uint8Array);
  }
  return {
    sessionId,
    startFor: (n: string) => ({
      kind: "sign",
      sessionId,
      walletId: wallet.walletId,
      signers: signers.map(party).sort((a, b) => a - b),
      digest,
      expectedGeneration: 0,
      peerDocuments: signers.filter((x) => x !== n).map((x) => docs.get(x)!),
      peerParties: signers.filter((x) => x !== n).map(party),
      ...extra,
    }),
  };
}

/** A sign request as a second client user sends it (raw MQTT, so the approvals are exactly these). */
async function clientRequest(body: Record<string, unknown>): Promise<{ signers: string[] }> {
  const raw = await rawClient(cluster.clients[1]!);
  try {
    const f = await raw.request("sign", body);
    expect(f.ok, JSON.stringify(f.error)).toBe(true);
    return f.result as { signers: string[] };
  } finally {
    await raw.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-rpc-authority-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  client = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
  wallet = await client.createWallet({
    threshold: 2,
    parties: 3,
    policy: { quorum: 1, approvers: [approverKeyOf(alice)] },
    admins: [admin],
  });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("node RPC with one node's credentials", () => {
  it("gets no session started without approvals, and no step or abort of a session nobody started does anything", async () => {
    const rpc = await rpcAs("node-5");
    try {
      const { sessionId, startFor } = await signStarts(rpc, ["node-1", "node-2"], randomBytes(32), {
        requestId: "rpc-unapproved",
      });
      for (const n of ["node-1", "node-2"]) {
        const a = await rpc.call(n, "start", startFor(n));
        expect(a).toMatchObject({ ok: false, error: { code: "unauthorised", reason: "missing" } });
        expect(a.result).toBeUndefined();
      }
      for (const n of ["node-1", "node-2"]) {
        const s = await rpc.call(n, "step", { sessionId, phase: 2, messages: [] });
        expect(s.ok).toBe(false);
        expect(s.error!.message).toMatch(/no open session/);
        expect((await rpc.call(n, "abort", { sessionId })).ok).toBe(true);
      }
    } finally {
      await rpc.close();
    }
  });

  it("cannot reuse the approvals of a request that already ran: every holder refuses, nothing comes back", async () => {
    const digest = randomBytes(32);
    const approval = await signApproval(
      [alice],
      wallet.walletId,
      `rpc-ran-${randomBytes(4).toString("hex")}`,
      digest,
    );
    // The client's own request with these very approvals, signed once.
    const signed = await clientRequest(signBody(wallet.walletId, digest, approval));
    expect(signed.signers).toHaveLength(2);
    const rpc = await rpcAs("node-5");
    try {
      // A relay of exactly what was approved: the enclaves remember it ran (approval-replay.ts).
      const { startFor } = await signStarts(rpc, signed.signers, digest, approval);
      const answers = await Promise.all(
        signed.signers.map((n) => rpc.call(n, "start", startFor(n))),
      );
      const refused = answers.filter((a) => !a.ok);
      // At least the one holder that ran it refuses; here both signers ran it.
      expect(refused).toHaveLength(2);
      for (const a of refused)
        expect(a.error).toMatchObject({ code: "approval_replayed", reason: "replayed" });
    } finally {
      await rpc.close();
    }
  });

  it("a session one node started cannot be stepped or aborted by another", async () => {
    const digest = randomBytes(32);
    const approval = await signApproval(
      [alice],
      wallet.walletId,
      `rpc-own-${randomBytes(4).toString("hex")}`,
      digest,
    );
    const starter = await rpcAs("node-5");
    const other = await rpcAs("node-4");
    try {
      const { sessionId, startFor } = await signStarts(
        starter,
        ["node-1", "node-2"],
        digest,
        approval,
      );
      const started = await starter.call("node-1", "start", startFor("node-1"));
      expect(started.ok).toBe(true);
      expect(started.result!.messages!.length).toBeGreaterThan(0);
      const step = await other.call("node-1", "step", { sessionId, phase: 2, messages: [] });
      expect(step).toMatchObject({ ok: false, error: { code: "unauthorised" } });
      expect(step.error!.message).toMatch(/node-5 started it/);
      expect(await other.call("node-1", "abort", { sessionId })).toMatchObject({
        ok: false,
        error: { code: "unauthorised" },
      });
      // The session is still open for its starter: its abort reaches the enclave.
      expect((await starter.call("node-1", "abort", { sessionId })).ok).toBe(true);
      const after = await starter.call("node-1", "step", { sessionId, phase: 2, messages: [] });
      expect(after.error!.message).toMatch(/no open session/);
    } finally {
      await Promise.all([starter.close(), other.close()]);
    }
  });

  it("the sessions of a coordinator whose presence went offline end at once: the same approved request then runs", async () => {
    const digest = randomBytes(32);
    const requestId = `rpc-lost-${randomBytes(4).toString("hex")}`;
    const approval = await signApproval([alice], wallet.walletId, requestId, digest);
    const dying = await rpcAs("node-5", { will: true });
    // Session id 0: no other session of the request can supersede it (approval-replay.ts).
    const { startFor } = await signStarts(
      dying,
      ["node-1", "node-2"],
      digest,
      approval,
      new Uint8Array(32),
    );
    for (const n of ["node-1", "node-2"])
      expect((await dying.call(n, "start", startFor(n))).ok).toBe(true);
    const early = await rawClient(cluster.clients[1]!);
    const late = await rawClient(cluster.clients[2]!);
    try {
      // While its sessions are open, every quorum meets one of them.
      const refused = await early.request("sign", signBody(wallet.walletId, digest, approval));
      expect(refused.error).toMatchObject({ code: "approval_replayed", reason: "replayed" });
      // Its Last Will: node-1 and node-2 abort its sessions, long before their phase deadline.
      dying.die();
      await new Promise((r) => setTimeout(r, 1_000));
      const signed = await late.request("sign", signBody(wallet.walletId, digest, approval));
      expect(signed.ok, JSON.stringify(signed.error)).toBe(true);
    } finally {
      await Promise.all([early.close(), late.close()]);
    }
  });
});
