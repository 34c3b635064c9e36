/**
 * The metrics registry and the health server on their own (the real cluster's scrape is
 * test/integration/observability.test.ts): per-node registries, bounded labels, enclave counters
 * read from a HEALTH reply, readiness answers, and the listening-address rule.
 */
import { afterEach, describe, expect, it } from "vitest";
import { HostMetrics, topicClass, type ObservedEnclave } from "../../src/host/metrics.ts";
import {
  parseListenAddress,
  startHealthServer,
  type HealthServer,
} from "../../src/host/health-server.ts";
import { readEnclaveCounters } from "../../src/shared/wire/enclave-counters.ts";
import { FrameType } from "../../src/shared/wire/frame.ts";
import type { HealthReply } from "../../src/shared/wire/enclave-ops.ts";
import { loadConfig } from "../../src/host/config.ts";
import { parseSamples, sample } from "../helpers/prometheus-text.ts";

function fakeEnclave(reply: Record<string, unknown>): ObservedEnclave {
  return {
    available: true,
    status: () => ({ reconnects: 2 }),
    health: async () => reply as unknown as HealthReply,
    onCall: null,
  };
}

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("host metrics", () => {
  it("keeps two nodes in one process apart (one registry each, labelled by node)", async () => {
    const a = new HostMetrics("node-a");
    const b = new HostMetrics("node-b");
    a.ceremonyEnded("sign");
    a.ceremonyEnded("sign");
    b.ceremonyEnded("dkg", { code: "deadline_exceeded", blame: { node: "node-c" } });
    const sa = parseSamples(await a.registry.metrics());
    const sb = parseSamples(await b.registry.metrics());
    expect(
      sample(sa, "tss_ceremonies_total", { kind: "sign", outcome: "succeeded", node: "node-a" }),
    ).toBe(2);
    expect(
      sample(sb, "tss_ceremonies_total", { kind: "sign", outcome: "succeeded", node: "node-b" }),
    ).toBe(0);
    expect(
      sample(sb, "tss_ceremonies_total", { kind: "dkg", outcome: "failed", node: "node-b" }),
    ).toBe(1);
    expect(
      sample(sb, "tss_ceremony_aborts_total", {
        kind: "dkg",
        reason: "deadline_exceeded",
        blamed: "node-c",
        node: "node-b",
      }),
    ).toBe(1);
  });

  it("maps any error code to a contract code and an unknown refusal reason to other", async () => {
    const m = new HostMetrics("n");
    m.ceremonyEnded("sign", { code: "some_raw_enclave_code" });
    const enclave = fakeEnclave({});
    m.observeEnclave(enclave);
    const refused = (reason: string, type: number = FrameType.CEREMONY_START) =>
      enclave.onCall?.(type as never, 1.5, { code: "unauthorised", reason });
    refused("below_quorum");
    refused("below_quorum");
    refused("made-up reason from a hostile enclave");
    // Not a start or a retirement: not an approval refusal.
    refused("missing", FrameType.LOAD_SHARE);
    const s = parseSamples(await m.registry.metrics());
    expect(
      sample(s, "tss_ceremony_aborts_total", {
        kind: "sign",
        reason: "ceremony_failed",
        blamed: "none",
        node: "n",
      }),
    ).toBe(1);
    expect(sample(s, "tss_approvals_refused_total", { reason: "below_quorum", node: "n" })).toBe(2);
    expect(sample(s, "tss_approvals_refused_total", { reason: "other", node: "n" })).toBe(1);
    expect(
      sample(s, "tss_approvals_refused_total", { reason: "missing", node: "n" }),
    ).toBeUndefined();
    expect(
      sample(s, "tss_enclave_request_seconds_count", {
        op: "CEREMONY_START",
        outcome: "unauthorised",
        node: "n",
      }),
    ).toBe(3);
  });

  it("turns the enclave's HEALTH counters into gauges at scrape, known keys only", async () => {
    const m = new HostMetrics("n");
    m.observeEnclave(
      fakeEnclave({
        status: "ok",
        openSessions: 3,
        loadedWallets: 7,
        shareHits: 11,
        signFinished: 5,
        dkgFailed: 1,
        // Neither a known key nor a count: ignored, never a new series.
        evilFinished: 9,
        shareMisses: -1,
        sharesPinned: "2",
      }),
    );
    const s = parseSamples(await m.registry.metrics());
    expect(sample(s, "tss_enclave_up", { node: "n" })).toBe(1);
    expect(sample(s, "tss_enclave_sessions_open", { node: "n" })).toBe(3);
    expect(sample(s, "tss_enclave_wallets_loaded", { node: "n" })).toBe(7);
    expect(sample(s, "tss_enclave_share_cache_hits", { node: "n" })).toBe(11);
    expect(sample(s, "tss_enclave_ceremonies_finished", { kind: "sign", node: "n" })).toBe(5);
    expect(sample(s, "tss_enclave_ceremonies_failed", { kind: "dkg", node: "n" })).toBe(1);
    expect(sample(s, "tss_enclave_channel_restorations", { node: "n" })).toBe(2);
    expect(s.some((x) => JSON.stringify(x).includes("evil"))).toBe(false);
    // Not counts (negative, a string): not taken; an unlabelled gauge then reads 0.
    expect(sample(s, "tss_enclave_share_cache_misses", { node: "n" })).toBe(0);
    expect(sample(s, "tss_enclave_shares_pinned", { node: "n" })).toBe(0);
    expect(readEnclaveCounters({ __proto__: { openSessions: 1 } } as never).fields).toEqual({});
  });

  it("classes topics without naming them", () => {
    expect(topicClass("tss/v1/requests/sign")).toBe("request");
    expect(topicClass("tss/v1/responses/u/x")).toBe("response");
    expect(topicClass("tss/v1/nodes/node-1/inbox")).toBe("node_call");
    expect(topicClass("tss/v1/nodes/node-1/replies")).toBe("node_reply");
    expect(topicClass("tss/v1/nodes/node-1/presence")).toBe("presence");
    expect(topicClass("elsewhere")).toBe("other");
  });

  it("counts a request in flight until it is answered, once", async () => {
    const m = new HostMetrics("n");
    const done = m.requestTaken("sign");
    m.requestTaken("no-such-op");
    let s = parseSamples(await m.registry.metrics());
    expect(sample(s, "tss_client_requests_in_flight", { node: "n" })).toBe(2);
    expect(sample(s, "tss_client_requests_total", { op: "other", node: "n" })).toBe(1);
    done();
    done();
    s = parseSamples(await m.registry.metrics());
    expect(sample(s, "tss_client_requests_in_flight", { node: "n" })).toBe(1);
  });
});

