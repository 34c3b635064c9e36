/**
 * Fuzz targets for what a host reads from the broker: client requests (RequestServer.onMessage
 * into RequestHandler.handle, the host's whole request parsing) and node-RPC calls and replies
 * (NodeRpc.onCall into the op dispatcher with its argument checkers, NodeRpc.onReply).
 *
 * The host runs against stand-ins that behave: a fake MQTT client that records publishes, and a
 * peer directory whose one live node answers through the real argument checkers. So any
 * `internal` answer, any throw, or any request left without exactly one final answer is a
 * parsing defect, not a failing dependency.
 */
import type { IPublishPacket, MqttClient } from "mqtt";
import fc from "fast-check";
import { RemoteCallError, NodeRpc } from "../../../src/host/mqtt/node-rpc.ts";
import { RequestServer } from "../../../src/host/mqtt/requests.ts";
import { RequestHandler } from "../../../src/host/request-handler.ts";
import type { NodeHost } from "../../../src/host/node-host.ts";
import type { PeerDirectory } from "../../../src/host/peer-directory.ts";
import { fromHex } from "../../../src/shared/hex.ts";
import { CodedError, isErrorCode } from "../../../src/shared/wire/errors.ts";
import { encodeJson } from "../../../src/shared/wire/json-payload.ts";
import { decodeNodePayload, encodeRpcPayload } from "../../../src/shared/wire/rpc-payload.ts";
import {
  checkNodeOpArgs,
  NODE_OP_NAMES,
  nodeOpDispatcher,
  type HeldWallet,
  type NodeOpHandlers,
} from "../../../src/shared/wire/node-rpc.ts";
import { CLIENT_OPS, REQUESTS_PREFIX } from "../../../src/shared/wire/topics.ts";
import {
  bytesFrom,
  hostileJson,
  hostileString,
  must,
  outcome,
  outcomeAsync,
  target,
  type AnyTarget,
  type Outcome,
} from "../harness.ts";
import { jsonBytes } from "./wire.ts";

const FULL = 100_000;
const SAMPLE = 1_500;
const BOUND_MS = 1_000;

interface Published {
  topic: string;
  payload: Uint8Array;
  correlationData?: Uint8Array;
}

/** An MqttClient that records what would be published and reports success. */
function recordingClient(): { client: MqttClient; published: Published[] } {
  const published: Published[] = [];
  const client = {
    publish(
      topic: string,
      payload: string | Uint8Array,
      opts: { properties?: { correlationData?: Uint8Array } },
      cb?: (err?: Error) => void,
    ) {
      published.push({
        topic,
        payload: typeof payload === "string" ? new TextEncoder().encode(payload) : payload,
        correlationData: opts?.properties?.correlationData,
      });
      cb?.();
      return client;
    },
  };
  return { client: client as unknown as MqttClient, published };
}

const packet = (properties: IPublishPacket["properties"]) =>
  ({
    cmd: "publish",
    qos: 1,
    dup: false,
    retain: false,
    topic: "",
    payload: "",
    properties,
  }) as IPublishPacket;

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------- client requests

const ME = "node-1";
const WALLET = "w-1";
const DONE_REQUEST = "r-done";
/** The secp256k1 generator, compressed: a valid public key for the stand-in wallet. */
const PUBLIC_KEY = fromHex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
const held: HeldWallet = {
  walletId: WALLET,
  nodeId: ME,
  generation: 2,
  partyIndex: 1,
  threshold: 2,
  parties: 3,
  publicKey: PUBLIC_KEY,
  publicPackage: new Uint8Array(64),
  chainCode: new Uint8Array(32),
};

/** One live node (this one) that holds one share of WALLET and one finished request. */
const peers: PeerDirectory = {
  liveNodes: () => [{ nodeId: ME, since: 1 }],
  participant: () => {
    throw new Error("the fuzzed requests never reach a ceremony (one live node)");
  },
  async ask(_nodeId, op, args) {
    // What this node would do with its own question: the real argument checks first.
    const a = checkNodeOpArgs(op, args) as { walletId?: string; requestId?: string };
    const wallet = a.walletId === WALLET ? held : null;
    if (op === "requestContext") {
      const request =
        a.requestId === DONE_REQUEST
          ? {
              status: "succeeded",
              result: new TextEncoder().encode('{"stored":true}'),
              error: null,
            }
          : null;
      return { request, wallet } as never;
    }
    if (op === "walletInfo") return wallet as never;
    if (op === "listWallets") return [held] as never;
    return null;
  },
};

