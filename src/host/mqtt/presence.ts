/**
 * Node presence: a retained "online" record per node, a retained Last Will
 * saying "offline", and a live view built from everyone's records. A node
 * whose enclave channel is down publishes "degraded": it is still reachable
 * (it answers look-ups from its database) but coordinators do not select it
 * for a ceremony.
 */
import type { MqttClient } from "mqtt";
import { parseJson } from "../../shared/wire/json-payload.ts";
import { nodeOf, presenceTopic } from "../../shared/wire/topics.ts";

/** What a live node can do: "online" takes part in ceremonies, "degraded" (its enclave is gone) only answers look-ups. */
export type LiveStatus = "online" | "degraded";
export type PresenceStatus = LiveStatus | "offline";

export interface LiveNode {
  nodeId: string;
  /** Absent means "online" (callers that build a LiveNode by hand). */
  status?: LiveStatus;
  since: number;
  pcr0?: string;
}

export interface PresenceEvent {
  nodeId: string;
  status: PresenceStatus;
  since?: number;
  pcr0?: string;
  version?: string;
}

const PRESENCE_LIMITS = { maxBytes: 4 << 10, maxDepth: 2 };

export function offlineRecord(nodeId: string): Buffer {
  return Buffer.from(JSON.stringify({ nodeId, status: "offline" }));
}

export function onlineRecord(
  nodeId: string,
  since: number,
  pcr0?: string,
  version?: string,
  status: LiveStatus = "online",
): Buffer {
  return Buffer.from(
    JSON.stringify({
      nodeId,
      status,
      since,
      pcr0: pcr0 ?? null,
      version: version ?? null,
    }),
  );
}

/** The Last Will the broker publishes when this node's connection dies without a clean disconnect. */
export function presenceWill(nodeId: string) {
  return {
    topic: presenceTopic(nodeId),
    payload: offlineRecord(nodeId),
    qos: 1 as const,
    retain: true,
  };
}

/**
 * A presence record from the broker, or null when it is malformed. The node
 * id inside must match the topic, so one record cannot speak for another node.
 * An empty retained payload (a cleared record) counts as offline.
 */
export function parsePresence(topic: string, payload: Uint8Array): PresenceEvent | null {
  const nodeId = nodeOf(topic, "presence");
  if (!nodeId) return null;
  if (payload.length === 0) return { nodeId, status: "offline" };
  let v: unknown;
  try {
    v = parseJson(payload, PRESENCE_LIMITS);
  } catch {
    return null;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (r.nodeId !== nodeId) return null;
  if (r.status === "offline") return { nodeId, status: "offline" };
  if (
    (r.status !== "online" && r.status !== "degraded") ||
    typeof r.since !== "number" ||
    !Number.isFinite(r.since)
  )
    return null;
  return {
    nodeId,
    status: r.status,
    since: r.since,
    ...(typeof r.pcr0 === "string" && r.pcr0.length <= 256 ? { pcr0: r.pcr0 } : {}),
    ...(typeof r.version === "string" && r.version.length <= 64 ? { version: r.version } : {}),
  };
}

export class PresenceView {
  private readonly live = new Map<string, LiveNode>();
  private readonly listeners = new Set<(e: PresenceEvent) => void>();

  constructor(private readonly onListenerError: (e: unknown) => void) {}

  apply(e: PresenceEvent): void {
    if (e.status !== "offline")
      this.live.set(e.nodeId, {
        nodeId: e.nodeId,
        status: e.status,
        since: e.since ?? Date.now(),
        ...(e.pcr0 ? { pcr0: e.pcr0 } : {}),
      });
    else this.live.delete(e.nodeId);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  nodes(): LiveNode[] {
    return [...this.live.values()].sort((a, b) =>
      a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0,
    );
  }

  subscribe(cb: (e: PresenceEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
}

/** Publishes this node's retained live record (on every connect, since a reconnect follows the Last Will). */
export function announceOnline(
  client: MqttClient,
  nodeId: string,
  since: number,
  pcr0?: string,
  version?: string,
  status: LiveStatus = "online",
): Promise<unknown> {
  return client.publishAsync(
    presenceTopic(nodeId),
    onlineRecord(nodeId, since, pcr0, version, status),
    { qos: 1, retain: true },
  );
}

export function announceOffline(client: MqttClient, nodeId: string): Promise<unknown> {
  return client.publishAsync(presenceTopic(nodeId), offlineRecord(nodeId), {
    qos: 1,
    retain: true,
  });
}
