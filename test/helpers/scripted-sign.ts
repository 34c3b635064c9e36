/**
 * A wallet and a real signature over one digest for tests that drive the real request handler
 * with participants that play the phases without a protocol (ceremony-end-retry.test.ts,
 * sign-record.test.ts): the coordinator's check of the combined signature passes; and the
 * two-node coordinator both drive.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NodeHost } from "../../src/host/node-host.ts";
import type { Participant } from "../../src/host/participant.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import type { Db } from "../../src/host/store/index.ts";
import type { HeldWallet, NodeOpName } from "../../src/shared/wire/node-rpc.ts";

export function scriptedSignature(walletId: string, digestHex: string) {
  const sk = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(sk, true);
  const rec = secp256k1.sign(Buffer.from(digestHex, "hex"), sk, {
    prehash: false,
    format: "recovered",
  });
  // noble's recovered form is recovery id || r || s; the enclave's is r || s || recovery id.
  const signature = Uint8Array.of(...rec.slice(1), rec[0]!);
  /** What `nodeId` answers as holder of party `partyIndex` of the 2-of-2 wallet. */
  const held = (nodeId: string, partyIndex: number): HeldWallet => ({
    walletId,
    nodeId,
    partyIndex,
    generation: 0,
    threshold: 2,
    parties: 2,
    publicKey,
    publicPackage: Uint8Array.of(1),
    chainCode: new Uint8Array(32),
  });
  return { publicKey, signature, held };
}

/**
 * Coordinator "a" (a real request handler on `db`, itself the signer `a`) with participant `b`:
 * node a answers the planning round from its own record of the request, as NodeHost does; b
 * keeps none.
 */
export function scriptedCoordinator(
  db: Db,
  held: (nodeId: string, partyIndex: number) => HeldWallet,
  a: Participant,
  b: Participant,
): RequestHandler {
  const members: Record<string, Participant> = { a, b };
  const peers: PeerDirectory = {
    liveNodes: () => [
      { nodeId: "a", since: 1 },
      { nodeId: "b", since: 2 },
    ],
    participant: (id) => members[id]!,
    ask: (async (nodeId: string, op: NodeOpName, args: { requestId: string; client?: string }) =>
      op === "requestContext"
        ? {
            request:
              nodeId === "a"
                ? NodeHost.prototype.lookupRequest.call({ db }, "sign", args.requestId, args.client)
                : null,
            wallet: held(nodeId, nodeId === "a" ? 1 : 2),
          }
        : null) as PeerDirectory["ask"],
  };
  const self = { nodeId: "a", db } as unknown as NodeHost;
  return new RequestHandler(self, peers, { phaseTimeoutMs: 5_000 });
}

/** One `sign` request through `handler` as client user `client`; what it answered. */
export async function scriptedSign(
  handler: RequestHandler,
  o: { client: string; requestId: string; walletId: string; digestHex: string },
): Promise<{ fail?: unknown; done?: unknown }> {
  const out: { fail?: unknown; done?: unknown } = {};
  const reply: Reply = {
    client: o.client,
    progress: () => {},
    done: (r) => (out.done = r),
    fail: (e) => (out.fail = e),
  };
  await handler.handle(
    "sign",
    { requestId: o.requestId, walletId: o.walletId, digest: o.digestHex },
    reply,
  );
  return out;
}