const requestSeeds = [
  { requestId: "r-1", threshold: 2, parties: 3 },
  { requestId: "r-2", walletId: WALLET, digest: "ab".repeat(32), path: "m/0/7" },
  { requestId: "r-3", walletId: WALLET, digest: `0x${"cd".repeat(32)}` },
  { requestId: "r-4", walletId: WALLET },
  { requestId: DONE_REQUEST, walletId: WALLET, digest: "00".repeat(32) },
  { requestId: "r-5" },
].map((o) => new TextEncoder().encode(JSON.stringify(o)));

const requestFields = ["requestId", "walletId", "digest", "path", "threshold", "parties"];
const requestPayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: bytesFrom(requestSeeds, { maxRandom: 128 }) },
  {
    weight: 4,
    arbitrary: fc
      .dictionary(
        fc.constantFrom(...requestFields),
        fc.oneof(hostileJson, fc.constantFrom(WALLET, "r-9", DONE_REQUEST, "ab".repeat(32), "m/1")),
        { maxKeys: 6 },
      )
      .map((o) => new TextEncoder().encode(JSON.stringify(o))),
  },
  { weight: 1, arbitrary: jsonBytes },
);

const clientRequests = target({
  name: "mqtt requests: RequestServer.onMessage into RequestHandler.handle",
  arbitrary: fc.record({
    op: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...CLIENT_OPS) },
      { weight: 1, arbitrary: hostileString },
    ),
    payload: requestPayload,
    responseTopic: fc.oneof(
      { weight: 8, arbitrary: fc.constant("tss/v1/responses/client-1/req") },
      { weight: 1, arbitrary: hostileString.map((s) => `tss/v1/responses/${s}`) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    correlation: fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    ),
  }),
  check: async ({ op, payload, responseTopic, correlation }) => {
    const { client, published } = recordingClient();
    const server = new RequestServer(client, () => {});
    const handler = new RequestHandler({ nodeId: ME } as NodeHost, peers, {
      phaseTimeoutMs: 1_000,
    });
    let handled: Promise<void> | undefined;
    server.setHandler((o, b, reply) => {
      handled = handler.handle(o, b, reply);
    });
    const r = outcome(
      () =>
        server.onMessage(
          `${REQUESTS_PREFIX}${op}`,
          Buffer.from(payload),
          packet({ responseTopic, correlationData: Buffer.from(correlation) }),
        ),
      [],
    );
    if (!r.accepted) return r;
    await handled;
    if (server.counters.droppedRequests > 0) {
      must(published.length === 0, "a dropped request was answered");
      return { accepted: false, error: new CodedError("dropped", "no one to answer") };
    }
    // Progress messages (the coordinator names itself in one before planning) are not answers.
    const finals = published
      .map((p) => JSON.parse(new TextDecoder().decode(p.payload)))
      .filter((m) => !("progress" in m));
    must(finals.length === 1 && typeof finals[0].ok === "boolean", "not exactly one final answer");
    const answer = finals[0] as { ok: boolean; error?: { code: string; message: string } };
    if (answer.ok) return { accepted: true, value: answer };
    const { code, message } = answer.error!;
    must(isErrorCode(code) && code !== "internal", `answered ${code}: ${message}`);
    must(message.length <= 1_000, "error sentence beyond its bound");
    return { accepted: false, error: new CodedError(code, message) };
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: BOUND_MS,
});

// ---------------------------------------------------------------- node-RPC calls

/** Handlers that succeed with nothing: whatever fails, failed in parsing or the argument checks. */
const quietHandlers = Object.fromEntries(
  NODE_OP_NAMES.map((op) => [op, () => ({})]),
) as unknown as NodeOpHandlers;

