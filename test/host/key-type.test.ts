/**
 * Key types on the host side of the contract (src/shared/wire/key-type.ts, docs/mqtt-api.md
 * "Key types"): the request handler refuses a key type it does not support before it asks any
 * node anything, and its wallet answers name the key type in the shape the SDK's strict parser
 * requires. The peer directory is a stand-in that records every call: a refused request must
 * make none.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { describe, expect, it } from "vitest";
import { parseWalletInfo, parseWallets } from "../../src/client/responses.ts";
import type { NodeHost } from "../../src/host/node-host.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import { DEFAULT_KEY_TYPE, KEY_TYPES, withKeyType } from "../../src/shared/wire/key-type.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";

const publicKey = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
const held = (nodeId: string, partyIndex: number): HeldWallet => ({
  walletId: "w_1",
  threshold: 2,
  parties: 3,
  publicKey,
  publicPackage: new Uint8Array(8),
  chainCode: new Uint8Array(32),
  nodeId,
  generation: 0,
  partyIndex,
});
const HOLDERS = [held("a", 1), held("b", 2), held("c", 3)];

/** A handler whose peers hold w_1 (party i on node i), recording every node call. */
function handler() {
  const asked: string[] = [];
  const peers = {
    liveNodes: () => HOLDERS.map((h) => ({ nodeId: h.nodeId, since: 0 })),
    ask: async (nodeId: string, op: string) => {
      asked.push(`${nodeId}:${op}`);
      if (op === "walletInfo") return HOLDERS.find((h) => h.nodeId === nodeId) ?? null;
      if (op === "listWallets") return HOLDERS.filter((h) => h.nodeId === nodeId);
      return null;
    },
  } as unknown as PeerDirectory;
  const h = new RequestHandler({ nodeId: "a" } as NodeHost, peers, { phaseTimeoutMs: 1_000 });
  const run = async (op: string, body: Record<string, unknown>) => {
    const out: { done?: unknown; fail?: { code: string; message: string } } = {};
    const reply: Reply = {
      client: "client-1",
      progress: () => {},
      done: (r) => (out.done = r),
      fail: (e) => (out.fail = e),
    };
    await h.handle(op, { requestId: "r-1", ...body }, reply);
    return out;
  };
  return { run, asked };
}

const DIGEST = "ab".repeat(32);

describe("the request handler and key types", () => {
  it("refuses an unsupported keyType with bad_request naming the supported ones, before asking any node", async () => {
    const bodies: [string, Record<string, unknown>][] = [
      ["dkg", { threshold: 2, parties: 3 }],
      ["sign", { walletId: "w_1", digest: DIGEST }],
      ["refresh", { walletId: "w_1" }],
      ["policy", { walletId: "w_1", policy: "00" }],
      ["import", { walletId: "w_1" }],
      ["repair", { walletId: "w_1", party: 1, toNode: "d" }],
      ["reshare", { walletId: "w_1", threshold: 2, nodes: ["a", "b"] }],
      ["retire", { walletId: "w_1" }],
      ["wallet", { walletId: "w_1" }],
    ];
    for (const [op, body] of bodies)
      for (const keyType of ["ed25519-eddsa", "SECP256K1-ECDSA", "", 7, null]) {
        const { run, asked } = handler();
        const out = await run(op, { ...body, keyType });
        expect(out.fail?.code, `${op} ${String(keyType)}`).toBe("bad_request");
        expect(out.fail?.message).toMatch(
          /^keyType .* is not supported: it must be one of "secp256k1-ecdsa"$/,
        );
        expect(asked).toEqual([]);
      }
  });

  it("takes the supported key type, named or not, and answers wallets with keyType as the SDK requires", async () => {
    for (const keyType of [undefined, "secp256k1-ecdsa"]) {
      const { run, asked } = handler();
      const out = await run("wallet", { walletId: "w_1", keyType });
      expect(out.fail).toBeUndefined();
      expect(asked.length).toBeGreaterThan(0);
      expect(out.done).toMatchObject({ walletId: "w_1", keyType: "secp256k1-ecdsa" });
      expect(parseWalletInfo(out.done).keyType).toBe("secp256k1-ecdsa");
    }
    const list = await handler().run("wallets", {});
    expect(parseWallets(list.done).wallets.map((w) => w.keyType)).toEqual(["secp256k1-ecdsa"]);
  });
});

describe("key-type.ts", () => {
  it("names secp256k1-ecdsa as the one key type and default", () => {
    expect(KEY_TYPES).toEqual(["secp256k1-ecdsa"]);
    expect(DEFAULT_KEY_TYPE).toBe("secp256k1-ecdsa");
  });

  it("answers a result stored before key types with the default one, and leaves one that names it", () => {
    const old = { walletId: "w_1", publicKey: "02", generation: 2 };
    expect(withKeyType(old)).toEqual({ ...old, keyType: "secp256k1-ecdsa" });
    const named = { walletId: "w_1", publicKey: "02", keyType: "other-curve" };
    expect(withKeyType(named)).toBe(named);
    // Not a wallet or signature answer: nothing to name.
    const other = { nodes: [] };
    expect(withKeyType(other)).toBe(other);
    expect(withKeyType(null)).toBeNull();
    expect(withKeyType([1])).toEqual([1]);
  });
});
