/**
 * A flood over the real broker (issue 9 item 5): three nodes as separate host
 * and enclave processes, Mosquitto with per-user credentials, every host with
 * small per-client-user admission limits. One client user publishes 120 sign
 * requests at once over MQTT; the shared subscription spreads them over the
 * nodes, each of which admits that user only within its own budget. Every
 * request is answered exactly once, the excess at once with rate_limited, no
 * more are signed than the nodes' budgets allow, and meanwhile another client
 * user's requests, through the SDK, all sign.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import type { CreateWalletResult, SignResult } from "../../src/client/types.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { rawClient } from "../helpers/raw-client.ts";

const NODES = 3;
const FLOOD = 120;
const LIMITS = { requestsPerSecond: 2, requestBurst: 4, maxInFlight: 2 };

let cluster: LocalCluster;
let dir: string;
let honest: TssClient;
let wallet: CreateWalletResult;

const verifies = (r: SignResult, digest: Uint8Array) =>
  verifySignature(fromHex(r.publicKey), digest, {
    r: fromHex(r.signature.r),
    s: fromHex(r.signature.s),
    recoveryId: r.signature.recoveryId,
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-flood-mqtt-"));
  cluster = await startCluster({
    nodes: NODES,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    limits: LIMITS,
  });
  honest = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
  wallet = await honest.createWallet({ threshold: 2, parties: 3 });
});

afterAll(async () => {
  await honest?.close().catch(() => {});
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a flood from one client user over MQTT", () => {
  it("is refused with rate_limited beyond each node's budget while another user's requests sign", async () => {
    const flooder = await rawClient(cluster.clients[1]!);
    const started = Date.now();
    try {
      const digests = Array.from({ length: FLOOD }, () => randomBytes(32));
      const flood = digests.map((digest, k) =>
        flooder.request("sign", {
          requestId: `flood-${k}-${randomBytes(4).toString("hex")}`,
          walletId: wallet.walletId,
          digest: toHex(digest),
        }),
      );
      // The honest user, one request after another while the flood is served.
      for (let i = 0; i < 4; i++) {
        const digest = randomBytes(32);
        expect(verifies(await honest.sign({ walletId: wallet.walletId, digest }), digest)).toBe(
          true,
        );
      }
      const answers = await Promise.all(flood);
      await new Promise((r) => setTimeout(r, 1_000)); // room for a duplicate answer to show up
      const elapsedS = (Date.now() - started) / 1000;

      expect(answers.map((a) => a.finals)).toEqual(answers.map(() => 1));
      const signed = answers.map((a, k) => ({ a, digest: digests[k]! })).filter((x) => x.a.ok);
      const refused = answers.filter((a) => !a.ok);
      for (const a of refused) expect(a.error!.code).toBe("rate_limited");
      for (const { a, digest } of signed)
        expect(verifies(a.result as unknown as SignResult, digest)).toBe(true);
      // Each node admits the user's burst, then its rate, and never more than its in-flight cap at once.
      const budget = NODES * (LIMITS.requestBurst + Math.ceil(LIMITS.requestsPerSecond * elapsedS));
      expect(signed.length).toBeGreaterThan(0);
      expect(signed.length).toBeLessThanOrEqual(budget);
      expect(refused.length).toBeGreaterThanOrEqual(FLOOD - budget);
      expect(refused.length).toBeGreaterThan(FLOOD / 2);
    } finally {
      await flooder.close();
    }
  });
});
