/**
 * What a node exports on its Prometheus endpoint (health-server.ts serves it). One `Registry`
 * per node, never prom-client's global default, so several nodes in one process (tests, the
 * in-process harness) keep their series apart; every series carries the label `node`.
 *
 * prom-client: the Prometheus client for Node.js that Prometheus itself links to, with registries,
 * histograms and scrape-time collect callbacks and no native code (runs under Bun as under Node).
 *
 * Label values come only from fixed lists (ceremony kinds, phases, contract error codes, approval
 * refusals, frame names, topic classes) or from node ids the coordinator itself chose, so no
 * client or peer can create series. Nothing here is secret: counts, durations and states only.
 *
 * Where the numbers come from: the coordinator (coordinator.ts `onPhase`, request-handler.ts
 * `ceremonyEnded`, only on the node that coordinated), the enclave channel (enclave-client.ts
 * `onCall`), the MQTT client's packet events, and, at each scrape, the host's own state and its
 * enclave's HEALTH counters (src/shared/wire/enclave-counters.ts).
 */
import type { IPublishPacket, MqttClient, Packet } from "mqtt";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { APPROVAL_REFUSALS } from "../shared/wire/approval.ts";
import {
  COUNTED_KINDS,
  ENCLAVE_COUNT_FIELDS,
  ENCLAVE_GAUGE_FIELDS,
  readEnclaveCounters,
  type EnclaveCounters,
  type EnclaveField,
} from "../shared/wire/enclave-counters.ts";
import { contractCode } from "../shared/wire/errors.ts";
import { FrameType, frameTypeName, type RequestType } from "../shared/wire/frame.ts";
import { CLIENT_OPS, REQUESTS_PREFIX, RESPONSES_PREFIX, ROOT } from "../shared/wire/topics.ts";
import type { HealthReply } from "../shared/wire/enclave-ops.ts";

/** Phase latencies: a signature's phases take milliseconds, a DKG's seconds, a stuck one its deadline. */
const PHASE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Enclave round trips: HEALTH in microseconds, a KMS-backed LOAD_SHARE or SEAL_SHARE in tens of ms. */
const ENCLAVE_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];
/** How long a scrape waits for the enclave's HEALTH; the rest of the scrape does not wait for it. */
const ENCLAVE_SCRAPE_TIMEOUT_MS = 2_000;

/** What the metrics need of the enclave channel (EnclaveClient). */
export interface ObservedEnclave {
  readonly available: boolean;
  status(): { reconnects: number };
  health(): Promise<HealthReply>;
  onCall: ((type: RequestType, ms: number, error?: unknown) => void) | null;
}

const ENCLAVE_METRIC: Record<EnclaveField, [string, string]> = {
  loadedWallets: ["tss_enclave_wallets_loaded", "Wallet shares loaded in the enclave now"],
  openSessions: ["tss_enclave_sessions_open", "Ceremony sessions open in the enclave now"],
  shareBudgetBytes: ["tss_enclave_share_budget_bytes", "The enclave's memory budget for shares"],
  shareBytesUsed: ["tss_enclave_share_bytes_used", "Bytes charged for the shares it holds"],
  sharesPinned: ["tss_enclave_shares_pinned", "Shares an open ceremony holds (never evicted)"],
  wasmMemoryBytes: ["tss_enclave_wasm_memory_bytes", "The DKLs23 wasm instance's linear memory"],
  shareHits: ["tss_enclave_share_cache_hits", "Starts that found their share loaded, since start"],
  shareMisses: ["tss_enclave_share_cache_misses", "Starts whose share was evicted, since start"],
  shareEvictions: [
    "tss_enclave_share_cache_evictions",
    "Shares evicted, since the enclave started",
  ],
  shareLoadsRefused: ["tss_enclave_share_loads_refused", "Loads refused capacity_exceeded"],
  ceremoniesAborted: ["tss_enclave_ceremonies_aborted", "Sessions dropped at the host's abort"],
};

/** A topic's class, for the MQTT counters' `topic` label. */
export function topicClass(topic: string | undefined): string {
  if (!topic) return "other";
  if (topic.startsWith(REQUESTS_PREFIX)) return "request";
  if (topic.startsWith(RESPONSES_PREFIX)) return "response";
  if (topic.startsWith(`${ROOT}/nodes/`)) {
    if (topic.endsWith("/inbox")) return "node_call";
    if (topic.endsWith("/replies")) return "node_reply";
    if (topic.endsWith("/presence")) return "presence";
  }
  return "other";
}

