/**
 * Rate limits and caps under a flood (issue 9 item 5), with real enclave
 * processes, the KMS stand-in and libsql stores (src/harness/local-nodes.ts).
 * Node 1's request handler takes every request, as the shared subscription
 * would hand them to it: one client user sends 200 sign requests at once,
 * another sends ordinary requests meanwhile. The flood's excess is refused
 * with rate_limited at once, its requests in flight never exceed the cap
 * (measured from the answers), no node takes part in more ceremonies than
 * its cap, and the honest client's signatures all arrive and verify. Then a
 * coordinator that ignores client limits (a compromised host) starts more
 * ceremonies at once than the nodes take: the excess is refused with
 * rate_limited naming the node, and the cap holds. Last, a host that skips
 * its own cap and starts sessions in its enclave directly meets the
 * enclave's cap on open sessions (too_many_sessions, rate_limited to clients).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import { CeremonyError, signDigest } from "../../src/host/coordinator.ts";
import { EnclaveClient } from "../../src/host/enclave-client.ts";
import type { HeldWallet, NodeHost } from "../../src/host/node-host.ts";
import type { WalletRecord } from "../../src/host/participant.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { ClientLimits } from "../../src/host/rate-limits.ts";
import { nodeOpHandlers } from "../../src/host/remote-participant.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { dispatchNodeOp } from "../../src/shared/wire/node-rpc.ts";

const FLOOD = 200;
const MAX_IN_FLIGHT = 2;
/** Above what the two clients' in-flight caps can reach, so honest requests never meet it. */
const NODE_CAP = 4;
/** Above NODE_CAP: a host that keeps its cap never gets its enclave to refuse. */
const ENCLAVE_CAP = 6;

let ln: LocalNodes;
let dir: string;
let handler: RequestHandler;
let limits: ClientLimits;

/** Node 1's view of the cluster: every host in process, each question through the node RPC argument checks. */
function directory(): PeerDirectory {
  const byId = new Map(ln.hosts.map((h) => [h.nodeId, h]));
  return {
    liveNodes: () => ln.hosts.map((h) => ({ nodeId: h.nodeId, since: 0 })),
    participant: (id) => byId.get(id)!,
    ask: (id, op, args) => dispatchNodeOp(nodeOpHandlers(byId.get(id)!), op, args),
  };
}

interface Answer {
  ok: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  /** Milliseconds from sending to the final answer. */
  ms: number;
}

/** Per client: requests sent whose final answer has not come, and the most there ever were. */
const inFlight = new Map<string, { now: number; peak: number }>();

function request(client: string, op: string, body: Record<string, unknown>): Promise<Answer> {
  const count = inFlight.get(client) ?? { now: 0, peak: 0 };
  inFlight.set(client, count);
  const sent = performance.now();
  return new Promise((resolve) => {
    let final = false;
    const end = (a: Omit<Answer, "ms">) => {
      if (final) throw new Error("a second final answer");
      final = true;
      count.now -= 1;
      resolve({ ...a, ms: performance.now() - sent });
    };
    const reply: Reply = {
      client,
      progress: () => {},
      done: (result) => end({ ok: true, result: result as Record<string, unknown> }),
      fail: (error) => end({ ok: false, error }),
    };
    count.now += 1;
    void handler.handle(
      op,
      { requestId: `${client}-${randomBytes(8).toString("hex")}`, ...body },
      reply,
    );
    // A refusal is answered before handle() first waits, so only admitted requests are still counted here.
    count.peak = Math.max(count.peak, count.now);
  });
}

function verified(r: Record<string, unknown>, digest: Uint8Array): boolean {
  const sig = r.signature as { r: string; s: string; recoveryId: number };
  return verifySignature(fromHex(r.publicKey as string), digest, {
    r: fromHex(sig.r),
    s: fromHex(sig.s),
    recoveryId: sig.recoveryId,
  });
}

