/**
 * A signer's copy of a sign answer (src/host/signer-outcomes.ts) on a real libsql store, with an
 * enclave stand-in that answers phase 4 with a real secp256k1 signature: kept under the client's
 * request when it verifies, found by lookupRequest (what the planning round asks) as a success,
 * and decisive in priorOutcome over another node's failed run; never kept unverified, for
 * another user, or without a client request. The version with real processes is
 * test/integration/signer-outcome.test.ts.
 */
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NodeHost } from "../../src/host/node-host.ts";
import type { EnclaveClient } from "../../src/host/enclave-client.ts";
import { insertActiveShare, insertWallet, openStore } from "../../src/host/store/index.ts";
import { priorOutcome, requestParamsHash } from "../../src/host/planning.ts";
import { signResult } from "../../src/host/sign-result.ts";
import { toHex } from "../../src/shared/hex.ts";
import type { NodeStartRequest } from "../../src/shared/wire/node-rpc.ts";

const sk = secp256k1.utils.randomSecretKey();
const WALLET = {
  walletId: "w-kept",
  threshold: 2,
  parties: 3,
  publicKey: secp256k1.getPublicKey(sk, true),
  publicPackage: new Uint8Array(40).fill(1),
  chainCode: new Uint8Array(32).fill(2),
};
const dir = mkdtempSync(join(tmpdir(), "tss-signer-outcomes-"));
let files = 0;

/** r || s || recovery id over `digest`, as an enclave's phase-4 reply carries it. */
function signed(digest: Uint8Array): Uint8Array {
  const rec = secp256k1.sign(digest, sk, { prehash: false, format: "recovered" });
  return Uint8Array.of(...rec.slice(1), rec[0]!);
}

function signer(phase4Signature: () => Uint8Array) {
  const { db } = openStore({ path: join(dir, `n${files++}.db`) });
  insertWallet(db, { ...WALLET, generation: 0 });
  insertActiveShare(db, {
    walletId: WALLET.walletId,
    nodeId: "node-2",
    partyIndex: 2,
    generation: 0,
    sealedShare: Uint8Array.of(1),
    kmsCiphertextBlob: Uint8Array.of(7),
    kmsKeyId: "arn:key",
  });
  const enclave = {
    startCeremony: async () => ({ messages: [], generation: 0 }),
    stepCeremony: async (r: { phase: number }) =>
      r.phase === 4
        ? { messages: [], generation: 0, signature: phase4Signature() }
        : { messages: [], generation: 0 },
    abortCeremony: async () => ({ dropped: true }),
  } as unknown as EnclaveClient;
  return new NodeHost({
    nodeId: "node-2",
    enclave,
    credentials: async () => ({ accessKeyId: "a", secretAccessKey: "s" }),
    db,
  });
}

const signStart = (digest: Uint8Array, o: Partial<NodeStartRequest> = {}): NodeStartRequest => ({
  kind: "sign",
  sessionId: randomBytes(32),
  walletId: WALLET.walletId,
  signers: [1, 2],
  digest,
  expectedGeneration: 0,
  peerDocuments: [],
  peerParties: [1],
  requestId: "req-1",
  client: "tss-client",
  signerNodes: ["node-1", "node-2"],
  ...o,
});

/** Runs a sign session on `h` as coordinator node-1 would, through phase 4. */
async function runSign(h: NodeHost, start: NodeStartRequest): Promise<Uint8Array | undefined> {
  await h.start(start, "node-1");
  let reply = { messages: [] as Uint8Array[], generation: 0 } as { signature?: Uint8Array };
  for (const phase of [2, 3, 4])
    reply = await h.step({ sessionId: start.sessionId, phase, messages: [] }, "node-1");
  return reply.signature;
}

describe("a signer keeps the answer it helped make", () => {
  it("is found under the client's request id as the coordinator's answer would be", async () => {
    const digest = randomBytes(32);
    const h = signer(() => signed(digest));
    const sig = (await runSign(h, signStart(digest)))!;
    const kept = h.lookupRequest("sign", "req-1", "tss-client");
    expect(kept?.status).toBe("succeeded");
    expect(kept?.paramsHash).toBe(
      requestParamsHash("sign", { walletId: WALLET.walletId, digest: toHex(digest) }),
    );
    const answer = JSON.parse(new TextDecoder().decode(kept!.result!));
    expect(answer).toEqual(
      JSON.parse(
        JSON.stringify(
          signResult({
            walletId: WALLET.walletId,
            publicKey: WALLET.publicKey,
            chainCode: WALLET.chainCode,
            digest,
            path: undefined,
            sig: { r: sig.slice(0, 32), s: sig.slice(32, 64), recoveryId: sig[64]! },
            signers: ["node-1", "node-2"],
            coordinator: "node-1",
          }),
        ),
      ),
    );
    // Another user's request id of the same name is another request.
    expect(h.lookupRequest("sign", "req-1", "tss-client-2")).toBeNull();
    // The planning round: a kept success wins over another node's failed rerun, and a
    // resubmission with other parameters under the id is a conflict.
    const hash = requestParamsHash("sign", { walletId: WALLET.walletId, digest: toHex(digest) });
    const failed = { status: "failed", result: null, error: "approval_replayed", paramsHash: hash };
    expect(priorOutcome("req-1", [failed, kept], hash)).toEqual(answer);
    expect(() =>
      priorOutcome(
        "req-1",
        [kept],
        requestParamsHash("sign", { walletId: WALLET.walletId, digest: toHex(randomBytes(32)) }),
      ),
    ).toThrow(/other parameters/);
  });

  it("the first signature stays when another quorum signs the same request", async () => {
    const digest = randomBytes(32);
    const h = signer(() => signed(digest));
    await runSign(h, signStart(digest));
    const first = h.lookupRequest("sign", "req-1", "tss-client")!.result;
    await runSign(h, signStart(digest, { signerNodes: ["node-3", "node-2"] }));
    expect(h.lookupRequest("sign", "req-1", "tss-client")!.result).toEqual(first);
  });

  it("keeps nothing that does not verify, nor a sign without a client request", async () => {
    const digest = randomBytes(32);
    const bad = signer(() => signed(randomBytes(32)));
    await runSign(bad, signStart(digest));
    expect(bad.lookupRequest("sign", "req-1", "tss-client")).toBeNull();
    const anonymous = signer(() => signed(digest));
    await runSign(anonymous, signStart(digest, { client: undefined }));
    expect(anonymous.lookupRequest("sign", "req-1", "tss-client")).toBeNull();
  });
});
