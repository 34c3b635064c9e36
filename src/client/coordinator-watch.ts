/**
 * Watching the coordinator of each pending request: the coordinator names
 * itself in its progress messages, and the SDK subscribes to that node's
 * retained presence. Its Last Will (`status: "offline"`, published by the
 * broker when the coordinator's connection dies) ends every wait on it with
 * `coordinator_lost`, instead of the request's own deadline. One
 * subscription per coordinator node, shared by all requests it coordinates.
 */
import { nodeOf, presenceTopic } from "../shared/wire/topics.ts";

/** A presence record is a few hundred bytes; anything larger is ignored unread. */
const MAX_PRESENCE_BYTES = 4 << 10;

/**
 * Whether a presence payload on `topic` says its node is offline: an empty
 * (cleared) retained record, or `{nodeId: <the topic's node>, status: "offline"}`.
 * Anything else (online, degraded, malformed, speaking for another node) is not.
 */
export function presenceSaysOffline(topic: string, payload: Uint8Array): string | null {
  const node = nodeOf(topic, "presence");
  if (!node || payload.length > MAX_PRESENCE_BYTES) return null;
  if (payload.length === 0) return node;
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload)) as unknown;
    const r = v as { nodeId?: unknown; status?: unknown } | null;
    return r && typeof r === "object" && r.nodeId === node && r.status === "offline" ? node : null;
  } catch {
    return null;
  }
}

export interface Subscriber {
  subscribe(filter: string): Promise<void>;
  unsubscribe(filter: string): Promise<void>;
}

export class CoordinatorWatch {
  /** Per coordinator node: the pending requests' loss callbacks, by request key. */
  private readonly watching = new Map<string, Map<string, (node: string) => void>>();

  constructor(private readonly conn: Subscriber) {}

  /** Starts (or keeps) watching `node` for the request `key`; a second call for the same key and node is a no-op. */
  watch(key: string, node: string, onLost: (node: string) => void): void {
    let waiters = this.watching.get(node);
    if (!waiters) {
      waiters = new Map();
      this.watching.set(node, waiters);
      // A refused subscription leaves the request to its own deadline, as before.
      this.conn.subscribe(presenceTopic(node)).catch(() => {});
    }
    waiters.set(key, onLost);
  }

  /** Stops watching for `key` (its request settled); the last one out unsubscribes. */
  forget(key: string): void {
    for (const [node, waiters] of this.watching) {
      if (!waiters.delete(key) || waiters.size > 0) continue;
      this.watching.delete(node);
      this.conn.unsubscribe(presenceTopic(node)).catch(() => {});
    }
  }

  /** A message on a presence topic: when it says the node is offline, every request it coordinates is lost. Returns whether the topic was a presence topic. */
  onMessage(topic: string, payload: Uint8Array): boolean {
    if (!nodeOf(topic, "presence")) return false;
    const node = presenceSaysOffline(topic, payload);
    const waiters = node ? this.watching.get(node) : undefined;
    if (node && waiters) for (const lost of [...waiters.values()]) lost(node);
    return true;
  }
}
