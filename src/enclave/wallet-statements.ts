/**
 * The enclave's half of wallet statements (src/shared/wire/wallet-statement.ts):
 * at the end of a DKG or refresh it states what the new share belongs to and
 * signs that with its attested Ed25519 channel key. Every field comes from
 * the share the core produced and the policy the enclave sealed with it,
 * never from the host. The channel key also signs peer-envelope broadcasts;
 * the statement's own domain label keeps the two kinds of signed bytes apart.
 */
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  publicPackageHash,
} from "../shared/wire/wallet-statement.ts";
import { packageInfo, type KeyShare } from "./dkls23/binding.ts";
import type { TrustedPolicy } from "./approvals.ts";

/** Signs `message` with the enclave's channel key (PeerSessions.signWithChannelKey). */
export type ChannelSigner = (message: Uint8Array) => Uint8Array;

/** The signed statement for `share` of `walletId` (encoding || Ed25519 signature). */
export function signedWalletStatement(
  sign: ChannelSigner,
  walletId: string,
  share: KeyShare,
  policy: TrustedPolicy | null,
): Uint8Array {
  const pkg = share.publicPackage();
  const info = packageInfo(pkg);
  const encoding = encodeWalletStatement({
    walletId,
    threshold: info.threshold,
    parties: info.parties,
    partyIndex: share.index,
    generation: share.generation,
    publicKey: share.publicKey,
    chainCode: info.chainCode,
    publicPackageHash: publicPackageHash(pkg),
    policyHash: policy?.hash ?? null,
  });
  return encodeSignedWalletStatement(encoding, sign(encoding));
}
