/**
 * The coordinator's view of the cluster: which nodes are live (the bus's
 * presence records), a participant handle for each, and one-shot questions
 * to a node (typed by the node RPC table). This node answers its own
 * questions in process, through the same argument checks as a remote call.
 */
import {
  callNodeOp,
  dispatchNodeOp,
  type NodeOpArgs,
  type NodeOpHandlers,
  type NodeOpName,
  type NodeOpResult,
} from "../shared/wire/node-rpc.ts";
import type { Bus, LiveNode } from "./mqtt/bus.ts";
import type { NodeHost } from "./node-host.ts";
import type { Participant } from "./participant.ts";
import { nodeOpHandlers, RemoteParticipant } from "./remote-participant.ts";

export interface PeerDirectory {
  /** Node ids currently online, this node included. */
  liveNodes(): LiveNode[];
  /** A participant handle for `nodeId` (this node's NodeHost for itself). */
  participant(nodeId: string): Participant;
  /** Asks a node; resolves null when it does not answer in time (default ASK_TIMEOUT_MS) or answers with an error. */
  ask<K extends NodeOpName>(
    nodeId: string,
    op: K,
    args: NodeOpArgs<K>,
    opts?: { timeoutMs?: number },
  ): Promise<NodeOpResult<K> | null>;
}

/** Questions are small look-ups; a node that cannot answer one in this time is treated as not knowing. */
export const ASK_TIMEOUT_MS = 5_000;

export class BusPeerDirectory implements PeerDirectory {
  private readonly remote = new Map<string, Participant>();
  private readonly local: NodeOpHandlers;

  constructor(
    private readonly self: NodeHost,
    private readonly bus: Pick<Bus, "liveNodes" | "callNode">,
    private readonly opts: {
      phaseTimeoutMs: number;
      log?: (event: string, fields: Record<string, unknown>) => void;
    },
  ) {
    this.local = nodeOpHandlers(self);
  }

  liveNodes(): LiveNode[] {
    return this.bus.liveNodes();
  }

  participant(nodeId: string): Participant {
    if (nodeId === this.self.nodeId) return this.self;
    let p = this.remote.get(nodeId);
    if (!p)
      this.remote.set(
        nodeId,
        (p = new RemoteParticipant(nodeId, this.bus, this.opts.phaseTimeoutMs)),
      );
    return p;
  }

  async ask<K extends NodeOpName>(
    nodeId: string,
    op: K,
    args: NodeOpArgs<K>,
    opts: { timeoutMs?: number } = {},
  ): Promise<NodeOpResult<K> | null> {
    if (nodeId === this.self.nodeId) {
      // Answered after the round's calls to the other nodes are written out (mqtt.js writes on
      // the next tick): its look-ups would otherwise hold them back, and theirs is the longer path.
      await new Promise<void>((r) => setImmediate(r));
      return dispatchNodeOp(this.local, op, args);
    }
    try {
      return await callNodeOp(this.bus, nodeId, op, args, {
        timeoutMs: opts.timeoutMs ?? ASK_TIMEOUT_MS,
      });
    } catch (e) {
      this.opts.log?.("peer_unanswered", { peer: nodeId, op, error: (e as Error).message });
      return null;
    }
  }
}
