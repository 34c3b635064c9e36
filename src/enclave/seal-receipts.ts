/**
 * The enclave's half of seal receipts (src/shared/wire/seal-receipt.ts). At
 * SEAL_SHARE each enclave signs, with the channel key its peers admitted for
 * the session, that it sealed its share of that session; at ACTIVATE_SHARE
 * it activates the pending share only with a valid receipt from every party
 * of the session, each checked against that party's channel key of this very
 * session (kept with the pending share: peer-envelope.ts peerSigningKeys) and
 * naming this session, wallet, generation and public package.
 *
 * Why: the hosts commit a DKG/refresh all-or-nothing (docs/ARCHITECTURE.md,
 * the commit rule) only if the coordinator tells the truth that all n
 * persisted. A coordinator that skips one holder's persist and commits the
 * others would leave them on two generations, and then the one that never
 * stored is named stale at the next phase 2 although it did nothing wrong.
 * With receipts, an honest holder's enclave refuses that commit: the holder
 * that was skipped never sealed, so its receipt does not exist. A host hands
 * its receipt on only after it stored the sealed share, so n receipts mean n
 * holders stored (an honest host's word; a compromised host can only harm its
 * own node's share, which it holds anyway).
 *
 * Any flaw refuses the activation with bad_request and leaves the share
 * pending, so the holder settles from its peers later.
 */
import { channelSignatureValid } from "./channel-signature.ts";
import { bytesEqual } from "../attestation/verifier.ts";
import {
  encodeSealReceipt,
  encodeSignedSealReceipt,
  parseSignedSealReceiptUnverified,
  type SealReceipt,
  type SealReceiptCeremony,
} from "../shared/wire/seal-receipt.ts";
import { MAX_PARTIES } from "../shared/wire/protocol-message.ts";
import { EnclaveError } from "./errors.ts";
import type { ChannelSigner } from "./wallet-statements.ts";

/** What a pending share keeps of its session to sign and check receipts. */
export interface ReceiptSession {
  ceremony: SealReceiptCeremony;
  /** Every party's attested channel key of the session, this enclave's own included. */
  keys: ReadonlyMap<number, Uint8Array>;
  sign: ChannelSigner;
}

/** This enclave's receipt for the share it sealed (`subject` names it). */
export function ownSealReceipt(session: ReceiptSession, subject: SealReceipt): Uint8Array {
  const encoding = encodeSealReceipt(subject);
  return encodeSignedSealReceipt(encoding, session.sign(encoding));
}

function refuse(message: string): never {
  throw new EnclaveError("bad_request", `seal receipts refused: ${message}`);
}

/**
 * Checks that `receipts` holds exactly one valid receipt from every party of the session
 * for `subject` (partyIndex aside); any flaw: bad_request.
 */
export function verifySealReceipts(
  receipts: unknown,
  subject: SealReceipt,
  session: ReceiptSession,
): void {
  const n = session.keys.size;
  if (!Array.isArray(receipts) || receipts.length !== n || n > MAX_PARTIES)
    refuse(`needs one receipt from each of the session's ${n} parties`);
  const seen = new Set<number>();
  for (let k = 0; k < receipts.length; k++) {
    let parsed;
    try {
      parsed = parseSignedSealReceiptUnverified(receipts[k]);
    } catch (e) {
      refuse(`receipt ${k}: ${(e as Error).message}`);
    }
    const r = parsed.receipt;
    const key = session.keys.get(r.partyIndex);
    if (key === undefined) refuse(`receipt ${k} names party ${r.partyIndex}, not in the session`);
    if (seen.has(r.partyIndex)) refuse(`party ${r.partyIndex} appears twice`);
    seen.add(r.partyIndex);
    if (!channelSignatureValid(parsed.signature, parsed.encoding, key))
      refuse(`party ${r.partyIndex}'s receipt is not signed by its channel key of the session`);
    if (
      r.ceremony !== subject.ceremony ||
      r.walletId !== subject.walletId ||
      r.generation !== subject.generation ||
      !bytesEqual(r.sessionId, subject.sessionId) ||
      !bytesEqual(r.publicPackageHash, subject.publicPackageHash)
    )
      refuse(
        `party ${r.partyIndex}'s receipt is for another session, wallet, generation or package`,
      );
  }
}
