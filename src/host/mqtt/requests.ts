/**
 * Client requests taken from the shared subscription: each request reaches
 * exactly one node, which answers on the request's Response Topic with the
 * request's Correlation Data (progress messages, then exactly one final one).
 */
import type { IPublishPacket, MqttClient } from "mqtt";
import { JsonPayloadError, parseJson, REQUEST_LIMITS } from "../../shared/wire/json-payload.ts";
import {
  isClientResponseTopic,
  isValidOp,
  requestOp,
  responseClientId,
} from "../../shared/wire/topics.ts";
import { isErrorCode, type ErrorCode } from "../../shared/wire/errors.ts";
import { ERROR_CODE, isNodeId } from "../../shared/wire/patterns.ts";

export interface RequestReply {
  /**
   * The user level of the request's Response Topic (responseClientId): the broker user the answer
   * goes to, since the broker binds client id to username and lets only that user read the topic.
   * Not who published the request (MQTT does not say): docs/mqtt-api.md "Access control".
   */
  readonly client?: string;
  progress(p: { stage: string; phase?: number; of?: number; coordinator?: string }): void;
  done(result: unknown): void;
  fail(error: { code: string; message: string; node?: string | null; reason?: string }): void;
}

export type ClientRequestHandler = (op: string, body: unknown, reply: RequestReply) => void;

export interface RequestCounters {
  /** Requests without a usable Response Topic or Correlation Data: nobody to answer. */
  droppedRequests: number;
  /** Requests answered with bad_request before reaching the handler. */
  badRequests: number;
  /** Answers the broker did not take (publish failed). */
  failedAnswers: number;
}

/** The SDK sends 16 bytes; anything far larger is not a correlation id. */
const MAX_CORRELATION = 256;
const MAX_MESSAGE = 1_000;

export type Log = (event: string, fields: Record<string, unknown>) => void;

/** For logging the 1st, 2nd, 4th, 8th... occurrence of something a peer can repeat at will. */
export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * The `error` of a final failure answer (docs/mqtt-api.md): `{code, message,
 * node}`, with `code` one of the contract's and `node` the blamed node id or
 * null. This is the last gate before the client, so a code outside the
 * contract is answered as `internal` (keeping the original in the sentence)
 * and a malformed node id as null.
 */
export function errorResponse(error: {
  code: string;
  message: string;
  node?: string | null;
  reason?: string;
}): {
  code: ErrorCode;
  message: string;
  node: string | null;
  reason?: string;
} {
  const sentence = typeof error.message === "string" ? error.message : "request failed";
  const code = isErrorCode(error.code) ? error.code : "internal";
  const message = (
    code === error.code ? sentence : `${String(error.code).slice(0, 64)}: ${sentence}`
  ).slice(0, MAX_MESSAGE);
  return {
    code,
    message,
    node: isNodeId(error.node) ? error.node : null,
    // An approval refusal's reason (approval.ts APPROVAL_REFUSALS), when a code-shaped one came with it.
    ...(typeof error.reason === "string" && ERROR_CODE.test(error.reason)
      ? { reason: error.reason }
      : {}),
  };
}

export class RequestServer {
  readonly counters: RequestCounters = { droppedRequests: 0, badRequests: 0, failedAnswers: 0 };
  private handler: ClientRequestHandler | null = null;

  constructor(
    private readonly client: MqttClient,
    private readonly log: Log,
  ) {}

  setHandler(h: ClientRequestHandler): void {
    this.handler = h;
  }

  /** Handles one message from the shared subscription. Never throws. */
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const op = requestOp(topic);
    const responseTopic = packet.properties?.responseTopic;
    const correlation = packet.properties?.correlationData;
    if (
      op === null ||
      !responseTopic ||
      !isClientResponseTopic(responseTopic) ||
      !correlation ||
      correlation.length === 0 ||
      correlation.length > MAX_CORRELATION
    ) {
      const n = ++this.counters.droppedRequests;
      // Anyone allowed to publish requests can cause these: log sparsely, count always.
      if (isPowerOfTwo(n))
        this.log("request_dropped", {
          reason: "no usable response topic or correlation data",
          bytes: payload.length,
          dropped: n,
        });
      return;
    }
    const reply = this.replyTo(responseTopic, Buffer.from(correlation), op);
    if (!isValidOp(op)) return this.reject(reply, "the operation in the topic is not a valid name");
    let body: unknown;
    try {
      body = parseJson(payload, REQUEST_LIMITS);
    } catch (e) {
      return this.reject(
        reply,
        e instanceof JsonPayloadError ? e.message : "payload could not be parsed",
      );
    }
    const h = this.handler;
    if (!h)
      return reply.fail({
        code: "internal",
        message: "this node is not serving requests yet",
        node: null,
      });
    try {
      h(op, body, reply);
    } catch (e) {
      reply.fail({
        code: "internal",
        message: (e as Error).message ?? "request handler failed",
        node: null,
      });
    }
  }

  private reject(reply: RequestReply, message: string): void {
    this.counters.badRequests++;
    reply.fail({ code: "bad_request", message, node: null });
  }

  private replyTo(topic: string, correlationData: Buffer, op: string): RequestReply {
    let final = false;
    const send = (msg: unknown) => {
      let payload: string;
      try {
        payload = JSON.stringify(msg);
      } catch (e) {
        // A result that cannot be serialised still owes the client one final answer.
        payload = JSON.stringify({
          ok: false,
          error: {
            code: "internal",
            message: `result could not be encoded: ${(e as Error).message}`,
            node: null,
          },
        });
      }
      this.client.publish(
        topic,
        payload,
        {
          qos: 1,
          properties: {
            correlationData,
            payloadFormatIndicator: true,
            contentType: "application/json",
          },
        },
        (err) => {
          if (!err) return;
          this.counters.failedAnswers++;
          this.log("answer_not_published", { op, error: err.message });
        },
      );
    };
    return {
      client: responseClientId(topic),
      progress: (p) => {
        if (!final) send({ progress: p });
      },
      done: (result) => {
        if (final) return;
        final = true;
        send({ ok: true, result });
      },
      fail: (error) => {
        if (final) return;
        final = true;
        send({ ok: false, error: errorResponse(error) });
      },
    };
  }
}
