/**
 * Observability on a real cluster (three host and enclave processes, Mosquitto, the KMS
 * stand-in): each host serves /metrics, /healthz and /readyz on a loopback port of its own
 * (config observability.listen). After a 2-of-3 DKG and a signature the scrapes show the
 * coordinated ceremonies, their phase histograms, MQTT traffic and the enclaves' own counters
 * (carried over the channel in HEALTH, not from any enclave port); /readyz turns 503 naming the
 * enclave while one is killed and kept down, and naming the broker while it is down. Every log
 * line the hosts and enclaves wrote is scanned for secrets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "libsql";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { parseSamples, sample, sumOf, type Sample } from "../helpers/prometheus-text.ts";
import { sleep } from "../helpers/until.ts";

let cluster: LocalCluster;
let dir: string;
/** Each node's observability base URL, by node id. */
const urls = new Map<string, string>();
let before: Map<string, Sample[]>;
let after: Map<string, Sample[]>;
let wallet: CreateWalletResult;
let signed: SignResult;
/** Everything the hosts and enclaves logged up to the end of the signature. */
let logText: string;
const dkgRequestId = `obs-dkg-${randomBytes(4).toString("hex")}`;
const signRequestId = `obs-sign-${randomBytes(4).toString("hex")}`;
const refreshRequestId = `obs-refresh-${randomBytes(4).toString("hex")}`;

const scrape = async (nodeId: string): Promise<Sample[]> => {
  const r = await fetch(`${urls.get(nodeId)}/metrics`);
  expect(r.status).toBe(200);
  return parseSamples(await r.text());
};
const scrapeAll = async () =>
  new Map(
    await Promise.all(cluster.nodes.map(async (n) => [n.nodeId, await scrape(n.nodeId)] as const)),
  );