const callSeeds = [
  { op: "prepare", args: { walletId: WALLET } },
  { op: "step", args: { sessionId: new Uint8Array(32), phase: 2, messages: [new Uint8Array(40)] } },
  { op: "requestContext", args: { kind: "sign", requestId: "r-1", walletId: WALLET } },
  {
    op: "commit",
    args: { kind: "dkg", sessionId: new Uint8Array(32), walletId: WALLET, generation: 0 },
  },
  { op: "listWallets" },
].flatMap((v) => [
  new Uint8Array(encodeJson({ ...v, from: "node-2" })),
  // As nodes send them now: binary (rpc-payload.ts).
  encodeRpcPayload({ ...v, from: "node-2" }),
]);

const callPayload = fc.oneof(
  { weight: 3, arbitrary: bytesFrom(callSeeds, { maxRandom: 128 }) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        op: fc.oneof(fc.constantFrom(...NODE_OP_NAMES), hostileString),
        args: hostileJson,
        from: fc.oneof(fc.constant("node-2"), hostileString),
      })
      // JSON.stringify, not encodeJson: hostile {"$b64": ...} objects must reach the decoder as they are.
      .map((v) => new TextEncoder().encode(JSON.stringify(v))),
  },
  { weight: 1, arbitrary: jsonBytes },
);

const nodeCalls = target({
  name: "node rpc: NodeRpc.onCall into the op dispatcher and argument checkers",
  arbitrary: fc.record({
    payload: callPayload,
    correlation: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  check: async ({ payload, correlation }) => {
    const { client, published } = recordingClient();
    const rpc = new NodeRpc(client, ME, () => {});
    const dispatch = nodeOpDispatcher(quietHandlers);
    rpc.setHandler((op, args) => dispatch(op, args));
    const r = outcome(
      () =>
        rpc.onCall(
          Buffer.from(payload),
          packet({
            responseTopic: "tss/v1/nodes/node-2/replies",
            correlationData: Buffer.from(correlation),
          }),
        ),
      [],
    );
    if (!r.accepted) return r;
    await settle();
    must(published.length === 1, `a call got ${published.length} answers`);
    // Answered in the call's format: binary when it starts with the binary magic, else JSON.
    const answer = decodeNodePayload(published[0]!.payload).value as {
      ok: boolean;
      error?: { code: string; message: string };
    };
    if (answer.ok) return { accepted: true, value: answer };
    // bad_request for a malformed call; unauthorised when the caller it names
    // does not own the replies topic it asks for (both documented refusals).
    must(
      answer.error?.code === "bad_request" || answer.error?.code === "unauthorised",
      `refused with ${answer.error?.code}: ${answer.error?.message}`,
    );
    return { accepted: false, error: new CodedError(answer.error.code, answer.error.message) };
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: BOUND_MS,
});

const replySeeds = [
  { ok: true, result: { walletId: WALLET, generation: 0, partyIndex: 1 } },
  { ok: false, error: { code: "stale_share", message: "old", node: "node-3", party: 3 } },
  { ok: true, result: null },
].flatMap((v) => [new Uint8Array(encodeJson(v)), encodeRpcPayload(v)]);

const nodeReplies = target({
  name: "node rpc: NodeRpc.onReply (a reply to a waiting call)",
  arbitrary: fc.oneof(
    { weight: 3, arbitrary: bytesFrom(replySeeds, { maxRandom: 128 }) },
    { weight: 1, arbitrary: jsonBytes },
  ),
  check: async (payload) => {
    const { client, published } = recordingClient();
    const rpc = new NodeRpc(client, ME, () => {});
    const call = rpc.callNode("node-2", "prepare", { walletId: WALLET }, { timeoutMs: 60_000 });
    const settled = outcomeAsync(() => call, [RemoteCallError]);
    must(published.length === 1, "the call was not sent");
    rpc.onReply(
      Buffer.from(payload),
      packet({ correlationData: Buffer.from(published[0]!.correlationData!) }),
    );
    // The reply settles the call at once: no waiting for the 60 s timeout.
    const result = await Promise.race([settled, settle().then(() => "pending" as const)]);
    if (result === "pending") {
      rpc.close();
      await settled;
      must(false, "a reply left its call pending");
    }
    const o = result as Outcome<unknown>;
    if (!o.accepted) {
      const e = o.error as RemoteCallError;
      must(e.code.length <= 64 && e.message.length <= 2_000, "remote error beyond its bounds");
    }
    return o;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: BOUND_MS,
});

export const hostTargets: AnyTarget[] = [clientRequests, nodeCalls, nodeReplies];
