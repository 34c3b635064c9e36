/**
 * A wallet and a real signature over one digest for tests that drive the real request handler
 * with participants that play the phases without a protocol (ceremony-end-retry.test.ts,
 * sign-record.test.ts): the coordinator's check of the combined signature passes.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";

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
