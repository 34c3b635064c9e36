/**
 * The same request id resubmitted after its coordinator died between making the signature and
 * answering (issue 10 item 1; docs/RELIABILITY.md), with real processes: three nodes (separate
 * host and enclave processes), a real Mosquitto, a 2-of-3 wallet whose policy needs one
 * approval, so the enclaves refuse a second session of the approved request
 * (`approval_replayed`).
 *
 * Every host reaches the broker through its own fault relay (src/harness/mqtt-fault-relay.ts).
 * Whichever node takes the request, its relay drops the final answer it publishes (the
 * signature, made and verified) and the test kills that host at that moment: nothing of the
 * answer reached the client, and the dead coordinator's own row is unreachable. The client gets
 * coordinator_lost and resubmits the same request id: the other signer kept the answer at
 * phase 4 (src/host/signer-outcomes.ts), the new coordinator's planning round finds it, and the
 * client gets exactly the signature that was made. No ceremony runs again: no node-RPC `start`
 * crosses any relay after the resubmission, and no live node records a ceremony for the id.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import type { CreateWalletResult } from "../../src/client/types.ts";
import { startFaultRelay, type FaultRelay } from "../../src/harness/mqtt-fault-relay.ts";
import { watchPresence, type PresenceWatch } from "../../src/harness/presence-watch.ts";
import {
  findClientRequest,
  findSignOutcome,
  openReadOnlyFile,
} from "../../src/host/store/index.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { encodePolicy } from "../../src/shared/wire/approval.ts";
import { decodeNodePayload } from "../../src/shared/wire/rpc-payload.ts";
import { rejected } from "../helpers/thrown.ts";
import { until } from "../helpers/until.ts";

const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");

let cluster: LocalCluster;
let dir: string;
let presence: PresenceWatch;
let client: TssClient;
let wallet: CreateWalletResult;
const relays = new Map<string, FaultRelay>();

/** The sign answer a node published (`{ok: true, result}` with a signature), if the PUBLISH is one. */
function signAnswer(topic: string, payload: Buffer): { signature: { r: string } } | null {
  if (!topic.startsWith("tss/v1/responses/")) return null;
  try {
    const v = JSON.parse(payload.toString()) as { ok?: unknown; result?: { signature?: unknown } };
    return v.ok === true && v.result?.signature ? (v.result as { signature: { r: string } }) : null;
  } catch {
    return null;
  }
}

/** Node-RPC `start` calls that crossed any relay since `at`. */
function startsSince(at: number): number {
  let n = 0;
  for (const r of relays.values())
    for (const p of r.seen) {
      if (p.at < at || !/^tss\/v1\/nodes\/[^/]+\/inbox$/.test(p.topic)) continue;
      try {
        if ((decodeNodePayload(p.payload).value as { op?: unknown })?.op === "start") n++;
      } catch {
        // not a call
      }
    }
  return n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-signer-outcome-"));
  cluster = await startCluster({
    nodes: 3,
    dataDir: dir,
    phaseTimeoutMs: 60_000,
    adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
  });
  presence = await watchPresence(cluster.observer);
  // Every host reaches the broker through its own relay from now on.
  for (const n of cluster.nodes) {
    const relay = await startFaultRelay({ brokerPort: cluster.broker.port });
    relays.set(n.nodeId, relay);
    const cfg = JSON.parse(readFileSync(n.config, "utf8")) as { mqtt: { url: string } };
    cfg.mqtt.url = relay.url;
    writeFileSync(n.config, JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
    await n.restartHost();
  }
  for (const n of cluster.nodes)
    await until(() => presence.last(n.nodeId) === "online", 20_000, `${n.nodeId} online`);
  client = await TssClient.connect({ ...cluster.client, timeoutMs: 120_000 });
  wallet = await client.createWallet({
    threshold: 2,
    parties: 3,
    policy: { quorum: 1, approvers: [approverKeyOf(alice)] },
    admins: [admin],
  });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await presence?.close();
  await cluster?.stop();
  for (const r of relays.values()) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a coordinator lost after the signature was made", () => {
  it("the resubmitted request id gets the signature that was made, and nothing signs again", async () => {
    const requestId = `lost-answer-${randomBytes(6).toString("hex")}`;
    const digest = randomBytes(32);
    let coordinator: string | null = null;
    let dropped: { signature: { r: string } } | null = null;
    for (const [nodeId, relay] of relays)
      relay.dropWhere((p) => {
        if (dropped || p.direction !== "to_broker") return false;
        const answer = signAnswer(p.topic, p.payload);
        if (!answer) return false;
        // The coordinator made and verified the signature; its answer never leaves: it dies now.
        dropped = answer;
        coordinator = nodeId;
        process.kill(cluster.nodes.find((n) => n.nodeId === nodeId)!.host.proc.pid!, "SIGKILL");
        return true;
      });
    const err = await rejected(
      TssError,
      client.sign({ walletId: wallet.walletId, digest, requestId, signers: [alice] }),
    );
    for (const relay of relays.values()) relay.dropWhere(null);
    expect(coordinator).not.toBeNull();
    expect(err.code).toBe("coordinator_lost");
    expect(err.node).toBe(coordinator);
    const dead = coordinator!;
    const made = dropped! as unknown as {
      signature: { r: string; s: string; recoveryId: number };
      signers: string[];
    };
    // t = 2: one other node signed and kept the answer; the third holds nothing of it.
    expect(made.signers).toContain(dead);
    const otherSigner = made.signers.find((id) => id !== dead)!;

    // Resubmitted with the same id (fresh approvals, as a client retrying would sign them).
    const resubmit = () =>
      client.sign({ walletId: wallet.walletId, digest, requestId, signers: [alice] });
    const resubmittedAt = Date.now();
    const again = await resubmit();
    expect(again.signature).toEqual(made.signature);
    expect(again.coordinator).toBe(dead);
    expect(
      verifySignature(fromHex(again.publicKey), digest, {
        r: fromHex(again.signature.r),
        s: fromHex(again.signature.s),
        recoveryId: again.signature.recoveryId,
      }),
    ).toBe(true);
    // Nothing ran again: no ceremony started anywhere, no live node recorded one for the id.
    expect(startsSince(resubmittedAt)).toBe(0);
    for (const n of cluster.nodes.filter((x) => x.nodeId !== dead)) {
      const db = openReadOnlyFile(join(dir, `${n.nodeId}.db`));
      try {
        expect(findClientRequest(db, cluster.client.username, requestId)).toBeUndefined();
        const kept = findSignOutcome(db, cluster.client.username, requestId);
        if (n.nodeId === otherSigner) expect(kept).toBeDefined();
        else expect(kept).toBeUndefined();
      } finally {
        db.close();
      }
    }

    // Back with its own row (succeeded: it had recorded the signature before answering): the same answer.
    await cluster.nodes.find((n) => n.nodeId === dead)!.restartHost();
    await until(() => presence.last(dead) === "online", 20_000, `${dead} online`);
    const later = await resubmit();
    expect(later.signature).toEqual(made.signature);
    expect(startsSince(resubmittedAt)).toBe(0);
  });
});
