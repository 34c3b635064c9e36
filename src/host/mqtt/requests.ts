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
 * deadline) or for OFFER_WINDOW_S, whichever ends first, so the client gets its
 * answer instead of waiting for that deadline. Only answers of requests that
 * ran are offered again: a rejection (bad_request, rate_limited) costs the
 * sender nothing, so re-offering it would let a flood of malformed requests to
 * a topic nobody reads multiply the node's publishes. At most MAX_OFFERS
 * offers per answer and MAX_REOFFERING answers at once (the oldest dropped).
 * A broker that never sends PUBACK 0x10 (mochi v2.7.9) gets each answer once.
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

/** What the server itself answers with: `refuse` is a final failure for a request that never ran, sent once. */
type Reply = RequestReply & { refuse: RequestReply["fail"] };

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
  /** Unheard answers no longer offered because MAX_REOFFERING others were (the oldest is dropped). */
  droppedReoffers: number;
}

/** The SDK sends 16 bytes; anything far larger is not a correlation id. */
const MAX_CORRELATION = 256;
const MAX_MESSAGE = 1_000;
/** PUBACK reason code 0x10: the broker had no subscriber for the message, so it was dropped. */
const NO_MATCHING_SUBSCRIBERS = 16;
/**
 * How long an unheard final answer is offered at most, from its first offer
 * (also when the request carries no Message Expiry): a client back after a
 * broker restart has resubscribed well within it.
 */
const OFFER_WINDOW_S = 60;
/** Offers of one unheard final answer: the waits below reach OFFER_WINDOW_S in about 33. */
const MAX_OFFERS = 40;
/** Answers offered again at once: a node is not made to hold timers and payloads without bound. */
const MAX_REOFFERING = 256;
/** Waits between offers of an unheard final answer: doubling from the first to the last. */
const REOFFER_FIRST_MS = 200;
const REOFFER_MAX_MS = 2_000;
/** Refusals that cost their sender nothing: answered once, never offered again. */
const NOT_REOFFERED = new Set(["bad_request", "rate_limited"]);

/** The re-offer bounds; tests lower them, a node keeps the defaults. */
export interface ReofferLimits {
  /** Offers of one answer (the first included). */
  maxOffers: number;
  /** Answers being offered again at once; beyond it the oldest is dropped. */
  maxReoffering: number;
  /** The longest an answer is offered, whatever the request's Message Expiry. */
  offerWindowS: number;
}

/** One unheard final answer being offered again; in `reoffering` while it is. */
interface Reoffer {
  timer?: ReturnType<typeof setTimeout>;
  /** Dropped for a newer one, or the bus closed: offered no more. */
  stopped: boolean;
}

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
    droppedReoffers: 0,
  };
  private handler: ClientRequestHandler | null = null;
  /**
   * Message ids whose latest PUBACK said "no matching subscribers". Every
   * other PUBACK takes its id out, so an id mqtt.js reuses for an answer
   * never carries the verdict on an earlier publish (an RPC call, presence).
   * Bounded by the 16-bit id space.
   */
  private readonly unheard = new Set<number>();
  /** Answers being offered again, oldest first; stopped by close(). */
  private readonly reoffering = new Set<Reoffer>();
  private closed = false;
  private readonly limits: ReofferLimits;

  constructor(
    private readonly client: MqttClient,
    private readonly log: Log,
    limits: Partial<ReofferLimits> = {},
  ) {
    this.limits = {
      maxOffers: MAX_OFFERS,
      maxReoffering: MAX_REOFFERING,
      offerWindowS: OFFER_WINDOW_S,
      ...limits,
    };
  }

  setHandler(h: ClientRequestHandler): void {
    this.handler = h;
  }

  /** Every packet the broker sends on this connection (bus.ts): notes PUBACKs saying nobody was subscribed. */
  onPacket(p: Packet): void {
    if (p.cmd !== "puback" || p.messageId === undefined) return;
    if (p.reasonCode === NO_MATCHING_SUBSCRIBERS) this.unheard.add(p.messageId);
    else this.unheard.delete(p.messageId);
  }

  /** Stops offering unheard answers again (the bus is closing). */
  close(): void {
    this.closed = true;
    for (const r of this.reoffering) this.stop(r);
  }

  private stop(r: Reoffer): void {
    r.stopped = true;
    if (r.timer !== undefined) clearTimeout(r.timer);
    this.reoffering.delete(r);
  }

  /** Starts offering `r` again, dropping the oldest answer offered when MAX_REOFFERING are. */
  private startReoffer(r: Reoffer, op: string): void {
    while (this.reoffering.size > 0 && this.reoffering.size >= this.limits.maxReoffering) {
      const oldest = this.reoffering.values().next().value as Reoffer;
      this.stop(oldest);
      const n = ++this.counters.droppedReoffers;
      if (isPowerOfTwo(n)) this.log("answer_reoffer_dropped", { op, dropped: n });
    }
    this.reoffering.add(r);
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
    const reply = this.replyTo(
      responseTopic,
      Buffer.from(correlation),
      op,
      typeof expiryS === "number" && expiryS > 0 ? Date.now() + expiryS * 1000 : Infinity,
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
    // Nothing ran: answered once, like a rejection.
    if (!h)
      return reply.refuse({
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

  private reject(reply: Reply, message: string): void {
    this.counters.badRequests++;
    reply.refuse({ code: "bad_request", message, node: null });
  }

  /**
   * `expiresAt`: when the request expires (Infinity: no Message Expiry). An
   * unheard final answer is offered again until then, or for offerWindowS
   * from its first offer, whichever ends first.
   */
  private replyTo(topic: string, correlationData: Buffer, op: string, expiresAt: number): Reply {
    let final = false;
    /** `reoffer`: a final answer offered again while unheard; progress and refusals are not. */
    const send = (msg: unknown, reoffer: boolean) => {
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
      const offerUntil = Math.min(expiresAt, Date.now() + this.limits.offerWindowS * 1000);
      const state: Reoffer = { stopped: false };
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
              this.stop(state);
              return;
            }
            // mqtt.js reports success for PUBACK 0x10 too; onPacket saw its reason code first.
            const id = sent?.messageId;
            const unheard = id !== undefined && this.unheard.delete(id);
            if (!unheard) {
              if (offers > 1) this.log("answer_delivered_late", { op, offers });
              this.stop(state);
              return;
            }
            if (!reoffer || this.closed || state.stopped) return;
            const wait = Math.min(REOFFER_FIRST_MS * 2 ** (offers - 1), REOFFER_MAX_MS);
            if (offers >= this.limits.maxOffers || Date.now() + wait > offerUntil) {
              this.counters.unheardAnswers++;
              this.log("answer_unheard", { op, offers });
              this.stop(state);
              return;
            }
            if (offers === 1) {
              this.startReoffer(state, op);
              this.log("answer_unheard_offering_again", { op });
            }
            state.timer = setTimeout(() => {
              state.timer = undefined;
              offer();
            }, wait);
            state.timer.unref?.();
          },
        );
      };
      offer();
    };
    const fail = (error: Parameters<RequestReply["fail"]>[0], reoffer: boolean) => {
      if (final) return;
      final = true;
      const e = errorResponse(error);
      send({ ok: false, error: e }, reoffer && !NOT_REOFFERED.has(e.code));
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
      fail: (error) => fail(error, true),
      refuse: (error) => fail(error, false),
    };
  }
}