const KNOWN_OPS = new Set<string>(CLIENT_OPS);
const REFUSALS = new Set<string>(APPROVAL_REFUSALS);
const PHASE_NAMES = ["attest", "1", "2", "3", "4"];

export class HostMetrics {
  readonly registry = new Registry();
  private readonly ceremonies: Counter<"kind" | "outcome">;
  private readonly aborts: Counter<"kind" | "reason" | "blamed">;
  private readonly phases: Histogram<"kind" | "phase" | "outcome">;
  private readonly refusals: Counter<"reason">;
  private readonly requests: Counter<"op">;
  private readonly inFlight: Gauge;
  private readonly enclaveCalls: Histogram<"op" | "outcome">;
  private readonly published: Counter<"topic">;
  private readonly received: Counter<"topic">;
  private readonly reconnects: Counter;
  private enclave: ObservedEnclave | null = null;
  private snapshot: { at: number; counters: Promise<EnclaveCounters | null> } | null = null;

  constructor(nodeId: string) {
    const r = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    this.ceremonies = new Counter({
      name: "tss_ceremonies_total",
      help: "Ceremonies this node coordinated, by kind and outcome (succeeded or failed)",
      labelNames: ["kind", "outcome"],
      registers: r,
    });
    this.aborts = new Counter({
      name: "tss_ceremony_aborts_total",
      help: "Coordinated ceremonies that failed, by kind, reason (contract error code) and blamed node",
      labelNames: ["kind", "reason", "blamed"],
      registers: r,
    });
    this.phases = new Histogram({
      name: "tss_ceremony_phase_seconds",
      help: "Time for every participant to answer one phase (attest = the attestation exchange)",
      labelNames: ["kind", "phase", "outcome"],
      buckets: PHASE_BUCKETS,
      registers: r,
    });
    this.refusals = new Counter({
      name: "tss_approvals_refused_total",
      help: "Ceremony starts and retirements this node's enclave refused for their approvals, by reason",
      labelNames: ["reason"],
      registers: r,
    });
    this.requests = new Counter({
      name: "tss_client_requests_total",
      help: "Client requests this node took from the shared subscription, by operation",
      labelNames: ["op"],
      registers: r,
    });
    this.inFlight = new Gauge({
      name: "tss_client_requests_in_flight",
      help: "Client requests this node has taken and not yet answered",
      registers: r,
    });
    this.enclaveCalls = new Histogram({
      name: "tss_enclave_request_seconds",
      help: "Round trip of each host-to-enclave call over the channel, by operation and outcome",
      labelNames: ["op", "outcome"],
      buckets: ENCLAVE_BUCKETS,
      registers: r,
    });
    this.published = new Counter({
      name: "tss_mqtt_published_total",
      help: "MQTT PUBLISH packets this node sent, by topic class",
      labelNames: ["topic"],
      registers: r,
    });
    this.received = new Counter({
      name: "tss_mqtt_received_total",
      help: "MQTT PUBLISH packets this node received, by topic class",
      labelNames: ["topic"],
      registers: r,
    });
    this.reconnects = new Counter({
      name: "tss_mqtt_reconnects_total",
      help: "Times the broker connection came back after it was lost",
      registers: r,
    });
    for (const kind of COUNTED_KINDS)
      for (const outcome of ["succeeded", "failed"]) this.ceremonies.labels(kind, outcome).inc(0);
  }

  // --- hooks (one call each at the hook site) ---

  /** A coordinated phase ended (coordinator.ts onPhase). */
  readonly phaseObserved = (kind: string, phase: number, ms: number, ok: boolean): void => {
    this.phases.labels(kind, PHASE_NAMES[phase] ?? "other", ok ? "ok" : "failed").observe(ms / 1e3);
  };

  /** A coordinated ceremony ended: `error` absent when it succeeded (request-handler.ts). */
  ceremonyEnded(kind: string, error?: unknown): void {
    this.ceremonies.labels(kind, error === undefined ? "succeeded" : "failed").inc();
    if (error === undefined) return;
    const e = error as { code?: unknown; blame?: { node?: unknown } };
    const blamed = typeof e.blame?.node === "string" ? e.blame.node : "none";
    this.aborts.labels(kind, contractCode(e.code), blamed).inc();
  }

  /** A client request was taken; call the returned function once it is answered. */
  requestTaken(op: string): () => void {
    this.requests.labels(KNOWN_OPS.has(op) ? op : "other").inc();
    this.inFlight.inc();
    let done = false;
    return () => {
      if (!done) this.inFlight.dec();
      done = true;
    };
  }

  // --- sources observed from outside ---