const readyz = async (nodeId: string) => {
  const r = await fetch(`${urls.get(nodeId)}/readyz`);
  return {
    status: r.status,
    body: (await r.json()) as {
      ready: boolean;
      failing?: string[];
      checks: Record<string, string>;
    },
  };
};
/** Polls `what` until `ok`, for at most `ms`. */
async function eventually<T>(
  what: string,
  f: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch((e: unknown) => e as T);
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}
/** The address a host logged it serves observability on (its port was 0: the OS chose). */
function listening(stderr: string): string | undefined {
  for (const line of stderr.split("\n"))
    if (line.includes('"observability_listening"'))
      return (JSON.parse(line) as { address: string }).address;
  return undefined;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-observability-"));
  cluster = await startCluster({ nodes: 3, dataDir: dir, phaseTimeoutMs: 60_000 });
  // Observability is off by default: turn it on in each node's config (port 0, loopback) and
  // restart the hosts; their enclaves keep running.
  await Promise.all(
    cluster.nodes.map(async (n) => {
      const cfg = JSON.parse(readFileSync(n.config, "utf8")) as Record<string, unknown>;
      writeFileSync(n.config, JSON.stringify({ ...cfg, observability: { listen: "127.0.0.1:0" } }));
      await n.restartHost();
      const address = await eventually(
        "the listening line",
        async () => listening(n.host.stderr()),
        Boolean,
      );
      urls.set(n.nodeId, `http://${address}`);
    }),
  );
  before = await scrapeAll();
  const client = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
  try {
    wallet = await client.createWallet({ threshold: 2, parties: 3, requestId: dkgRequestId });
    signed = await client.sign({
      walletId: wallet.walletId,
      digest: randomBytes(32),
      requestId: signRequestId,
    });
    await client.refresh({ walletId: wallet.walletId, requestId: refreshRequestId });
  } finally {
    await client.close();
  }
  after = await scrapeAll();
  logText = cluster.nodes.map((n) => `${n.host.stderr()}\n${n.enclave.stderr()}`).join("\n");
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const total = (m: Map<string, Sample[]>, name: string, labels: Record<string, string> = {}) =>
  [...m.values()].reduce((t, s) => t + sumOf(s, name, labels), 0);

describe("metrics scrape after a DKG, a signature and a refresh", () => {
  it("counts each coordinated ceremony once, on its coordinator, with a histogram sample per phase", () => {
    for (const kind of ["dkg", "sign", "refresh"]) {
      expect(total(before, "tss_ceremonies_total", { kind })).toBe(0);
      expect(total(after, "tss_ceremonies_total", { kind, outcome: "succeeded" })).toBe(1);
      expect(total(after, "tss_ceremonies_total", { kind, outcome: "failed" })).toBe(0);
      for (const phase of ["1", "2", "3", "4"])
        expect(
          total(after, "tss_ceremony_phase_seconds_count", { kind, phase, outcome: "ok" }),
        ).toBe(1);
    }
    // A DKG exchanges attestation documents first; a signature's planning round already did.
    expect(total(after, "tss_ceremony_phase_seconds_count", { kind: "dkg", phase: "attest" })).toBe(
      1,
    );
    const signCoordinator = after.get(signed.coordinator)!;
    expect(
      sample(signCoordinator, "tss_ceremonies_total", {
        kind: "sign",
        outcome: "succeeded",
        node: signed.coordinator,
      }),
    ).toBe(1);
    // The phase sums are real durations: a DKG's four phases take longer than nothing.
    expect(total(after, "tss_ceremony_phase_seconds_sum", { kind: "dkg" })).toBeGreaterThan(0.01);
    expect(total(after, "tss_ceremony_aborts_total")).toBe(0);
    expect(total(after, "tss_approvals_refused_total")).toBe(0);
    expect(total(after, "tss_client_requests_total", { op: "dkg" })).toBe(1);
    expect(total(after, "tss_client_requests_total", { op: "sign" })).toBe(1);
    expect(total(after, "tss_client_requests_total", { op: "refresh" })).toBe(1);
    expect(total(after, "tss_client_requests_in_flight")).toBe(0);
  });

  it("shows every node connected to the broker and counts its PUBLISH packets both ways", () => {
    for (const n of cluster.nodes) {
      const b = before.get(n.nodeId)!;
      const a = after.get(n.nodeId)!;
      expect(sample(a, "tss_mqtt_connected", { node: n.nodeId })).toBe(1);
      // Node RPC: every node was called (start, step) and answered.
      expect(sumOf(a, "tss_mqtt_received_total", { topic: "node_call" })).toBeGreaterThan(
        sumOf(b, "tss_mqtt_received_total", { topic: "node_call" }),
      );
      expect(sumOf(a, "tss_mqtt_published_total", { topic: "node_reply" })).toBeGreaterThan(
        sumOf(b, "tss_mqtt_published_total", { topic: "node_reply" }),
      );
    }
    // Three client requests arrived, each at one node (the shared subscription), answered there.
    expect(
      total(after, "tss_mqtt_received_total", { topic: "request" }) -
        total(before, "tss_mqtt_received_total", { topic: "request" }),
    ).toBe(3);
    expect(total(after, "tss_mqtt_published_total", { topic: "response" })).toBeGreaterThanOrEqual(
      3,
    );
  });

  it("reports the enclave channel and the enclaves' own counters, over the channel", () => {
    for (const n of cluster.nodes) {
      const a = after.get(n.nodeId)!;
      expect(sample(a, "tss_enclave_channel_up", { node: n.nodeId })).toBe(1);
      expect(sample(a, "tss_enclave_up", { node: n.nodeId })).toBe(1);
      // Every holder's enclave ran the DKG to its end.
      expect(
        sample(before.get(n.nodeId)!, "tss_enclave_ceremonies_finished", {
          kind: "dkg",
          node: n.nodeId,
        }) ?? 0,
      ).toBe(0);
      expect(sample(a, "tss_enclave_ceremonies_finished", { kind: "dkg", node: n.nodeId })).toBe(1);
      expect(
        sumOf(a, "tss_enclave_request_seconds_count", { op: "CEREMONY_START", outcome: "ok" }),
      ).toBeGreaterThanOrEqual(1);
      // Each holder's enclave sealed its DKG share and its refreshed one.
      expect(
        sumOf(a, "tss_enclave_request_seconds_count", { op: "SEAL_SHARE", outcome: "ok" }),
      ).toBe(2);
      expect(
        sample(a, "tss_enclave_ceremonies_finished", { kind: "refresh", node: n.nodeId }),
      ).toBe(1);
      expect(sample(a, "tss_enclave_sessions_open", { node: n.nodeId })).toBe(0);
      expect(sample(a, "tss_enclave_wasm_memory_bytes", { node: n.nodeId })).toBeGreaterThan(0);
    }
    // Exactly the two signers' enclaves signed, and they hold the wallet's share loaded.
    expect(total(after, "tss_enclave_ceremonies_finished", { kind: "sign" })).toBe(2);
    for (const s of signed.signers) {
      expect(
        sample(after.get(s)!, "tss_enclave_ceremonies_finished", { kind: "sign", node: s }),
      ).toBe(1);
      expect(
        sample(after.get(s)!, "tss_enclave_wallets_loaded", { node: s }),
      ).toBeGreaterThanOrEqual(1);
    }
  });

  it("is alive and ready on every node", async () => {
    for (const n of cluster.nodes) {
      const h = await fetch(`${urls.get(n.nodeId)}/healthz`);
      expect(h.status).toBe(200);
      expect(await h.json()).toEqual({ status: "alive" });
      expect(await readyz(n.nodeId)).toEqual({
        status: 200,
        body: { ready: true, checks: { broker: "ok", enclave: "ok", database: "ok" } },
      });
    }
  });
});

describe("logs", () => {
  /**
   * What the scan means. Two checks over every line the hosts and enclaves wrote during a DKG,
   * a signature and a refresh:
   *
   * 1. Known secrets, byte for byte: every broker password, the KMS secret access key the hosts
   *    hand their enclaves, and each node's stored sealed shares and KMS ciphertext blobs (a
   *    16-byte window from their middle, in hex and base64) appear nowhere.
   * 2. Unknown secrets by shape: a share, data key, keep-state or seed written in any encoding we
   *    would use is a long run of hex or base64. No JSON string value may contain a run of 32+ hex
   *    digits (16 bytes) or 32+ base64 characters with upper case, lower case and digits, except
   *    under keys that hold the enclave image's public measurements (pcr0 and the image-change
   *    line's expected/got) and the coordinator's ceremony record id (ceremonyId: 32 random
   *    bytes, the key of its audit entries). Other ids stay under the bound: session ids are
   *    logged as 16 hex digits, wallet ids carry 24.
   */
  const ALLOWED_LONG = new Set(["pcr0", "pcr4", "expected", "got", "ceremonyId"]);
  const LONG_HEX = /[0-9a-fA-F]{32,}/;
  /** Standard and URL-safe base64 runs (a path's "/" and "-" alone do not make one). */
  const LONG_B64 = [/[A-Za-z0-9+/]{32,}/g, /[A-Za-z0-9_-]{32,}/g];

  /** The values of `text`'s lines that look like secrets (rule 2), as `key: value` strings. */
  function flaggedIn(text: string): string[] {
    const flagged: string[] = [];
    const scan = (v: unknown, key: string) => {
      if (typeof v === "string") {
        if (ALLOWED_LONG.has(key)) return;
        if (LONG_HEX.test(v)) flagged.push(`${key}: ${v.slice(0, 120)}`);
        for (const run of LONG_B64.flatMap((re) => v.match(re) ?? []))
          if (/[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run))
            flagged.push(`${key}: ${run.slice(0, 120)}`);
      } else if (Array.isArray(v)) v.forEach((x) => scan(x, key));
      else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) scan(x, k);
    };
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = line; // not one of ours: scanned as plain text, no key allowed
      }
      scan(parsed, "");
    }
    return flagged;
  }

  it("the shape scan finds what it is meant to find (controls)", () => {
    const key = randomBytes(32);
    for (const leaked of [
      { dataKey: key.toString("hex") },
      { error: `failed with ${key.subarray(0, 16).toString("hex")} inside` },
      { nested: { share: [key.toString("base64")] } },
      { share: key.toString("base64url") },
    ])
      expect(flaggedIn(JSON.stringify({ event: "x", ...leaked })).length).toBeGreaterThan(0);
    expect(flaggedIn(`not json ${key.toString("base64")}`).length).toBeGreaterThan(0);
    // Public measurements and short ids pass.
    const pcr0 = randomBytes(48).toString("hex");
    const session = randomBytes(8).toString("hex");
    expect(flaggedIn(JSON.stringify({ event: "ready", pcr0, session }))).toEqual([]);
  });

  it("carry request and session ids that tie the coordinator to every participant", () => {
    const lines = logText
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const [kind, requestId, nodes] of [
      ["dkg", dkgRequestId, cluster.nodes.map((n) => n.nodeId)],
      ["sign", signRequestId, signed.signers],
      ["refresh", refreshRequestId, cluster.nodes.map((n) => n.nodeId)],
    ] as const) {
      const session = lines.find(
        (l) => l.event === "ceremony_session" && l.requestId === requestId,
      );
      expect(session, `${kind}: the coordinator's ceremony_session line`).toBeDefined();
      expect(session!.kind).toBe(kind);
      expect(session!.session).toMatch(/^[0-9a-f]{16}$/);
      const joined = lines.filter(
        (l) => l.event === "ceremony_joined" && l.session === session!.session,
      );
      expect(joined.map((l) => l.node).sort()).toEqual([...nodes].sort());
      expect(joined.every((l) => l.requestId === requestId)).toBe(true);
      // The enclaves log the same session id when they finish it.
      expect(
        lines.filter((l) => l.event === "ceremony_finished" && l.session === session!.session),
      ).toHaveLength(nodes.length);
    }
  });

  it("hold no secret: no known secret byte for byte, no long hex or base64 outside public measurements", () => {
    expect(logText.length).toBeGreaterThan(1000);
    const known: string[] = [
      ...Object.values(cluster.nodeUsers).map((u) => u.password),
      ...cluster.clients.map((c) => c.password),
      cluster.observer.password,
      cluster.kms.secretAccessKey,
    ];
    let stored = 0;
    for (const n of cluster.nodes) {
      const db = new Database(join(dir, `${n.nodeId}.db`), { readonly: true });
      try {
        for (const row of db
          .prepare("SELECT sealed_share, kms_ciphertext_blob FROM shares")
          .all() as Record<string, Uint8Array>[])
          for (const blob of [row.sealed_share!, row.kms_ciphertext_blob!]) {
            const mid = Buffer.from(blob).subarray(blob.length >> 1, (blob.length >> 1) + 16);
            expect(mid.length).toBe(16);
            known.push(mid.toString("hex"), mid.toString("base64").slice(0, 20));
            stored++;
          }
      } finally {
        db.close();
      }
    }
    expect(stored).toBeGreaterThanOrEqual(6); // three shares at least, each sealed and its KMS blob
    // Control: the logs do speak of this wallet.
    expect(logText.includes(wallet.walletId)).toBe(true);
    for (const secret of known) {
      expect(secret.length).toBeGreaterThanOrEqual(16);
      expect(logText.includes(secret), `a secret (${secret.length} chars) is in a log`).toBe(false);
    }

    expect(logText.split("\n").filter((l) => l.trim()).length).toBeGreaterThan(20);
    expect(flaggedIn(logText)).toEqual([]);
  });
});

