/**
 * The SDK's importKey against a real Mosquitto and a fake node whose
 * "enclave" holds real channel keys (fake-vouchers.ts): the SDK seals to the
 * enclave whose attestation document it verified, for the wallet id, request
 * id, t and n it sends (the fake enclave opens the envelope with the
 * enclave's own code and recovers exactly the key), asks the administrators
 * to approve the import of that envelope (its SHA-256) and the wallet's
 * approvers the refresh, and refuses an answer naming another public key.
 * It refuses a recipient on an image outside the trust, and needs trust at
 * all; the caller's key buffers are wiped in every case. The cluster path is
 * test/integration/key-import.test.ts.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TssClient, TssError } from "../../src/client/index.ts";
import { KeySigner, approverKeyOf } from "../../src/client/signers.ts";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { openImportedKey } from "../../src/enclave/lifecycle-import.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { ethAddress } from "../../src/shared/public-key.ts";
import { parseRequest } from "../../src/shared/wire/approval.ts";
import { type FakeNodeBus, startFakeNodeBus } from "../helpers/fake-node-bus.ts";
import { rejected } from "../helpers/thrown.ts";
import { fakeEnclave } from "./fake-vouchers.ts";

const pki = createDevelopmentPki();
const IMAGE = new Uint8Array(48).fill(0xab);
const OTHER_IMAGE = new Uint8Array(48).fill(0xcd);
const trust = {
  roots: [{ der: pki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
const admin = KeySigner.generate("ed25519");
const alice = KeySigner.generate("ed25519");
const policy = { quorum: 1, approvers: [approverKeyOf(alice)] };

let bus: FakeNodeBus;
let client: TssClient;
let untrusting: TssClient;
/** What the fake node's enclave recovered from the last import's envelope, and what it was sent. */
let opened: { publicKey: string; body: Record<string, unknown> } | null = null;
/** The image the fake node's enclave runs (the test switches it), and that enclave. */
let image = IMAGE;
let enclave = fakeEnclave(pki, IMAGE);

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
  if (op === "importTarget") {
    enclave = fakeEnclave(pki, image);
    return void (await send({
      ok: true,
      result: { nodeId: "node-1", attestation: toHex(enclave.document) },
    }));
  }
  if (op !== "import") return;
  // The enclave's own opening, under the context the request names.
  const shares = await openImportedKey(enclave.keys, fromHex(body.envelope as string), {
    walletId: body.walletId as string,
    requestId: body.requestId as string,
    threshold: body.threshold as number,
    parties: body.parties as number,
  });
  opened = { publicKey: toHex(shares[0]!.publicKey), body };
  for (const s of shares) s.free();
  // A node that answers with a key of its own choosing.
  const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  await send({
    ok: true,
    result: {
      walletId: body.walletId,
      keyType: "secp256k1-ecdsa",
      publicKey: toHex(other),
      address: ethAddress(other),
      threshold: body.threshold,
      parties: body.parties,
      generation: 1,
      nodes: ["node-1", "node-2", "node-3"],
      imported: true,
      dealerNode: "node-1",
    },
  });
}

describe("importKey", () => {
  it("seals to the verified enclave for this import, asks the approvals of that envelope, and refuses an answer with another key", async () => {
    image = IMAGE;
    const secretKey = secp256k1.utils.randomSecretKey();
    const kept = toHex(secretKey);
    const publicKey = toHex(secp256k1.getPublicKey(secretKey, true));
    const e = await rejected(
      TssError,
      client.importKey({
        secretKey,
        threshold: 2,
        parties: 3,
        policy,
        admins: [admin],
        signers: [alice],
        walletId: "w_import_sdk",
        requestId: "import-sdk-1",
      }),
    );
    expect(e.code).toBe("inconsistent_result");
    expect(e.message).toMatch(/not the imported key's/);
    expect(secretKey.every((b) => b === 0)).toBe(true);
    // The enclave recovered exactly the key, for exactly this import.
    expect(opened!.publicKey).toBe(publicKey);
    const body = opened!.body;
    expect([body.walletId, body.threshold, body.parties, body.dealerNode]).toEqual([
      "w_import_sdk",
      2,
      3,
      "node-1",
    ]);
    const approved = parseRequest(fromHex((body.approval as { request: string }).request));
    expect(approved.operation).toBe("import");
    expect(toHex(approved.digest!)).toBe(toHex(sha256(fromHex(body.envelope as string))));
    expect([approved.walletId, approved.requestId, approved.threshold, approved.parties]).toEqual([
      "w_import_sdk",
      "import-sdk-1",
      2,
      3,
    ]);
    const refresh = parseRequest(fromHex((body.refreshApproval as { request: string }).request));
    expect([refresh.operation, refresh.walletId, refresh.requestId]).toEqual([
      "refresh",
      "w_import_sdk",
      "import-sdk-1",
    ]);
    // The plaintext is not in what the SDK sent.
    expect(JSON.stringify(body)).not.toContain(kept);
  });

  it("refuses a recipient enclave on an image outside the trust: nothing is imported", async () => {
    image = OTHER_IMAGE;
    opened = null;
    const secretKey = secp256k1.utils.randomSecretKey();
    const e = await rejected(
      TssError,
      client.importKey({ secretKey, threshold: 2, parties: 3, policy, admins: [admin] }),
    );
    expect(e.code).toBe("unverified_wallet");
    expect(e.message).toMatch(/not on the allow-list/);
    expect(opened).toBeNull();
    expect(secretKey.every((b) => b === 0)).toBe(true);
  });

  it("needs trust to verify the recipient at all", async () => {
    const secretKey = secp256k1.utils.randomSecretKey();
    const chainCode = new Uint8Array(32).fill(9);
    const e = await rejected(
      TssError,
      untrusting.importKey({ secretKey, chainCode, policy, admins: [admin] }),
    );
    expect(e.code).toBe("bad_request");
    expect(e.message).toMatch(/needs ConnectOptions.trust/);
    expect(secretKey.every((b) => b === 0)).toBe(true);
    expect(chainCode.every((b) => b === 0)).toBe(true);
  });
});
