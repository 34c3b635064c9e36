/**
 * A signing node's connection to the MQTT broker (docs/mqtt-api.md): client
 * requests from the shared subscription, node-to-node RPC, and presence. One
 * MQTT 5 connection carries all three; this module wires them to it and keeps
 * them working across reconnects.
 */
import type { IPublishPacket, MqttClient } from "mqtt";
import { openConnection } from "./connect.ts";
import { NodeRpc, RemoteCallError, type NodeCallHandler, type RpcCounters } from "./node-rpc.ts";
import {
  announceOffline,
  announceOnline,
  parsePresence,
  PresenceView,
  presenceWill,
  type LiveNode,
  type LiveStatus,
  type PresenceEvent,
} from "./presence.ts";
import {
  isPowerOfTwo,
  RequestServer,
  type ClientRequestHandler,
  type Log,
  type RequestCounters,
} from "./requests.ts";
import {
  assertNodeId,
  inboxTopic,
  nodeOf,
  PRESENCE_FILTER,
  repliesTopic,
  REQUESTS_FILTER,
  REQUESTS_PREFIX,
} from "../../shared/wire/topics.ts";
import { RPC_LIMITS } from "../../shared/wire/json-payload.ts";
import type { NodeCaller } from "../../shared/wire/node-rpc.ts";

export { RemoteCallError, type NodeCallHandler } from "./node-rpc.ts";
export type { ClientRequestHandler, RequestReply } from "./requests.ts";
export type { LiveNode, LiveStatus, PresenceEvent } from "./presence.ts";

export interface BusOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  clientId: string;
  /** This node's id in topics and presence; defaults to clientId. */
  nodeId?: string;
  username?: string;
  password?: string;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Announced in presence so peers and clients can see which enclave image runs here. */
  pcr0?: string;
  version?: string;
  connectTimeoutMs?: number;
  /** Delay between reconnection attempts; 0 disables reconnecting (tests). Default 1 s. */
  reconnectPeriodMs?: number;
  keepaliveSec?: number;
  /** Default deadline of callNode. */
  callTimeoutMs?: number;
  log?: Log;
}

export type BusStats = RequestCounters &
  RpcCounters & {
    /** Presence records that were malformed or spoke for another node. */
    ignoredPresence: number;
  };

/** `callNode` (NodeCaller) calls `op` on a node; rejects with RemoteCallError (code from the remote, or deadline_exceeded). */
export interface Bus extends NodeCaller {
  readonly nodeId: string;
  /** The underlying connection, for diagnostics and tests; do not publish on it. */
  readonly client: MqttClient;
  /** Starts taking client requests; resolves once the shared subscription is granted. */
  serveClientRequests(handler: ClientRequestHandler): Promise<void>;
  /** Starts serving other nodes' calls; resolves once the inbox subscription is granted. */
  serveNodeCalls(handler: NodeCallHandler): Promise<void>;
  /** Nodes whose latest presence record says online or degraded, this node included once connected. */
  liveNodes(): LiveNode[];
  /**
   * Republishes this node's retained presence with `status`: "degraded" while
   * its enclave is unreachable or its database cannot be written (coordinators
   * then do not select it), "online" once it is back. Kept across reconnects.
   * A degraded node also leaves the shared client-request subscription (the
   * broker hands requests to the other nodes) and rejoins it before it
   * announces online: it would fail each request at its first write.
   */
  setStatus(status: LiveStatus): Promise<void>;
  /** Calls `cb` on every presence record; returns a function that stops it. */
  onPresence(cb: (e: PresenceEvent) => void): () => void;
  stats(): BusStats;
  /** Publishes this node's offline record, fails calls still waiting, and disconnects cleanly. */
  close(): Promise<void>;
}

/** Subscribes and checks the grant: a refused subscription is reported, never silently ignored. */
async function subscribe(client: MqttClient, filter: string): Promise<void> {
  const granted = await client.subscribeAsync(filter, { qos: 1 });
  const bad = granted.find((g) => g.qos !== 1 && g.qos !== 0);
  if (bad) throw new Error(`broker refused the subscription to ${filter} (reason code ${bad.qos})`);
}

