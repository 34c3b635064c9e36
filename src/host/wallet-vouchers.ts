/**
 * What a node relays so that a client can check a wallet for itself: each
 * holder's enclave-signed wallet statement with the attestation document
 * binding the key that signed it (src/shared/wire/wallet-statement.ts),
 * as hex, in party order. Nothing here is trusted or checked by the host:
 * the SDK verifies it (src/client/wallet-verification.ts).
 */
import { toHex } from "../shared/hex.ts";
import type { HeldWallet } from "../shared/wire/node-rpc.ts";

export interface WalletVoucher {
  nodeId: string;
  partyIndex: number;
  statement: string;
  attestation: string;
}

export function walletVouchers(holders: readonly HeldWallet[]): WalletVoucher[] {
  return [...holders]
    .sort((a, b) => a.partyIndex - b.partyIndex)
    .flatMap((h) =>
      h.statement === undefined || h.attestation === undefined
        ? []
        : [
            {
              nodeId: h.nodeId,
              partyIndex: h.partyIndex,
              statement: toHex(h.statement),
              attestation: toHex(h.attestation),
            },
          ],
    );
}
