/**
 * What this node publishes as its presence status, from everything that can withdraw it: its
 * enclave channel (main.ts superviseEnclave) and its database (database-health.ts). "online"
 * only while nothing is wrong, "degraded" while anything is: coordinators then do not select it
 * (planning.ts), though it still answers look-ups. Each source sets or clears its own problem,
 * so a restored enclave does not bring a node with a locked database back, nor the reverse.
 */
import type { LiveStatus } from "./mqtt/presence.ts";

export type ConditionSource = "enclave" | "database";

export class NodeCondition {
  private readonly problems = new Map<ConditionSource, string>();

  constructor(
    /** Publishes a status (Bus.setStatus, which ignores a repeat of the current one). */
    private readonly publish: (status: LiveStatus) => Promise<void>,
    private readonly log: (event: string, fields: Record<string, unknown>) => void = () => {},
  ) {}

  get status(): LiveStatus {
    return this.problems.size === 0 ? "online" : "degraded";
  }

  /** What withdraws the node now, by source; empty when it is online. */
  get reasons(): Record<string, string> {
    return Object.fromEntries(this.problems);
  }

  /** `problem`: why `source` withdraws the node; null: it no longer does. */
  set(source: ConditionSource, problem: string | null): void {
    const before = this.status;
    if (problem === null) this.problems.delete(source);
    else this.problems.set(source, problem);
    const after = this.status;
    if (after === before) return;
    this.log("node_condition", { status: after, source, ...(problem ? { problem } : {}) });
    this.publish(after).catch((e: Error) =>
      this.log("presence_not_published", { error: e.message }),
    );
  }
}