export async function connectBus(opts: BusOptions): Promise<Bus> {
  const nodeId = opts.nodeId ?? opts.clientId;
  assertNodeId(nodeId);
  const log: Log = opts.log ?? (() => {});
  const client = await openConnection({
    url: opts.url,
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    tls: opts.tls,
    will: presenceWill(nodeId),
    maxPacketBytes: RPC_LIMITS.maxBytes + (64 << 10),
    connectTimeoutMs: opts.connectTimeoutMs,
    reconnectPeriodMs: opts.reconnectPeriodMs,
    keepaliveSec: opts.keepaliveSec,
  });

  const presence = new PresenceView((e) =>
    log("presence_listener_failed", { error: (e as Error)?.message }),
  );
  const requests = new RequestServer(client, log);
  const rpc = new NodeRpc(client, nodeId, log, opts.callTimeoutMs);
  const inbox = inboxTopic(nodeId);
  const replies = repliesTopic(nodeId);
  let closing = false;
  let ignoredPresence = 0;
  let status: LiveStatus = "online";
  let since = Date.now();
  /** Peers whose latest presence record is offline: calls to them fail at once. */
  const gone = new Set<string>();
  const lostError = (peer: string, what: string) =>
    new RemoteCallError(`node ${peer} ${what}`, "ceremony_failed", { node: peer });

  // A peer whose presence went offline (its Last Will: the process or its
  // connection died) will never answer: its pending calls fail now, not at
  // their deadline, so a coordinator aborts the ceremony at once.
  presence.subscribe((e) => {
    if (e.nodeId === nodeId) return;
    if (e.status !== "offline") return void gone.delete(e.nodeId);
    gone.add(e.nodeId);
    const failed = rpc.failCallsTo(e.nodeId, () =>
      lostError(e.nodeId, "went offline during the call"),
    );
    if (failed > 0) log("peer_lost", { peer: e.nodeId, failedCalls: failed });
  });

  // Before mqtt.js handles a PUBACK: its reason code says whether anyone took an answer.
  client.on("packetreceive", (p) => requests.onPacket(p));
  client.on("message", (topic: string, payload: Buffer, packet: IPublishPacket) => {
    if (topic === replies) return rpc.onReply(payload, packet);
    if (topic === inbox) return rpc.onCall(payload, packet);
    if (topic.startsWith(REQUESTS_PREFIX)) return requests.onMessage(topic, payload, packet);
    if (nodeOf(topic, "presence")) {
      const e = parsePresence(topic, payload);
      if (e) return presence.apply(e);
      const n = ++ignoredPresence;
      if (isPowerOfTwo(n)) log("presence_ignored", { topic, bytes: payload.length, ignored: n });
    }
  });
  // Without a listener an 'error' event would crash the process; mqtt.js reconnects on its own.
  client.on("error", (e) => log("mqtt_error", { error: e.message }));
  client.on("offline", () => {
    if (!closing) log("mqtt_offline", {});
  });

  const online = async () => {
    // Counted as live at once: our own retained record may arrive after callers ask.
    presence.apply({
      nodeId,
      status,
      since,
      ...(opts.pcr0 ? { pcr0: opts.pcr0 } : {}),
      ...(opts.version ? { version: opts.version } : {}),
    });
    await announceOnline(client, nodeId, since, opts.pcr0, opts.version, status);
  };
  // mqtt.js restores subscriptions after a reconnect, but the broker has
  // meanwhile published our Last Will, so presence must be announced again.
  client.on("connect", () => {
    if (closing) return;
    log("mqtt_connected", {});
    online().catch((e: Error) => log("presence_not_published", { error: e.message }));
  });

  try {
    await subscribe(client, replies);
    await subscribe(client, PRESENCE_FILTER);
    await online();
  } catch (e) {
    client.end(true);
    throw e;
  }

  const serve = (filter: string, what: string) => {
    const p = subscribe(client, filter);
    // Callers may not await this; a refused subscription is then at least logged.
    p.catch((e: Error) => log("subscribe_failed", { what, error: e.message }));
    return p;
  };
  /** Whether serveClientRequests was called: the subscription is held while online only. */
  let takingRequests = false;
  /** Joins or leaves the shared request subscription to match `status` (setStatus says why). */
  const matchRequestsToStatus = async () => {
    if (!takingRequests || closing) return;
    if (status === "online") {
      // A refused subscription is logged by serve (subscribe_failed); never an unhandled rejection.
      await serve(REQUESTS_FILTER, "client requests").then(
        () => log("client_requests_resumed", {}),
        () => {},
      );
    } else {
      try {
        await client.unsubscribeAsync(REQUESTS_FILTER);
        log("client_requests_paused", { status });
      } catch (e) {
        log("unsubscribe_failed", { what: "client requests", error: (e as Error).message });
      }
    }
  };

  return {
    nodeId,
    client,
    serveClientRequests(handler) {
      requests.setHandler(handler);
      takingRequests = true;
      // A node degraded before it serves joins once it is online (matchRequestsToStatus).
      return status === "online" ? serve(REQUESTS_FILTER, "client requests") : Promise.resolve();
    },
    serveNodeCalls(handler) {
      rpc.setHandler(handler);
      return serve(inbox, "node calls");
    },
    callNode: (id, op, args, o) =>
      gone.has(id)
        ? Promise.reject(lostError(id, "is offline (its presence says so)"))
        : rpc.callNode(id, op, args, o),
    liveNodes: () => presence.nodes(),
    async setStatus(s) {
      if (closing || s === status) return;
      status = s;
      since = Date.now();
      log("presence_status", { status: s });
      // Leave the request subscription before announcing degraded, and join it before announcing
      // online too: a client that sees "online" may publish at once, and a request published while
      // no node holds the shared subscription is dropped by the broker.
      // Not awaited while disconnected: mqtt.js sends it on reconnect, presence must not wait.
      if (client.connected) await matchRequestsToStatus();
      else void matchRequestsToStatus();
      if (client.connected) await online();
      else presence.apply({ nodeId, status, since });
    },
    onPresence: (cb) => presence.subscribe(cb),
    stats: () => ({ ...requests.counters, ...rpc.counters, ignoredPresence }),
    async close() {
      if (closing) return;
      closing = true;
      rpc.close();
      requests.close();
      if (client.connected) {
        // Bounded: a broker that stopped answering must not hold up shutdown.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const gone = new Promise((r) => (timer = setTimeout(r, 2_000)));
        await Promise.race([announceOffline(client, nodeId).catch(() => {}), gone]);
        clearTimeout(timer);
      }
      presence.apply({ nodeId, status: "offline" });
      await new Promise<void>((resolve) => client.end(!client.connected, {}, () => resolve()));
    },
  };
}
