/**
 * Node-to-node RPC: a coordinator calls `op` on another node's inbox and gets
 * its reply on its own replies topic, matched by Correlation Data. Calls time
 * out; replies arriving after that are dropped. Remote failures come back as
 * RemoteCallError with the remote code. Local failures use codes from the
 * client contract (deadline_exceeded, internal), since a coordinator passes a
 * failed call's code on to the client.
 *
 * Calls go out as binary payloads (rpc-payload.ts); a call that came as JSON
 * (json-payload.ts: older nodes, hand-written test calls) is answered in
 * JSON, a binary one in binary, and replies are read in either format. With
 * TSS_NODE_RPC_PAYLOAD=json in its environment a node also calls in JSON:
 * for a rolling upgrade while older nodes (which read only JSON) remain, and
 * for measuring the difference (bench/cluster.ts --legacy-node-layer).
 */
import { randomBytes } from "node:crypto";
import type { IPublishPacket, MqttClient } from "mqtt";
import { JsonPayloadError } from "../../shared/wire/json-payload.ts";
import {
  decodeNodePayload,
  encodeNodePayload,
  RpcPayloadError,
  rpcPayloadFormat,
  type RpcPayloadFormat,
} from "../../shared/wire/rpc-payload.ts";
import { assertNodeId, inboxTopic, nodeOf, repliesTopic } from "../../shared/wire/topics.ts";
import { isPowerOfTwo, type Log } from "./requests.ts";
import { CodedError, type Blame } from "../../shared/wire/errors.ts";
import { ERROR_CODE, isNodeId } from "../../shared/wire/patterns.ts";
import { MAX_PARTIES } from "../../shared/wire/protocol-message.ts";

export type NodeCallHandler = (
  op: string,
  args: Record<string, unknown>,
  callerId: string,
) => Promise<unknown>;

/** An approval refusal's reason travels as a field; anything but a code-shaped string is dropped. */
const isReason = (r: unknown): r is string => typeof r === "string" && ERROR_CODE.test(r);

/** A node answered a call with an error, or did not answer in time. `blame` is what the remote side named (a node, or its enclave's party index). */
export class RemoteCallError extends CodedError {
  override name = "RemoteCallError";
  constructor(
    message: string,
    code: string,
    blame: Blame = {},
    /** An approval refusal's reason (approval.ts), as the remote side's enclave named it. */
    readonly reason?: string,
  ) {
    super(code, message, blame);
  }

  /** The node the remote side blamed, when it named one. */
  get node(): string | undefined {
    return this.blame.node;
  }
}

export interface RpcCounters {
  /** Inbox messages without a usable Response Topic or Correlation Data. */
  droppedCalls: number;
  /** Replies for calls that had already timed out (or were never made). */
  lateReplies: number;
  /** Replies that could not be parsed; the call they answer fails. */
  badReplies: number;
}

/** The format of this node's calls (see the header): binary unless the environment asks for JSON. */
const CALL_FORMAT: RpcPayloadFormat =
  process.env.TSS_NODE_RPC_PAYLOAD === "json" ? "json" : "binary";

const CORRELATION_BYTES = 16;
const OP_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MAX_MESSAGE = 2_000;
/** Correlation ids of recently served calls: a QoS 1 redelivery must not run an op twice. */
const RECENT_CALLS = 4_096;

