/**
 * The node's one small HTTP server for operators (config `observability.listen`; off unless set):
 *
 *   GET /metrics  Prometheus text format (metrics.ts, this node's own registry)
 *   GET /healthz  200 {"status":"alive"} while the process runs
 *   GET /readyz   200 {"ready":true,"checks":{...}} when the broker is connected, the enclave is
 *                 attested and the database can be written; 503 with the same body, `ready:false`
 *                 and `failing: [part, ...]`, each check's problem in a sentence, otherwise
 *
 * Loopback by default: a bare port means 127.0.0.1, and any other address is refused unless
 * `observability.allowNonLoopback` is set, because the endpoint has no authentication and its
 * numbers (ceremony rates, blamed nodes, enclave state) are reconnaissance for an attacker. No
 * secret is served: metrics are counts and states, readiness checks sentences about them.
 *
 * node:http rather than Bun.serve: the same code under Bun (production) and Node (tools).
 */
import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import type { NodeConfig } from "./config.ts";
import type { HostMetrics } from "./metrics.ts";
import type { Bus } from "./mqtt/bus.ts";
import type { NodeCondition } from "./node-condition.ts";

export interface ListenAddress {
  host: string;
  port: number;
}

/** Whether `host` is a loopback name or address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; a bare port listens on 127.0.0.1. */
export function parseListenAddress(s: string, allowNonLoopback = false): ListenAddress {
  const m = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):)?(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port > 65535)
    throw new Error(
      `observability.listen must be PORT, HOST:PORT or [IPv6]:PORT, got ${JSON.stringify(s)}`,
    );
  const host = m[1] ?? m[2] ?? "127.0.0.1";
  if (!isLoopback(host) && !allowNonLoopback)
    throw new Error(
      `observability.listen ${s} is not a loopback address: the endpoint has no authentication; ` +
        "set observability.allowNonLoopback (TSS_OBSERVABILITY_ALLOW_NON_LOOPBACK=1) to serve it there",
    );
  return { host, port };
}

/** Each part of readiness: null when ready, else why not (a sentence, never a secret). */
export type ReadinessChecks = Record<string, () => string | null | Promise<string | null>>;

/** How long one readiness check may take before it counts as failing. */
export const READINESS_CHECK_TIMEOUT_MS = 3_000;

/** A node's readiness: its broker connection, an attested enclave, a writable database. */
export function nodeReadiness(p: {
  bus: Pick<Bus, "client">;
  /** NodeHost: its attestation document (reused for a minute) proves the enclave attests now. */
  host: { attestation(): Promise<Uint8Array> };
  condition: Pick<NodeCondition, "reasons">;
}): ReadinessChecks {
  return {
    broker: () => (p.bus.client.connected ? null : "not connected to the MQTT broker"),
    // What withdraws the node first (channel lost, another image), else a fresh document.
    enclave: async () =>
      p.condition.reasons.enclave ??
      p.host.attestation().then(
        () => null,
        (e: Error) => `the enclave gave no attestation document: ${e.message}`,
      ),
    database: () => p.condition.reasons.database ?? null,
  };
}

async function runChecks(checks: ReadinessChecks): Promise<Record<string, string | null>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([part, check]) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<string>(
        (r) =>
          (timer = setTimeout(
            () => r(`did not answer within ${READINESS_CHECK_TIMEOUT_MS} ms`),
            READINESS_CHECK_TIMEOUT_MS,
          )),
      );
      try {
        return [part, await Promise.race([Promise.resolve().then(check), late])] as const;
      } catch (e) {
        return [part, `check failed: ${(e as Error)?.message ?? String(e)}`] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return Object.fromEntries(entries);
}

export interface HealthServer {
  /** host:port it listens on (the port the OS chose, when asked for 0). */
  readonly address: ListenAddress;
  close(): Promise<void>;
}

export function startHealthServer(o: {
  listen: ListenAddress;
  /** What /metrics serves: HostMetrics (or a prom-client Registry). */
  metrics: { readonly contentType: string; metrics(): Promise<string> };
  ready: ReadinessChecks;
  log?: (event: string, fields: Record<string, unknown>) => void;
}): Promise<HealthServer> {
  const json = (status: number, body: unknown) => ({
    status,
    type: "application/json",
    body: `${JSON.stringify(body)}\n`,
  });
  const route = async (path: string) => {
    if (path === "/healthz") return json(200, { status: "alive" });
    if (path === "/readyz") {
      const results = await runChecks(o.ready);
      const failing = Object.keys(results).filter((k) => results[k] !== null);
      const checks = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v ?? "ok"]));
      return failing.length === 0
        ? json(200, { ready: true, checks })
        : json(503, { ready: false, failing, checks });
    }
    if (path === "/metrics")
      return { status: 200, type: o.metrics.contentType, body: await o.metrics.metrics() };
    return json(404, { error: "not found: /metrics, /healthz, /readyz" });
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    route(path).then(
      (r) => {
        res.writeHead(r.status, { "content-type": r.type, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : r.body);
      },
      (e: Error) => {
        o.log?.("observability_error", { path, error: e.message });
        res.writeHead(500, { "content-type": "application/json" });
        res.end(`${JSON.stringify({ error: "internal" })}\n`);
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.removeListener("error", reject);
      const a = server.address();
      const address = a && typeof a === "object" ? { host: o.listen.host, port: a.port } : o.listen;
      o.log?.("observability_listening", { address: `${address.host}:${address.port}` });
      resolve({
        address,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

/** main.ts: hooks the node's broker connection and ceremony slots into `metrics`, then serves them. */
export function serveObservability(
  cfg: NodeConfig,
  metrics: HostMetrics,
  node: {
    bus: Pick<Bus, "client">;
    host: { attestation(): Promise<Uint8Array>; ceremonies: { readonly size: number } };
    condition: Pick<NodeCondition, "reasons">;
  },
  log?: (event: string, fields: Record<string, unknown>) => void,
): Promise<HealthServer> {
  metrics.observeMqtt(node.bus.client);
  metrics.observeSessions(() => node.host.ceremonies.size);
  return startHealthServer({
    listen: parseListenAddress(
      cfg.observability?.listen ?? "",
      cfg.observability?.allowNonLoopback,
    ),
    metrics,
    ready: nodeReadiness(node),
    log,
  });
}