let walletId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-flood-"));
  ln = await startLocalNodes({
    nodes: 3,
    dataDir: dir,
    maxCeremonies: NODE_CAP,
    enclaveMaxSessions: ENCLAVE_CAP,
  });
  limits = new ClientLimits({ requestsPerSecond: 5, burst: 10, maxInFlight: MAX_IN_FLIGHT });
  handler = new RequestHandler(ln.hosts[0]!, directory(), { phaseTimeoutMs: 60_000, limits });
  const dkg = await request("admin", "dkg", { threshold: 2, parties: 3 });
  expect(dkg.error).toBeUndefined();
  walletId = dkg.result!.walletId as string;
}, 300_000);

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a flood from one client user", () => {
  it("is refused with rate_limited at once beyond its caps while another client's requests succeed", async () => {
    const digests = Array.from({ length: FLOOD }, () => randomBytes(32));
    const flood = digests.map((d) => request("flood", "sign", { walletId, digest: toHex(d) }));
    // The honest client, one request after another while the flood is being served.
    const honest: Answer[] = [];
    const honestDigests: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      const d = randomBytes(32);
      honestDigests.push(d);
      honest.push(await request("honest", "sign", { walletId, digest: toHex(d) }));
    }
    const answers = await Promise.all(flood);

    const limited = answers.filter((a) => a.error?.code === "rate_limited");
    const signed = answers.filter((a) => a.ok);
    // Everything is answered: signed or refused, nothing else and nothing left waiting.
    expect(limited.length + signed.length).toBe(FLOOD);
    expect(signed.length).toBeGreaterThanOrEqual(1);
    expect(signed.length).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    for (const a of limited) {
      expect(a.error!.message).toMatch(/flood already has \d+ requests in flight|flood exceeds/);
      // Refused at once, not queued behind the ceremonies.
      expect(a.ms).toBeLessThan(250);
    }
    answers.forEach((a, i) => {
      if (a.ok) expect(verified(a.result!, digests[i]!)).toBe(true);
    });
    expect(inFlight.get("flood")!.peak).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    expect(limits.inFlight("flood")).toBe(0);

    honest.forEach((a, i) => {
      expect(a.error).toBeUndefined();
      expect(verified(a.result!, honestDigests[i]!)).toBe(true);
    });
    for (const h of ln.hosts) expect(h.ceremonies.peak).toBeLessThanOrEqual(NODE_CAP);
  }, 300_000);
});

function heldWallet(): { w: HeldWallet; record: WalletRecord } {
  const w = ln.hosts[0]!.walletInfo(walletId)!;
  const record: WalletRecord = {
    walletId,
    threshold: w.threshold,
    parties: w.parties,
    publicKey: w.publicKey,
    publicPackage: w.publicPackage,
    chainCode: w.chainCode,
  };
  return { w, record };
}

describe("a coordinator that ignores client limits", () => {
  it("gets no node into more ceremonies than its cap: the excess is refused with rate_limited naming the node", async () => {
    const { w, record } = heldWallet();
    const digests = Array.from({ length: 3 * NODE_CAP }, () => randomBytes(32));
    const outcomes = await Promise.allSettled(
      digests.map((d) => signDigest(ln.hosts.slice(0, 2), record, w.generation, d)),
    );
    const refused = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) {
      expect(e).toBeInstanceOf(CeremonyError);
      expect((e as CeremonyError).code).toBe("rate_limited");
      expect((e as CeremonyError).node).toMatch(/^node-[12]$/);
      expect((e as Error).message).toMatch(/already takes part in its maximum of concurrent/);
    }
    outcomes.forEach((o, i) => {
      if (o.status === "fulfilled")
        expect(verifySignature(w.publicKey, digests[i]!, o.value)).toBe(true);
    });
    for (const h of ln.hosts) {
      expect(h.ceremonies.peak).toBeLessThanOrEqual(NODE_CAP);
      // Every slot is given back: none of the refused or finished ceremonies still counts.
      expect(h.ceremonies.size).toBe(0);
    }
  }, 300_000);
});

describe("a host that skips its own cap", () => {
  it("meets its enclave's cap on open sessions: too_many_sessions, answered as rate_limited", async () => {
    const { w, record } = heldWallet();
    const direct = await Promise.all(
      [1, 2].map((k) =>
        EnclaveClient.connect({ kind: "unix", path: join(dir, `node-${k}.enclave.sock`) }),
      ),
    );
    try {
      // The host as it is, except that start goes to its enclave without the host's cap.
      const uncapped = direct.map((enclave, i) => {
        const p = Object.create(ln.hosts[i]!) as NodeHost;
        p.start = (req) => enclave.startCeremony(req);
        return p;
      });
      const digests = Array.from({ length: 3 * ENCLAVE_CAP }, () => randomBytes(32));
      const outcomes = await Promise.allSettled(
        digests.map((d) => signDigest(uncapped, record, w.generation, d)),
      );
      const refused = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
      expect(refused.length).toBeGreaterThan(0);
      for (const e of refused) {
        expect(e).toBeInstanceOf(CeremonyError);
        expect((e as CeremonyError).code).toBe("rate_limited");
        expect((e as Error).message).toMatch(
          new RegExp(`maximum of ${ENCLAVE_CAP} open ceremony sessions`),
        );
      }
      const signed = outcomes.filter((o) => o.status === "fulfilled");
      expect(signed.length).toBeGreaterThanOrEqual(ENCLAVE_CAP);
      outcomes.forEach((o, i) => {
        if (o.status === "fulfilled")
          expect(verifySignature(w.publicKey, digests[i]!, o.value)).toBe(true);
      });
      // Every session ended: the enclaves take a full complement again.
      const again = await Promise.all(
        digests.slice(0, ENCLAVE_CAP).map((d) => signDigest(uncapped, record, w.generation, d)),
      );
      expect(again).toHaveLength(ENCLAVE_CAP);
    } finally {
      for (const c of direct) c.close();
    }
  }, 300_000);
});