describe("readiness names what is missing", () => {
  it("says 503 'enclave' while its enclave is dead, stays alive, and is ready again once it is back", async () => {
    const node = cluster.nodes[0]!;
    const release = node.enclave.holdRestarts();
    try {
      node.enclave.proc.kill("SIGKILL");
      const down = await eventually(
        "readyz 503",
        () => readyz(node.nodeId),
        (r) => r.status === 503,
      );
      expect(down.body.ready).toBe(false);
      expect(down.body.failing).toEqual(["enclave"]);
      expect(down.body.checks.enclave).toMatch(/enclave/);
      expect(down.body.checks.broker).toBe("ok");
      expect((await fetch(`${urls.get(node.nodeId)}/healthz`)).status).toBe(200);
      const s = await scrape(node.nodeId);
      expect(sample(s, "tss_enclave_channel_up", { node: node.nodeId })).toBe(0);
      expect(sample(s, "tss_enclave_up", { node: node.nodeId })).toBe(0);
      // The other nodes do not depend on it.
      expect((await readyz(cluster.nodes[1]!.nodeId)).status).toBe(200);
    } finally {
      release();
    }
    await node.enclave.restarted(1);
    await eventually(
      "readyz 200 again",
      () => readyz(node.nodeId),
      (r) => r.status === 200,
      30_000,
    );
    const s = await scrape(node.nodeId);
    expect(sample(s, "tss_enclave_channel_restorations", { node: node.nodeId })).toBe(1);
  }, 60_000);

  it("says 503 'broker' on every node while the broker is down, and reconnects", async () => {
    const restarting = cluster.broker.restart(4_000);
    for (const n of cluster.nodes) {
      const down = await eventually(
        "readyz 503",
        () => readyz(n.nodeId),
        (r) => r.status === 503,
        4_000,
      );
      expect(down.body.failing).toContain("broker");
      expect(down.body.checks.broker).toBe("not connected to the MQTT broker");
      expect(sample(await scrape(n.nodeId), "tss_mqtt_connected", { node: n.nodeId })).toBe(0);
    }
    await restarting;
    for (const n of cluster.nodes) {
      await eventually(
        "readyz 200 again",
        () => readyz(n.nodeId),
        (r) => r.status === 200,
        30_000,
      );
      expect(sumOf(await scrape(n.nodeId), "tss_mqtt_reconnects_total")).toBeGreaterThanOrEqual(1);
    }
  }, 60_000);
});
