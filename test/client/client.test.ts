/**
 * Client SDK and tss CLI against a real Mosquitto on loopback and a fake
 * node that answers per docs/mqtt-api.md (no cluster: the cluster's own
 * integration tests cover that). Signatures are real, made with @noble/curves.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NODE_ERROR_CODES,
  TssClient,
  TssError,
  ethAddress,
  newRequestId,
  type Progress,
  type SignResult,
  type WalletInfo,
} from "../../src/client/index.ts";
import { CodedError, ERROR_CODES } from "../../src/shared/wire/errors.ts";
import { createDevelopmentPki, derToPem } from "../../src/dev/dev-pki.ts";
import { fakeEnclave, fakeVoucher } from "./fake-vouchers.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { signatureForms, type SignatureForms } from "../../src/shared/signature.ts";

const ROOT = join(import.meta.dirname, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");

// ---------------------------------------------------------------- broker

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: "127.0.0.1", port }, () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- fake node

const walletKey = secp256k1.utils.randomSecretKey();
/** Stands in for the key derived along a path: the SDK verifies against whatever key the node returns. */
const childKey = secp256k1.utils.randomSecretKey();

function pub(sk: Uint8Array): string {
  return toHex(secp256k1.getPublicKey(sk, true));
}

/** The holders' enclaves (simulated documents under a development root), for answers the SDK verifies. */
const devPki = createDevelopmentPki();
const IMAGE = new Uint8Array(48).fill(0xab);
const holders = [1, 2, 3].map(() => fakeEnclave(devPki, IMAGE));
const trust = {
  roots: [{ der: devPki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
const CHAIN_CODE = new Uint8Array(32).fill(0x33);

/** Every holder's voucher of wallet `walletId` (2-of-3, walletKey), as a node relays them (hex). */
function vouchersOf(walletId: string, generation = 0) {
  return holders.map((e, i) => {
    const v = fakeVoucher(e, {
      walletId,
      threshold: 2,
      parties: 3,
      partyIndex: i + 1,
      generation,
      publicKey: fromHex(pub(walletKey)),
      chainCode: CHAIN_CODE,
      publicPackageHash: new Uint8Array(32).fill(0x44),
      policyHash: null,
    });
    return { ...v, statement: toHex(v.statement), attestation: toHex(v.attestation) };
  });
}

/** What the SDK adds to a wallet answer it verified under `trust`. */
const vouchedBy = [1, 2, 3].map((p) => ({
  nodeId: `node-${p}`,
  partyIndex: p,
  imageHash: toHex(IMAGE),
  development: true,
}));

function walletView(walletId: string, sk = walletKey): WalletInfo {
  const publicKey = pub(sk);
  return {
    walletId,
    keyType: "secp256k1-ecdsa",
    publicKey,
    address: ethAddress(fromHex(publicKey)),
    threshold: 2,
    parties: 3,
    generation: 0,
    nodes: ["node-1", "node-2", "node-3"],
  };
}

function sign(sk: Uint8Array, digestHex: string): SignatureForms {
  const sig = secp256k1.Signature.fromBytes(
    secp256k1.sign(fromHex(digestHex, 32), sk, { prehash: false, format: "recovered" }),
    "recovered",
  );
  const compact = sig.toBytes("compact");
  return signatureForms({
    r: compact.slice(0, 32),
    s: compact.slice(32),
    recoveryId: sig.recovery!,
  });
}

interface Seen {
  op: string;
  body: Record<string, unknown>;
  responseTopic: string;
  correlationData: Buffer;
}

/** Error answers whose `node` (the blamed node) is not null or a node id: each must be refused as bad_response. */
const BAD_BLAME: Record<string, unknown> = {
  w_blame_object: { node: "node-2" },
  w_blame_number: 2,
  w_blame_list: ["node-2"],
  w_blame_topic: "node-2/inbox",
  w_blame_empty: "",
};

/** Answers requests like a coordinator; the wallet id picks the behaviour under test. */
class FakeNode {
  readonly seen: Seen[] = [];
  private readonly done = new Map<string, unknown>();

  constructor(private readonly mq: MqttClient) {
    mq.on("message", (topic, payload, packet) => void this.answer(topic, payload, packet));
  }

  private async answer(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const op = topic.split("/").pop()!;
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    const responseTopic = packet.properties!.responseTopic!;
    const correlationData = packet.properties!.correlationData!;
    this.seen.push({ op, body, responseTopic, correlationData });
    const send = (msg: unknown) =>
      this.mq.publishAsync(responseTopic, JSON.stringify(msg), {
        qos: 1,
        properties: { correlationData },
      });
    const ok = (result: unknown) => send({ ok: true, result });
    const fail = (code: string, message: string, node: string | null) =>
      send({ ok: false, error: { code, message, node } });
    const walletId = body.walletId as string;

    if (walletId in BAD_BLAME)
      return void (await send({
        ok: false,
        error: { code: "ceremony_failed", message: "blamed", node: BAD_BLAME[walletId] },
      }));
    if (walletId === "w_blamed")
      return void (await fail(
        "ceremony_failed",
        "node-1: protocol_abort: commitment does not open",
        "node-2",
      ));
    if (walletId === "w_missing")
      return void (await fail("not_found", "no live node holds wallet w_missing", "node-3"));
    if (walletId === "w_slow")
      return void (await send({ progress: { stage: op, phase: 1, of: 4 } }));
    if (walletId === "w_malformed") return void (await ok({ walletId: 5 }));
    // An answer without a key type (an old node), and one of a curve this SDK does not know.
    if (walletId === "w_nokeytype")
      return void (await ok({ ...walletView(walletId), keyType: undefined }));
    if (walletId === "w_futurekey")
      return void (await ok({ ...walletView(walletId), keyType: "ed25519-eddsa" }));
    if (walletId === "w_badaddr")
      return void (await ok({
        ...walletView(walletId),
        address: walletView(walletId, childKey).address,
      }));

    switch (op) {
      case "dkg": {
        const t = (body.threshold as number | undefined) ?? 3;
        const n = (body.parties as number | undefined) ?? 5;
        if (t > n)
          return void (await fail(
            "bad_request",
            "need integers 2 <= threshold <= parties <= 16",
            null,
          ));
        // Junk progress first: the SDK must drop it, not fail the request.
        await send({ progress: { stage: "dkg\u001b[31m", phase: 9, of: 4 } });
        for (let phase = 1; phase <= 4; phase++)
          await send({ progress: { stage: "dkg", phase, of: 4 } });
        const key = `dkg:${body.requestId}`;
        if (!this.done.has(key)) {
          const id = `w_${toHex(secp256k1.utils.randomSecretKey().slice(0, 12))}`;
          this.done.set(key, {
            ...walletView(id),
            threshold: t,
            parties: n,
            nodes: ["node-1", "node-2", "node-3", "node-4", "node-5"].slice(0, n),
          });
        }
        return void (await ok(this.done.get(key)));
      }
      case "sign": {
        const digest = body.digest as string;
        const path = (body.path as string | undefined) ?? null;
        const sk = path ? childKey : walletKey;
        const other = "11".repeat(32);
        let signature = sign(sk, digest);
        let signedDigest = digest;
        if (walletId === "w_badsig") signature = sign(sk, other);
        if (walletId === "w_badder")
          signature = { ...signature, der: signature.der.replace(/.{2}$/, "00") };
        if (walletId === "w_otherdigest") {
          signedDigest = other;
          signature = sign(sk, other);
        }
        for (let phase = 1; phase <= 4; phase++)
          await send({ progress: { stage: "sign", phase, of: 4 } });
        const publicKey = pub(sk);
        return void (await ok({
          walletId,
          keyType: "secp256k1-ecdsa",
          digest: signedDigest,
          path,
          publicKey,
          address: ethAddress(fromHex(publicKey)),
          signature,
          signers: ["node-1", "node-2"],
          coordinator: "node-1",
        }));
      }
      case "refresh":
        return void (await ok({
          walletId,
          keyType: "secp256k1-ecdsa",
          generation: 1,
          publicKey: pub(walletKey),
          address: ethAddress(secp256k1.getPublicKey(walletKey, true)),
        }));
      case "wallet":
        return void (await ok({
          ...walletView(walletId),
          extra: "dropped by the SDK",
          // w_lying: one holder's host relays a genuine statement of another generation.
          vouchers:
            walletId === "w_lying"
              ? [...vouchersOf(walletId).slice(0, 2), vouchersOf(walletId, 5)[2]]
              : vouchersOf(walletId),
        }));
      case "wallets":
        return void (await ok({ wallets: [walletView("w_test"), walletView("w_other")] }));
      case "nodes":
        return void (await ok({
          nodes: [
            { nodeId: "node-1", status: "online", since: 1_700_000_000_000, pcr0: "ab".repeat(48) },
            { nodeId: "node-2", status: "online", since: 1_700_000_000_000, pcr0: null },
          ],
        }));
    }
  }
}

// ---------------------------------------------------------------- set-up

let broker: ChildProcess;
let url = "";
let node: FakeNode;
let nodeMqtt: MqttClient;
let client: TssClient;
let dir = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-client-test-"));
  const port = await freePort();
  writeFileSync(
    join(dir, "mosquitto.conf"),
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
  );
  broker = spawn("/usr/sbin/mosquitto", ["-c", join(dir, "mosquitto.conf")], { stdio: "ignore" });
  await waitForPort(port, 10_000);
  url = `mqtt://127.0.0.1:${port}`;
  nodeMqtt = await mqtt.connectAsync({
    protocol: "mqtt",
    host: "127.0.0.1",
    port,
    protocolVersion: 5,
    clientId: "fake-node-1",
  });
  await nodeMqtt.subscribeAsync("$share/tss-nodes/tss/v1/requests/+", { qos: 1 });
  node = new FakeNode(nodeMqtt);
  client = await TssClient.connect({ url, timeoutMs: 10_000 });
});

afterAll(async () => {
  await client?.close();
  await nodeMqtt?.endAsync(true);
  if (broker && broker.exitCode === null) {
    const exited = new Promise((r) => broker.once("exit", r));
    broker.kill("SIGTERM");
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const DIGEST = "a1".repeat(32);

async function rejection(p: Promise<unknown>): Promise<TssError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TssError);
  return e as TssError;
}

// ---------------------------------------------------------------- SDK

describe("SDK", () => {
  it("creates a wallet: typed result, progress in order, request shaped per the contract", async () => {
    const progress: Progress[] = [];
    const requestId = newRequestId();
    const w = await client.createWallet({
      threshold: 2,
      parties: 3,
      requestId,
      onProgress: (p) => progress.push(p),
    });
    expect(w.walletId).toMatch(/^w_[0-9a-f]{24}$/);
    expect(w).toEqual({
      walletId: w.walletId,
      keyType: "secp256k1-ecdsa",
      publicKey: pub(walletKey),
      address: ethAddress(secp256k1.getPublicKey(walletKey)),
      threshold: 2,
      parties: 3,
      generation: 0,
      nodes: ["node-1", "node-2", "node-3"],
    });
    // The junk progress message was dropped; the four real ones arrived in order.
    expect(progress).toEqual([1, 2, 3, 4].map((phase) => ({ stage: "dkg", phase, of: 4 })));
    const req = node.seen.at(-1)!;
    expect(req.op).toBe("dkg");
    // The request names its key type: the default one when the caller names none.
    expect(req.body).toEqual({ requestId, keyType: "secp256k1-ecdsa", threshold: 2, parties: 3 });
    expect(req.responseTopic.startsWith(`tss/v1/responses/${client.clientId}/`)).toBe(true);
    expect(req.correlationData.length).toBe(16);
    // Same requestId: the node returns the stored wallet, not a new one.
    const again = await client.createWallet({ threshold: 2, parties: 3, requestId });
    expect(again.walletId).toBe(w.walletId);
  });

  it("generates a fresh request id when none is given", async () => {
    await client.nodes();
    await client.nodes();
    const ids = node.seen.slice(-2).map((s) => s.body.requestId as string);
    expect(ids[0]).toMatch(/^req-[0-9a-f]{32}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it("signs: the signature verifies, with and without a path, digest as hex or bytes", async () => {
    const progress: Progress[] = [];
    const r: SignResult = await client.sign({
      walletId: "w_test",
      digest: `0x${DIGEST.toUpperCase()}`,
      onProgress: (p) => progress.push(p),
    });
    expect(r.digest).toBe(DIGEST);
    expect(r.path).toBeNull();
    expect(r.publicKey).toBe(pub(walletKey));
    expect(r.signature).toEqual(sign(walletKey, DIGEST));
    expect(r.signers).toEqual(["node-1", "node-2"]);
    expect(progress.map((p) => p.phase)).toEqual([1, 2, 3, 4]);
    expect(node.seen.at(-1)!.body).toMatchObject({ walletId: "w_test", digest: DIGEST });

    const child = await client.sign({ walletId: "w_test", digest: fromHex(DIGEST), path: "m/0/7" });
    expect(child.path).toBe("m/0/7");
    expect(child.publicKey).toBe(pub(childKey));
    expect(node.seen.at(-1)!.body.path).toBe("m/0/7");
  });

  it("rejects a signature that does not verify, forms that disagree, and a result for another digest", async () => {
    const bad = await rejection(client.sign({ walletId: "w_badsig", digest: DIGEST }));
    expect(bad.code).toBe("invalid_signature");
    expect(bad.node).toBe("node-1");
    expect((await rejection(client.sign({ walletId: "w_badder", digest: DIGEST }))).code).toBe(
      "invalid_signature",
    );
    expect((await rejection(client.sign({ walletId: "w_otherdigest", digest: DIGEST }))).code).toBe(
      "inconsistent_result",
    );
  });

  it("turns an error answer into a TssError with code, message, node and request id", async () => {
    const e = await rejection(client.wallet("w_missing", { requestId: "my-id-1" }));
    expect(e.code).toBe("not_found");
    expect(e.message).toBe("no live node holds wallet w_missing");
    expect(e.node).toBe("node-3");
    expect(e.requestId).toBe("my-id-1");
    expect((await rejection(client.createWallet({ threshold: 5, parties: 3 }))).code).toBe(
      "bad_request",
    );
  });

  it("exposes the blamed node of an error answer as TssError.node and blame.node", async () => {
    const e = await rejection(client.refresh({ walletId: "w_blamed" }));
    expect(e).toBeInstanceOf(CodedError);
    expect(e.code).toBe("ceremony_failed");
    expect(e.node).toBe("node-2");
    expect(e.blame).toEqual({ node: "node-2" });
    const none = await rejection(client.createWallet({ threshold: 5, parties: 3 }));
    expect(none.node).toBeNull();
    expect(none.blame).toEqual({});
  });

  it("refuses an error answer whose blame field is not a node id or null, as bad_response", async () => {
    for (const walletId of Object.keys(BAD_BLAME)) {
      const e = await rejection(client.wallet(walletId));
      expect(e.code, walletId).toBe("bad_response");
      expect(e.message, walletId).toMatch(/error\.node must be a node id/);
      expect(e.node, walletId).toBeNull();
    }
  });

  it("knows exactly the contract's node codes, as both documents list them", () => {
    expect(NODE_ERROR_CODES).toEqual(ERROR_CODES);
    expect([...NODE_ERROR_CODES].sort()).toEqual([
      "approval_expired",
      "approval_replayed",
      "bad_request",
      "ceremony_failed",
      "conflict",
      "deadline_exceeded",
      "inconsistent_result",
      "internal",
      "invalid_signature",
      "not_enough_nodes",
      "not_found",
      "rate_limited",
      "stale_share",
      "unauthorised",
    ]);
    const md = readFileSync(join(ROOT, "docs/mqtt-api.md"), "utf8");
    const table = md.slice(md.indexOf("| code | meaning |"));
    expect(
      [...table.slice(0, table.indexOf("\n\n")).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]),
    ).toEqual([...ERROR_CODES]);
    const yaml = readFileSync(join(ROOT, "docs/asyncapi.yaml"), "utf8");
    const enumAt = yaml.indexOf("enum:", yaml.indexOf("\n    errorCode:"));
    expect(
      [
        ...yaml.slice(enumAt, yaml.indexOf("\n    error:", enumAt)).matchAll(/^ +- ([a-z_]+)$/gm),
      ].map((m) => m[1]),
    ).toEqual([...ERROR_CODES]);
  });

  it("rejects with deadline_exceeded when no final answer comes in time", async () => {
    const started = Date.now();
    const e = await rejection(
      client.refresh({ walletId: "w_slow", requestId: "slow-1", timeoutMs: 400 }),
    );
    expect(e.code).toBe("deadline_exceeded");
    expect(e.requestId).toBe("slow-1");
    expect(e.message).toMatch(/same requestId/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("with trust, verifies a wallet against its holders' attested enclaves and names a lying node", async () => {
    const trusted = await TssClient.connect({ url, timeoutMs: 10_000, trust });
    try {
      expect(await trusted.wallet("w_test")).toEqual({ ...walletView("w_test"), vouchedBy });
      const e = await rejection(trusted.wallet("w_lying"));
      expect(e.code).toBe("unverified_wallet");
      expect(e.node).toBe("node-3");
      expect(e.message).toMatch(/generation 5/);
      // A signature by the verified key is accepted; one for a path whose key is not the
      // child derived from the verified chain code is not.
      const ok = await trusted.sign({ walletId: "w_test", digest: DIGEST });
      expect(ok.publicKey).toBe(pub(walletKey));
      const child = await rejection(
        trusted.sign({ walletId: "w_test", digest: DIGEST, path: "m/0/7" }),
      );
      expect(child.code).toBe("invalid_signature");
      expect(child.message).toMatch(/not the verified key of wallet w_test at m\/0\/7/);
    } finally {
      await trusted.close();
    }
  });

  it("parses queries into exactly the documented shape", async () => {
    const w = await client.wallet("w_test");
    expect(w).toEqual(walletView("w_test"));
    expect("extra" in w).toBe(false);
    expect((await client.wallets()).wallets.map((x) => x.walletId)).toEqual(["w_test", "w_other"]);
    const r = await client.refresh({ walletId: "w_test" });
    expect(r).toEqual({
      walletId: "w_test",
      keyType: "secp256k1-ecdsa",
      generation: 1,
      publicKey: pub(walletKey),
      address: walletView("w_test").address,
    });
    const { nodes } = await client.nodes();
    expect(nodes).toEqual([
      { nodeId: "node-1", status: "online", since: 1_700_000_000_000, pcr0: "ab".repeat(48) },
      { nodeId: "node-2", status: "online", since: 1_700_000_000_000, pcr0: null },
    ]);
  });

  it("rejects malformed and inconsistent answers", async () => {
    const e = await rejection(client.wallet("w_malformed"));
    expect(e.code).toBe("bad_response");
    expect(e.message).toMatch(/walletId/);
    expect((await rejection(client.wallet("w_badaddr"))).code).toBe("inconsistent_result");
  });

  it("refuses an answer without a key type or with one it does not know, never reading it as secp256k1", async () => {
    const missing = await rejection(client.wallet("w_nokeytype"));
    expect(missing.code).toBe("bad_response");
    expect(missing.message).toMatch(
      /result\.keyType is missing: it must be one of "secp256k1-ecdsa"/,
    );
    const future = await rejection(client.wallet("w_futurekey"));
    expect(future.code).toBe("bad_response");
    expect(future.message).toMatch(/keyType "ed25519-eddsa" is not a key type this SDK knows/);
  });

  it("refuses an unsupported key type in a request before publishing, and sends the one named", async () => {
    const before = node.seen.length;
    const asked = { keyType: "ed25519-eddsa" } as unknown as { keyType: "secp256k1-ecdsa" };
    for (const p of [
      client.createWallet(asked),
      client.sign({ walletId: "w_test", digest: DIGEST, ...asked }),
      client.refresh({ walletId: "w_test", ...asked }),
      client.retireWallet({ walletId: "w_test", ...asked }),
    ]) {
      const e = await rejection(p);
      expect(e.code).toBe("bad_request");
      expect(e.message).toMatch(
        /keyType "ed25519-eddsa" is not supported: it must be one of "secp256k1-ecdsa"/,
      );
    }
    expect(node.seen.length).toBe(before);
    await client.sign({ walletId: "w_test", digest: DIGEST, keyType: "secp256k1-ecdsa" });
    expect(node.seen.at(-1)!.body.keyType).toBe("secp256k1-ecdsa");
  });

  it("refuses bad arguments before publishing anything", async () => {
    const before = node.seen.length;
    expect((await rejection(client.sign({ walletId: "w_test", digest: "abc" }))).code).toBe(
      "bad_request",
    );
    expect(
      (await rejection(client.sign({ walletId: "w_test", digest: new Uint8Array(31) }))).code,
    ).toBe("bad_request");
    expect(
      (await rejection(client.sign({ walletId: "w_test", digest: DIGEST, path: "m/0'/1" }))).code,
    ).toBe("bad_request");
    expect(
      (await rejection(client.sign({ walletId: "w_test", digest: DIGEST, path: "m/2147483648" })))
        .code,
    ).toBe("bad_request");
    expect((await rejection(client.wallet("w/../x"))).code).toBe("bad_request");
    expect((await rejection(client.nodes({ requestId: "has space" }))).code).toBe("bad_request");
    expect(node.seen.length).toBe(before);
  });

  it("computes EIP-55 addresses (private key 1 is a known vector)", () => {
    const one = new Uint8Array(32);
    one[31] = 1;
    expect(ethAddress(secp256k1.getPublicKey(one))).toBe(
      "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
    );
  });

  it("fails to connect with connection_failed, and refuses a bad URL with bad_request", async () => {
    const port = await freePort();
    expect(
      (await rejection(TssClient.connect({ url: `mqtt://127.0.0.1:${port}`, timeoutMs: 3000 })))
        .code,
    ).toBe("connection_failed");
    expect((await rejection(TssClient.connect({ url: "http://127.0.0.1:1" }))).code).toBe(
      "bad_request",
    );
    expect((await rejection(TssClient.connect({ url, clientId: "a/b" }))).code).toBe("bad_request");
  });

  it("close() rejects pending requests with closed", async () => {
    const c = await TssClient.connect({ url });
    const caught = rejection(c.wallet("w_slow"));
    await new Promise((r) => setTimeout(r, 100));
    await c.close();
    expect((await caught).code).toBe("closed");
  });
});

// ---------------------------------------------------------------- CLI

interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

async function tss(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TSS_")),
  ) as Record<string, string>;
  const child = spawn(BUN, ["run", join(ROOT, "src/cli/tss.ts"), ...args], {
    cwd: ROOT,
    // No cluster file: the real data/cluster/client.json may exist on a developer's machine.
    env: { ...base, TSS_CLIENT_CONFIG: join(dir, "absent.json"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const status = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { status, stdout, stderr };
}

/** Trust in the holders' development root and image, as the CLI takes it from the environment. */
function trustEnv(): Record<string, string> {
  const root = join(dir, "dev-root.pem");
  writeFileSync(root, derToPem(devPki.root.der));
  return { TSS_DEV_ROOT: root, TSS_IMAGES: toHex(IMAGE), TSS_ALLOW_DEVELOPMENT: "1" };
}

function oneSentence(stderr: string): void {
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tss: \S.*\.$/);
}

describe("CLI", () => {
  it("creates a wallet with progress on stderr and a readable summary", async () => {
    const r = await tss(["wallet", "create", "--threshold", "2", "--parties", "3", "--url", url]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Created wallet w_[0-9a-f]+ \(2-of-3, share generation 0\)/);
    expect(r.stdout).toContain(walletView("w_test").address);
    expect(r.stderr).toMatch(
      /dkg phase 1 of 4[^\n]*\ndkg phase 2 of 4[^\n]*\ndkg phase 3 of 4[^\n]*\ndkg phase 4 of 4/,
    );
  });

  it("prints a signature as r, s, recovery id, Ethereum form and DER", async () => {
    const r = await tss(["sign", "--wallet", "w_test", "--digest", DIGEST, `--url=${url}`]);
    expect(r.status).toBe(0);
    const s = sign(walletKey, DIGEST);
    expect(r.stdout).toMatch(new RegExp(`\\n  r +${s.r}\\n`));
    expect(r.stdout).toMatch(new RegExp(`\\n  s +${s.s}\\n`));
    expect(r.stdout).toMatch(new RegExp(`\\n  recovery id +${s.recoveryId}\\n`));
    expect(r.stdout).toContain(`0x${s.ethereum}`);
    expect(r.stdout).toMatch(new RegExp(`\\n  der +${s.der}\\n`));
    expect(r.stdout).toContain(walletView("w_test").address);
  });

  it("--json prints one JSON document; the cluster's client file supplies the URL", async () => {
    const show = await tss(["--json", "wallet", "show", "w_test"], {
      TSS_MQTT_URL: url,
      ...trustEnv(),
    });
    expect(show.status).toBe(0);
    expect(JSON.parse(show.stdout)).toEqual({ ...walletView("w_test"), vouchedBy });
    expect(show.stderr).toBe("");

    const file = join(dir, "client.json");
    writeFileSync(file, JSON.stringify({ url, username: "cli", password: "secret" }));
    const nodes = await tss(["nodes", "--json"], { TSS_CLIENT_CONFIG: file });
    expect(nodes.status).toBe(0);
    expect(JSON.parse(nodes.stdout).nodes).toHaveLength(2);
  });

  it("wallet show prints that n attested enclaves vouch for the wallet, or fails", async () => {
    const r = await tss(["wallet", "show", "w_test", "--url", url, "--allow-development"], {
      TSS_DEV_ROOT: trustEnv().TSS_DEV_ROOT!,
      TSS_IMAGES: toHex(IMAGE),
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/vouched for +by 3 attested enclaves \(all 3 holders; image abab/);
    expect(r.stdout).toMatch(/DEVELOPMENT root/);

    const lying = await tss(["wallet", "show", "w_lying", "--url", url], trustEnv());
    expect(lying.status).toBe(1);
    oneSentence(lying.stderr);
    expect(lying.stderr).toMatch(/disagree.*unverified_wallet, node node-3/);

    // Without trust there is nothing to vouch with; without the flag no development root counts.
    const none = await tss(["wallet", "show", "w_test", "--url", url]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/verifies it against attested enclaves/);
    const noFlag = await tss(["wallet", "show", "w_test", "--url", url], {
      ...trustEnv(),
      TSS_ALLOW_DEVELOPMENT: "",
    });
    expect(noFlag.status).toBe(2);
    expect(noFlag.stderr).toMatch(/--allow-development/);
  });

  it("usage errors exit 2 with one sentence", async () => {
    for (const args of [
      ["sign", "--wallet", "w_test", "--url", url],
      ["sign", "--wallet", "w_test", "--digest", "12", "--url", url],
      ["frobnicate"],
      ["wallet", "show"],
      ["nodes", "--bogus"],
      ["nodes", "--timeout", "soon", "--url", url],
      ["wallet", "list", "--digest", DIGEST],
      ["wallet", "create", "--threshold", "0", "--url", url],
      ["nodes", "--url", "http://127.0.0.1:1"],
      [],
    ]) {
      const r = await tss(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      oneSentence(r.stderr);
    }
    const noUrl = await tss(["nodes"]);
    expect(noUrl.status).toBe(2);
    expect(noUrl.stderr).toMatch(/No broker URL/);
  });

  it("an operation error exits 1 with one sentence naming code and node", async () => {
    const r = await tss(["wallet", "show", "w_missing", "--url", url], trustEnv());
    expect(r.status).toBe(1);
    oneSentence(r.stderr);
    expect(r.stderr).toBe("tss: No live node holds wallet w_missing (not_found, node node-3).\n");

    const j = await tss(["wallet", "show", "w_missing", "--url", url, "--json"], trustEnv());
    expect(j.status).toBe(1);
    expect(JSON.parse(j.stdout).error).toMatchObject({ code: "not_found", node: "node-3" });

    const slow = await tss([
      "sign",
      "--wallet",
      "w_slow",
      "--digest",
      DIGEST,
      "--url",
      url,
      "--timeout",
      "0.5",
      "--request-id",
      "cli-slow-1",
    ]);
    expect(slow.status).toBe(1);
    expect(slow.stderr).toMatch(/deadline_exceeded.*--request-id cli-slow-1/);
  });

  it("--help works for the tool and each command", async () => {
    const main = await tss(["--help"]);
    expect(main.status).toBe(0);
    expect(main.stdout).toMatch(/^Usage: tss \[options\] COMMAND/);
    for (const args of [
      ["sign", "--help"],
      ["wallet", "create", "-h"],
      ["help", "nodes"],
      ["wallet", "--help"],
    ]) {
      const r = await tss(args);
      expect(r.status, args.join(" ")).toBe(0);
      expect(r.stdout).toMatch(/^Usage: tss /);
    }
  });
});

// Last: it takes the fake node away.
describe("no node listening", () => {
  it("rejects at once with not_enough_nodes", async () => {
    await nodeMqtt.endAsync();
    const started = Date.now();
    const e = await rejection(client.nodes({ timeoutMs: 10_000 }));
    expect(e.code).toBe("not_enough_nodes");
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