describe("health server", () => {
  it("listens on loopback for a bare port and refuses other addresses unless allowed", () => {
    expect(parseListenAddress("9464")).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(parseListenAddress("[::1]:9464")).toEqual({ host: "::1", port: 9464 });
    expect(parseListenAddress("localhost:1")).toEqual({ host: "localhost", port: 1 });
    expect(() => parseListenAddress("0.0.0.0:9464")).toThrow(/not a loopback address/);
    expect(() => parseListenAddress("10.0.0.5:9464")).toThrow(/not a loopback address/);
    expect(parseListenAddress("0.0.0.0:9464", true)).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(() => parseListenAddress("127.0.0.1:99999")).toThrow(/must be PORT/);
    expect(() => parseListenAddress("http://127.0.0.1:1")).toThrow(/must be PORT/);
  });

  it("takes the address from the file, a flag or the environment, and is off without one", () => {
    const base = [
      "--node-id",
      "n1",
      "--mqtt",
      "mqtt://127.0.0.1:1",
      "--enclave",
      "unix:/x",
      "--database",
      "/x.db",
      "--kms-relay",
      "unix:/y",
    ];
    expect(loadConfig(base, {}).observability).toBeUndefined();
    expect(loadConfig([...base, "--observability-listen", "9464"], {}).observability).toEqual({
      listen: "9464",
      allowNonLoopback: false,
    });
    expect(
      loadConfig(base, { TSS_OBSERVABILITY_LISTEN: "127.0.0.2:1" }).observability?.listen,
    ).toBe("127.0.0.2:1");
    expect(() => loadConfig(base, { TSS_OBSERVABILITY_LISTEN: "0.0.0.0:9464" })).toThrow(
      /not a loopback/,
    );
    expect(
      loadConfig(base, {
        TSS_OBSERVABILITY_LISTEN: "0.0.0.0:9464",
        TSS_OBSERVABILITY_ALLOW_NON_LOOPBACK: "1",
      }).observability,
    ).toEqual({ listen: "0.0.0.0:9464", allowNonLoopback: true });
  });

  it("answers healthz, readyz (503 naming the failing part) and metrics", async () => {
    const m = new HostMetrics("n");
    let broker: string | null = null;
    const server = await startHealthServer({
      listen: { host: "127.0.0.1", port: 0 },
      metrics: m,
      ready: {
        broker: () => broker,
        enclave: async () => null,
        database: () => {
          throw new Error("boom");
        },
      },
    });
    servers.push(server);
    const url = `http://127.0.0.1:${server.address.port}`;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    let r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({
      ready: false,
      failing: ["database"],
      checks: { broker: "ok", enclave: "ok", database: "check failed: boom" },
    });
    broker = "not connected to the MQTT broker";
    r = await fetch(`${url}/readyz`);
    expect(((await r.json()) as { failing: string[] }).failing).toEqual(["broker", "database"]);
    r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/plain");
    expect(await r.text()).toContain("# TYPE tss_ceremonies_total counter");
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: "POST" })).status).toBe(405);
  });
});
