/**
 * Hostile peers (issue 10 item 6) among real enclave processes, stores and the
 * KMS stand-in: one node of a 2-of-3 wallet is played by a HostileNode (its
 * enclave genuine, its host compromised) and signs with an honest node through
 * the unmodified coordinator. Each attack must be refused, the ceremony
 * aborted, the error's structured blame naming the hostile node, and both the
 * honest nodes and the hostile node's (now honestly relayed) enclave must sign
 * afterwards. The old-generation case runs last: it refreshes the wallet.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNodes, type LocalNodes } from "../../src/harness/local-nodes.ts";
import {
  CeremonyError,
  createWallet,
  refreshWallet,
  signDigest,
} from "../../src/host/coordinator.ts";
import type { Participant, WalletRecord } from "../../src/host/participant.ts";
import { currentShare } from "../../src/host/store/index.ts";
import { MAX_SEALED_LEN } from "../../src/shared/wire/peer-envelope-header.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import {
  bodyBitFlipped,
  FROM_AT,
  HostileNode,
  inSession,
  sessionOf,
  withHeaderByte,
  type Relay,
} from "../helpers/hostile-node.ts";
import { rejected } from "../helpers/thrown.ts";

const HOSTILE = "node-3";

let ln: LocalNodes;
let dir: string;
let wallet: WalletRecord;
let hostile: HostileNode;
let generation = 0;
/** What the hostile node's enclave produced in an earlier honest sign, by phase. */
let earlier: Map<number, Uint8Array[]>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tss-hostile-"));
  ln = await startLocalNodes({ nodes: 3, dataDir: dir, phaseTimeoutMs: 60_000 });
  wallet = await createWallet(ln.hosts, 2);
  hostile = new HostileNode(ln.hosts[2]!);
  await signsAndVerifies([ln.hosts[0]!, hostile]);
  earlier = hostile.produced;
});

afterAll(async () => {
  await ln?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function signsAndVerifies(nodes: Participant[]): Promise<void> {
  const digest = randomBytes(32);
  const sig = await signDigest(nodes, wallet, generation, digest, { phaseTimeoutMs: 60_000 });
  expect(verifySignature(wallet.publicKey, digest, sig)).toBe(true);
}

/** Signs with the hostile node relaying through `relay`; returns the refusal. */
async function refusedWith(relay: Relay): Promise<CeremonyError> {
  hostile.relay = relay;
  try {
    const e = await rejected(
      CeremonyError,
      signDigest([ln.hosts[0]!, hostile], wallet, generation, randomBytes(32), {
        phaseTimeoutMs: 60_000,
      }),
    );
    await abortedAtHonestPeer();
    return e;
  } finally {
    hostile.reset();
  }
}

/** The ceremony was aborted: the honest peer's enclave no longer knows the refused session. */
async function abortedAtHonestPeer(): Promise<void> {
  const sessionId = sessionOf(hostile.produced.get(1)![0]!);
  await expect(ln.hosts[0]!.step({ sessionId, phase: 2, messages: [] })).rejects.toMatchObject({
    code: "unknown_session",
  });
}

/** The refusal blames the hostile node, and every node still signs afterwards. */
async function blamedAndHonestStillServe(e: CeremonyError): Promise<void> {
  expect(e.blame.node).toBe(HOSTILE);
  if (e.blame.party !== undefined) expect(e.blame.party).toBe(3);
  await signsAndVerifies([ln.hosts[0]!, ln.hosts[1]!]);
  await signsAndVerifies([ln.hosts[1]!, hostile]);
}

/** Phase-1 output only: the first messages the honest peer opens. */
const inPhase1 =
  (f: (m: Uint8Array) => Uint8Array): Relay =>
  (phase, ms) =>
    phase === 1 ? ms.map(f) : ms;

describe("hostile peer", () => {
  it("tampered message bytes: refused by the honest enclave, blamed on the sender", async () => {
    const e = await refusedWith(inPhase1(bodyBitFlipped));
    await blamedAndHonestStillServe(e);
  });

  it("a message replayed from an earlier session (relabelled to this one): refused, blamed", async () => {
    const e = await refusedWith((phase, ms) =>
      phase === 1 ? earlier.get(1)!.map((m) => inSession(m, sessionOf(ms[0]!))) : ms,
    );
    await blamedAndHonestStillServe(e);
  });

  it("reordered phases: an earlier session's phase-3 message delivered in phase 2: refused, blamed", async () => {
    expect(earlier.get(3)?.length).toBeGreaterThan(0);
    const e = await refusedWith((phase, ms) =>
      phase === 1 ? earlier.get(3)!.map((m) => inSession(m, sessionOf(ms[0]!))) : ms,
    );
    await blamedAndHonestStillServe(e);
  });

  it("a cross-session message (its header names another session): refused, blamed", async () => {
    const other = randomBytes(32);
    const e = await refusedWith(inPhase1((m) => inSession(m, other)));
    await blamedAndHonestStillServe(e);
  });

  it("an oversized message (above MAX_SEALED_LEN): refused, blamed", async () => {
    const e = await refusedWith(
      inPhase1((m) => {
        const big = new Uint8Array(MAX_SEALED_LEN + 1);
        big.set(m);
        return big;
      }),
    );
    await blamedAndHonestStillServe(e);
  });

  it("a wrong-sender message (re-labelled as from another party): refused, blamed", async () => {
    for (const claimed of [1, 2]) {
      const e = await refusedWith(inPhase1((m) => withHeaderByte(m, FROM_AT, claimed)));
      await blamedAndHonestStillServe(e);
    }
  });

  it("an old-generation share (kept from before a refresh) claimed as current: refused, blamed", async () => {
    const old = currentShare(hostile.inner.db, wallet.walletId, HOSTILE);
    generation = await refreshWallet([ln.hosts[0]!, ln.hosts[1]!, hostile], wallet, generation);
    expect(generation).toBe(old.generation + 1);
    hostile.staleShare = old;
    hostile.claimedGeneration = generation;
    let e: CeremonyError;
    try {
      e = await rejected(
        CeremonyError,
        signDigest([ln.hosts[0]!, hostile], wallet, generation, randomBytes(32)),
      );
    } finally {
      hostile.reset();
    }
    // Its own enclave verified generation 1's commit certificate and refuses the old share.
    expect(e.code).toBe("stale_share");
    await blamedAndHonestStillServe(e);
  });
});