  /** The enclave channel: each call's round trip, approval refusals, and its counters at scrape. */
  observeEnclave(enclave: ObservedEnclave): void {
    this.enclave = enclave;
    enclave.onCall = (type, ms, error) => {
      const outcome =
        error === undefined ? "ok" : contractCode((error as { code?: unknown })?.code);
      this.enclaveCalls.labels(frameTypeName(type), outcome).observe(ms / 1e3);
      const reason = (error as { reason?: unknown } | undefined)?.reason;
      if (
        typeof reason === "string" &&
        (type === FrameType.CEREMONY_START || type === FrameType.RETIRE_WALLET)
      )
        this.refusals.labels(REFUSALS.has(reason) ? reason : "other").inc();
    };
    const r = [this.registry];
    new Gauge({
      name: "tss_enclave_channel_up",
      help: "1 while the channel to the enclave is up, 0 from its loss until a redial answers",
      registers: r,
      collect() {
        this.set(enclave.available ? 1 : 0);
      },
    });
    new Gauge({
      name: "tss_enclave_channel_restorations",
      help: "Times the enclave channel came back after a loss, since the host started",
      registers: r,
      collect() {
        this.set(enclave.status().reconnects);
      },
    });
    const snapshot = () => this.enclaveCounters();
    new Gauge({
      name: "tss_enclave_up",
      help: "1 when the enclave answered HEALTH at this scrape",
      registers: r,
      async collect() {
        this.set((await snapshot()) === null ? 0 : 1);
      },
    });
    for (const field of [...ENCLAVE_GAUGE_FIELDS, ...ENCLAVE_COUNT_FIELDS]) {
      const [name, help] = ENCLAVE_METRIC[field];
      new Gauge({
        name,
        help: `${help} (the enclave's HEALTH reply; 0 when it did not answer: see tss_enclave_up)`,
        registers: r,
        async collect() {
          const v = (await snapshot())?.fields[field];
          this.reset();
          if (v !== undefined) this.set(v);
        },
      });
    }
    for (const [what, pick] of [
      ["finished", (c: EnclaveCounters) => c.finished],
      ["failed", (c: EnclaveCounters) => c.failed],
    ] as const)
      new Gauge({
        name: `tss_enclave_ceremonies_${what}`,
        help: `Sessions the enclave ${what === "finished" ? "completed" : "failed or let expire"}, by kind, since it started`,
        labelNames: ["kind"],
        registers: r,
        async collect() {
          const c = await snapshot();
          this.reset();
          if (c) for (const [kind, v] of Object.entries(pick(c))) this.labels(kind).set(v);
        },
      });
  }

  /** The broker connection: state, reconnects, and PUBLISH packets each way. */
  observeMqtt(client: MqttClient): void {
    client.on("packetsend", (p: Packet) => {
      if (p.cmd === "publish") this.published.labels(topicClass((p as IPublishPacket).topic)).inc();
    });
    client.on("packetreceive", (p: Packet) => {
      if (p.cmd === "publish") this.received.labels(topicClass((p as IPublishPacket).topic)).inc();
    });
    // Observed once connected: every later connect is a reconnection.
    client.on("connect", () => this.reconnects.inc());
    new Gauge({
      name: "tss_mqtt_connected",
      help: "1 while the broker connection is up",
      registers: [this.registry],
      collect() {
        this.set(client.connected ? 1 : 0);
      },
    });
  }

  /** The host's ceremony slots (NodeHost.ceremonies): every ceremony it takes part in now. */
  observeSessions(open: () => number): void {
    new Gauge({
      name: "tss_ceremony_sessions_open",
      help: "Ceremonies this node takes part in now, as coordinator's participant or for itself",
      registers: [this.registry],
      collect() {
        this.set(open());
      },
    });
  }

  /** The Prometheus content type of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** One scrape: the enclave is asked afresh (once, however many gauges read its counters). */
  metrics(): Promise<string> {
    this.snapshot = null;
    return this.registry.metrics();
  }

  /** The enclave's HEALTH counters, one call per scrape however many gauges ask; null: no answer. */
  private enclaveCounters(): Promise<EnclaveCounters | null> {
    const now = Date.now();
    if (this.snapshot && now - this.snapshot.at < 500) return this.snapshot.counters;
    const enclave = this.enclave;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const counters =
      enclave === null || !enclave.available
        ? Promise.resolve(null)
        : Promise.race([
            enclave.health().then(readEnclaveCounters),
            new Promise<null>(
              (r) => (timer = setTimeout(() => r(null), ENCLAVE_SCRAPE_TIMEOUT_MS)),
            ),
          ])
            .catch(() => null)
            .finally(() => clearTimeout(timer));
    this.snapshot = { at: now, counters };
    return counters;
  }
}
