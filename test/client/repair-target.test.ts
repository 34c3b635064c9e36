/**
 * The SDK's repairShare names the target machine the operator gave
 * (`targetPcr4`), against a real Mosquitto and a fake node: with trust, the
 * attestation document answered for the target is verified and must carry
 * that PCR4 (any node, or the broker, could answer with its own enclave's
 * document), or nothing is approved or sent; without trust the given PCR4 is
 * approved as is. The answer names the PCR4 approved. `tss wallet repair`
 * needs --target-pcr4 HEX. The cluster path is
 * test/integration/share-repair.test.ts.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner } from "../../src/client/signers.ts";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { ethAddress } from "../../src/shared/public-key.ts";
import { parseRequest } from "../../src/shared/wire/approval.ts";
import { repairTargetDigest } from "../../src/shared/wire/repair.ts";
import { runTss } from "../helpers/run-cli.ts";
import { type FakeNodeBus, startFakeNodeBus } from "../helpers/fake-node-bus.ts";
import { rejected } from "../helpers/thrown.ts";

const pki = createDevelopmentPki();
const IMAGE = new Uint8Array(48).fill(0xab);
/** The machine that answers for node-6 (an attacker's, in the refused case). */
const ANSWERING = new Uint8Array(48).fill(0x61);
const INVENTORY = new Uint8Array(48).fill(0x66);
const trust = {
  roots: [{ der: pki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
const alice = KeySigner.generate("ed25519");
const PUBLIC_KEY = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
const WALLET = "w_repair_sdk";

let bus: FakeNodeBus;
let client: TssClient;
let untrusting: TssClient;
/** Every op the fake node was asked, with its body. */
const asked: { op: string; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  bus = await startFakeNodeBus(trust, answer);
  ({ client, untrusting } = bus);
});

afterAll(() => bus?.close());

async function answer(
  op: string,
  body: Record<string, unknown>,
  send: (msg: unknown) => Promise<unknown>,
): Promise<void> {
  asked.push({ op, body });
  if (op === "importTarget") {
    const nsm = new SimulatedNsm({ pki, pcrs: { 0: IMAGE, 4: ANSWERING } });
    const document = nsm.attest({ userData: new PeerKeys().channelKeyBinding() });
    return void (await send({
      ok: true,
      result: { nodeId: body.nodeId, attestation: toHex(document) },
    }));
  }
  if (op !== "repair") return;
  await send({
    ok: true,
    result: {
      walletId: body.walletId,
      keyType: "secp256k1-ecdsa",
      publicKey: toHex(PUBLIC_KEY),
      address: ethAddress(PUBLIC_KEY),
      threshold: 2,
      parties: 3,
      generation: 2,
      nodes: ["node-1", "node-2", "node-6"],
      partyIndex: body.party,
      fromNode: null,
      toNode: body.toNode,
      helpers: ["node-1", "node-2"],
    },
  });
}

/** Party 3 of the wallet to node-6, approved by alice, naming `targetPcr4`. */
const repair = (c: TssClient, targetPcr4: string) =>
  c.repairShare({ walletId: WALLET, party: 3, toNode: "node-6", targetPcr4, signers: [alice] });

const approvedPcr4 = (body: Record<string, unknown>) =>
  parseRequest(fromHex((body.approval as { request: string }).request)).digest;

describe("repairShare's target machine", () => {
  it("refuses a target whose attested machine is not the PCR4 given: nothing is approved or sent", async () => {
    asked.length = 0;
    const e = await rejected(TssError, repair(client, toHex(INVENTORY)));
    expect(e.code).toBe("unverified_wallet");
    expect(e.node).toBe("node-6");
    expect(e.message).toContain(toHex(ANSWERING));
    expect(asked.map((a) => a.op)).toEqual(["importTarget"]);
  });

  it("approves the given PCR4 once the target's document agrees, and names it in the answer", async () => {
    asked.length = 0;
    // The vouchers are absent, so the trusting client refuses the answer itself; the request is what counts.
    await rejected(TssError, repair(client, toHex(ANSWERING)));
    const sent = asked.find((a) => a.op === "repair")!;
    expect(toHex(approvedPcr4(sent.body)!)).toBe(toHex(repairTargetDigest(3, ANSWERING)));
    // Without trust nothing is fetched: the operator's PCR4 is what is approved and named.
    asked.length = 0;
    const r = await repair(untrusting, toHex(INVENTORY));
    expect(asked.map((a) => a.op)).toEqual(["repair"]);
    expect(toHex(approvedPcr4(asked[0]!.body)!)).toBe(toHex(repairTargetDigest(3, INVENTORY)));
    expect(r.targetPcr4).toBe(toHex(INVENTORY));
  });

  it("refuses a malformed PCR4 before asking anything", async () => {
    asked.length = 0;
    const e = await rejected(TssError, repair(untrusting, "AB".repeat(48)));
    expect(e.code).toBe("bad_request");
    expect(asked).toEqual([]);
  });

  it("tss wallet repair needs the operator's --target-pcr4, well formed", async () => {
    const base = ["wallet", "repair", "--wallet", WALLET, "--party", "3", "--to", "node-6"];
    const dir = tmpdir();
    const missing = await runTss([...base, "--key", "alice.key"], dir);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("needs --target-pcr4 HEX");
    const short = await runTss([...base, "--target-pcr4", "ab", "--key", "alice.key"], dir);
    expect(short.status).not.toBe(0);
    expect(short.stderr).toContain("--target-pcr4 must be 96 hex characters");
  });
});