interface Pending {
  /** The node called: its loss fails the call at once (failCallsTo). */
  nodeId: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class NodeRpc {
  readonly counters: RpcCounters = { droppedCalls: 0, lateReplies: 0, badReplies: 0 };
  private readonly pending = new Map<string, Pending>();
  private readonly recent = new Set<string>();
  private handler: NodeCallHandler | null = null;
  private closed = false;

  constructor(
    private readonly client: MqttClient,
    private readonly me: string,
    private readonly log: Log,
    private readonly defaultTimeoutMs = 30_000,
  ) {}

  setHandler(h: NodeCallHandler): void {
    this.handler = h;
  }

  callNode(
    nodeId: string,
    op: string,
    args: unknown,
    opts: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new RemoteCallError("the bus is closed", "internal"));
    try {
      assertNodeId(nodeId);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!OP_NAME.test(op))
      return Promise.reject(
        new Error(`invalid node operation name ${JSON.stringify(op.slice(0, 80))}`),
      );
    let payload: Buffer;
    try {
      // `from`: the calling node, which must be the owner of the replies topic (checked in onCall).
      payload = encodeNodePayload({ op, args: args ?? {}, from: this.me }, CALL_FORMAT);
    } catch (e) {
      return Promise.reject(new Error(`cannot send ${op} to ${nodeId}: ${(e as Error).message}`));
    }
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const id = randomBytes(CORRELATION_BYTES);
    const key = id.toString("hex");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(
          new RemoteCallError(
            `node ${nodeId} did not answer ${op} within ${timeoutMs} ms`,
            "deadline_exceeded",
          ),
        );
      }, timeoutMs);
      this.pending.set(key, { nodeId, resolve, reject, timer });
      this.client.publish(
        inboxTopic(nodeId),
        payload,
        { qos: 1, properties: { responseTopic: repliesTopic(this.me), correlationData: id } },
        (err) => {
          if (err)
            this.settle(key, (p) =>
              p.reject(
                new RemoteCallError(
                  `could not send ${op} to ${nodeId}: ${err.message}`,
                  "internal",
                ),
              ),
            );
        },
      );
    });
  }

  /** A message on this node's replies topic. Never throws. */
  onReply(payload: Buffer, packet: IPublishPacket): void {
    const corr = packet.properties?.correlationData;
    const key = corr && corr.length === CORRELATION_BYTES ? Buffer.from(corr).toString("hex") : "";
    if (!this.pending.has(key)) {
      this.counters.lateReplies++;
      return;
    }
    let reply: Record<string, unknown>;
    try {
      const v = decodeNodePayload(payload).value;
      if (
        !v ||
        typeof v !== "object" ||
        Array.isArray(v) ||
        typeof (v as { ok?: unknown }).ok !== "boolean"
      )
        throw new JsonPayloadError("reply is not {ok, ...}");
      reply = v as Record<string, unknown>;
    } catch (e) {
      this.counters.badReplies++;
      return this.settle(key, (p) =>
        p.reject(new RemoteCallError(`malformed reply: ${(e as Error).message}`, "internal")),
      );
    }
    if (reply.ok === true) return this.settle(key, (p) => p.resolve(reply.result));
    const err = (reply.error && typeof reply.error === "object" ? reply.error : {}) as Record<
      string,
      unknown
    >;
    const code = typeof err.code === "string" && err.code.length <= 64 ? err.code : "internal";
    const message =
      typeof err.message === "string" ? err.message.slice(0, MAX_MESSAGE) : "remote node failed";
    const blame: Blame = {
      ...(isNodeId(err.node) ? { node: err.node } : {}),
      ...(Number.isInteger(err.party) &&
      (err.party as number) >= 1 &&
      (err.party as number) <= MAX_PARTIES
        ? { party: err.party as number }
        : {}),
    };
    const reason = isReason(err.reason) ? err.reason : undefined;
    this.settle(key, (p) => p.reject(new RemoteCallError(message, code, blame, reason)));
  }

  /** A message on this node's inbox. Never throws; the answer is published asynchronously. */
  onCall(payload: Buffer, packet: IPublishPacket): void {
    const responseTopic = packet.properties?.responseTopic;
    const correlationData = packet.properties?.correlationData;
    const callerId = responseTopic ? nodeOf(responseTopic, "replies") : null;
    if (
      !responseTopic ||
      !callerId ||
      !correlationData ||
      correlationData.length === 0 ||
      correlationData.length > 64
    ) {
      const n = ++this.counters.droppedCalls;
      if (isPowerOfTwo(n))
        this.log("node_call_dropped", {
          reason: "no usable response topic or correlation data",
          bytes: payload.length,
          dropped: n,
        });
      return;
    }
    const dedupe = `${callerId}/${Buffer.from(correlationData).toString("hex")}`;
    if (this.recent.has(dedupe)) {
      this.counters.droppedCalls++;
      return;
    }
    this.remember(dedupe);
    // Answered in the format the call came in (binary unless it is JSON).
    const format: RpcPayloadFormat = rpcPayloadFormat(payload);
    const answer = (msg: unknown) => {
      let out: Buffer;
      try {
        out = encodeNodePayload(msg, format);
      } catch (e) {
        out = encodeNodePayload(
          {
            ok: false,
            error: {
              code: "internal",
              message: `result could not be encoded: ${(e as Error).message}`,
            },
          },
          format,
        );
      }
      this.client.publish(
        responseTopic,
        out,
        { qos: 1, properties: { correlationData: Buffer.from(correlationData) } },
        (err) => {
          if (err) this.log("node_reply_not_published", { caller: callerId, error: err.message });
        },
      );
    };
    let op: string;
    let args: Record<string, unknown>;
    try {
      const v = decodeNodePayload(payload).value as Record<string, unknown> | null;
      if (!v || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array)
        throw new JsonPayloadError("call is not an object");
      if (typeof v.op !== "string" || !OP_NAME.test(v.op))
        throw new JsonPayloadError("call has no valid op");
      const a = v.args ?? {};
      if (!a || typeof a !== "object" || Array.isArray(a) || a instanceof Uint8Array)
        throw new JsonPayloadError("call args must be a JSON object");
      // The broker lets only node `from` (its user = client id) read its replies topic, so a
      // call naming another node than the replies topic it asks for is refused.
      if (v.from !== callerId)
        return answer({
          ok: false,
          error: {
            code: "unauthorised",
            message: `call names caller ${JSON.stringify(String(v.from ?? "none").slice(0, 64))} but asks for replies on ${callerId}'s topic`,
          },
        });
      op = v.op;
      args = a as Record<string, unknown>;
    } catch (e) {
      return answer({
        ok: false,
        error: {
          code: "bad_request",
          message:
            e instanceof JsonPayloadError || e instanceof RpcPayloadError
              ? e.message
              : "call could not be parsed",
        },
      });
    }
    const h = this.handler;
    if (!h)
      return answer({
        ok: false,
        error: { code: "internal", message: `node ${this.me} is not serving calls yet` },
      });
    Promise.resolve()
      .then(() => h(op, args, callerId))
      .then(
        (result) => answer({ ok: true, result: result ?? null }),
        (e: unknown) => {
          const err = (e ?? {}) as {
            code?: unknown;
            message?: unknown;
            node?: unknown;
            blame?: { party?: unknown };
            reason?: unknown;
          };
          answer({
            ok: false,
            error: {
              code: typeof err.code === "string" ? err.code : "internal",
              message:
                typeof err.message === "string"
                  ? err.message.slice(0, MAX_MESSAGE)
                  : "node operation failed",
              ...(typeof err.node === "string" ? { node: err.node } : {}),
              // The party this node's enclave blamed; only the coordinator knows which node that is.
              ...(Number.isInteger(err.blame?.party) ? { party: err.blame!.party as number } : {}),
              ...(isReason(err.reason) ? { reason: err.reason } : {}),
            },
          });
        },
      );
  }

  /**
   * Fails every call still waiting on `nodeId` (its presence went offline:
   * its Last Will, so it will never answer); returns how many.
   */
  failCallsTo(nodeId: string, error: () => Error): number {
    let n = 0;
    for (const [key, p] of [...this.pending])
      if (p.nodeId === nodeId) {
        n++;
        this.settle(key, (x) => x.reject(error()));
      }
    return n;
  }

  /** Fails every call still waiting (the bus is closing). */
  close(): void {
    this.closed = true;
    for (const key of [...this.pending.keys()])
      this.settle(key, (p) =>
        p.reject(new RemoteCallError("the bus closed before the node answered", "internal")),
      );
  }

  private settle(key: string, f: (p: Pending) => void): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    f(p);
  }

  private remember(k: string): void {
    this.recent.add(k);
    if (this.recent.size > RECENT_CALLS) {
      const oldest = this.recent.values().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }
}
