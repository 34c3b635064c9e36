/**
 * Stand-ins for holders' enclaves in client tests: a per-boot channel key
 * and a simulated-NSM attestation document binding it, and the signed
 * wallet statement such an enclave would return (src/enclave/wallet-statements.ts).
 */
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import type { DevelopmentPki } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import type { WalletVoucher } from "../../src/client/wallet-verification.ts";
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  type WalletStatement,
} from "../../src/shared/wire/wallet-statement.ts";

export interface FakeEnclave {
  keys: PeerKeys;
  document: Uint8Array;
}

export function fakeEnclave(pki: DevelopmentPki, image: Uint8Array): FakeEnclave {
  const keys = new PeerKeys();
  const nsm = new SimulatedNsm({ pki, pcrs: { 0: image } });
  return { keys, document: nsm.attest({ userData: keys.channelKeyBinding() }) };
}

/** Party `partyIndex`'s voucher for `statement`, relayed by node-<partyIndex>. */
export function fakeVoucher(e: FakeEnclave, statement: WalletStatement): WalletVoucher {
  const encoding = encodeWalletStatement(statement);
  return {
    nodeId: `node-${statement.partyIndex}`,
    partyIndex: statement.partyIndex,
    statement: encodeSignedWalletStatement(encoding, e.keys.sign(encoding)),
    attestation: e.document,
  };
}
