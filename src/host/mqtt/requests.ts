/**
 * Client requests taken from the shared subscription: each request reaches
 * exactly one node, which answers on the request's Response Topic with the
 * request's Correlation Data (progress messages, then exactly one final one).
 *
 * The final answer is offered again while the broker says nobody is subscribed
 * to its topic (PUBACK 0x10): after a broker restart without persistence the
 * client's subscription is back only once the client has reconnected, which may
 * be after this node has finished, and the broker drops what nobody is
 * subscribed to. Offered until the request's Message Expiry (the client's own
 * deadline), so the client gets its answer instead of waiting for that deadline.
 */
import type { IPublishPacket, MqttClient, Packet } from "mqtt";
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
  /** Final answers no subscriber took until the request expired (the client was gone). */
  unheardAnswers: number;
}

/** The SDK sends 16 bytes; anything far larger is not a correlation id. */
const MAX_CORRELATION = 256;
const MAX_MESSAGE = 1_000;
/** PUBACK reason code 0x10: the broker had no subscriber for the message, so it was dropped. */
const NO_MATCHING_SUBSCRIBERS = 16;
/** How long an unheard final answer is offered when the request carries no Message Expiry. */
const DEFAULT_OFFER_S = 120;
const MAX_OFFER_S = 600;
/** Waits between offers of an unheard final answer: doubling from the first to the last. */
const REOFFER_FIRST_MS = 200;
const REOFFER_MAX_MS = 2_000;

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
  readonly counters: RequestCounters = {
    droppedRequests: 0,
    badRequests: 0,
    failedAnswers: 0,
    unheardAnswers: 0,
  };
  private handler: ClientRequestHandler | null = null;
  /** Message ids the broker acknowledged with "no matching subscribers" (bounded). */
  private readonly unheard = new Set<number>();
  /** Pending re-offers of final answers, cleared by close(). */
  private readonly reoffers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;

  constructor(
    private readonly client: MqttClient,
    private readonly log: Log,
  ) {}

  setHandler(h: ClientRequestHandler): void {
    this.handler = h;
  }

  /** Every packet the broker sends on this connection (bus.ts): notes PUBACKs saying nobody was subscribed. */
  onPacket(p: Packet): void {
    if (p.cmd !== "puback" || p.reasonCode !== NO_MATCHING_SUBSCRIBERS) return;
    if (p.messageId === undefined) return;
    // Ids of other publishes (RPC, presence) are never taken out: keep the set bounded.
    if (this.unheard.size > 1024) this.unheard.clear();
    this.unheard.add(p.messageId);
  }

  /** Stops offering unheard answers again (the bus is closing). */
  close(): void {
    this.closed = true;
    for (const t of this.reoffers) clearTimeout(t);
    this.reoffers.clear();
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
    const expiryS = packet.properties?.messageExpiryInterval;
    const offerS = Math.min(
      typeof expiryS === "number" && expiryS > 0 ? expiryS : DEFAULT_OFFER_S,
      MAX_OFFER_S,
    );
    const reply = this.replyTo(
      responseTopic,
      Buffer.from(correlation),
      op,
      Date.now() + offerS * 1000,
    );
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

  /** `offerUntil`: when the request expires; an unheard final answer is offered again until then. */
  private replyTo(
    topic: string,
    correlationData: Buffer,
    op: string,
    offerUntil: number,
  ): RequestReply {
    let final = false;
    const send = (msg: unknown, isFinal: boolean) => {
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
      let offers = 0;
      const offer = () => {
        offers++;
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
          (err, sent) => {
            if (err) {
              this.counters.failedAnswers++;
              this.log("answer_not_published", { op, error: err.message });
              return;
            }
            // mqtt.js reports success for PUBACK 0x10 too; onPacket saw its reason code first.
            const id = sent?.messageId;
            const unheard = id !== undefined && this.unheard.delete(id);
            if (!unheard) {
              if (offers > 1) this.log("answer_delivered_late", { op, offers });
              return;
            }
            // Progress is advisory: a lost one is not offered again.
            if (!isFinal || this.closed) return;
            const wait = Math.min(REOFFER_FIRST_MS * 2 ** (offers - 1), REOFFER_MAX_MS);
            if (Date.now() + wait > offerUntil) {
              this.counters.unheardAnswers++;
              this.log("answer_unheard", { op, offers });
              return;
            }
            if (offers === 1) this.log("answer_unheard_offering_again", { op });
            const t = setTimeout(() => {
              this.reoffers.delete(t);
              offer();
            }, wait);
            t.unref?.();
            this.reoffers.add(t);
          },
        );
      };
      offer();
    };
    return {
      client: responseClientId(topic),
      progress: (p) => {
        if (!final) send({ progress: p }, false);
      },
      done: (result) => {
        if (final) return;
        final = true;
        send({ ok: true, result }, true);
      },
      fail: (error) => {
        if (final) return;
        final = true;
        send({ ok: false, error: errorResponse(error) }, true);
      },
    };
  }
}
