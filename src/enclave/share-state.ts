/**
 * The enclave's half of share-state statements (src/shared/wire/share-state.ts).
 * At the start of a sign or refresh each participant signs what it loaded
 * (wallet, generation, public package hash, policy hash) for this session with
 * its attested channel key; at phase 2, before its core reads any peer
 * message, each checks one statement from every other participant against
 * that participant's channel key of this session and compares.
 *
 * What decides is only what enclaves signed: the hosts relay the statements
 * (and could drop, swap or replay them, each of which aborts here), and the
 * generation a host or coordinator claims decides nothing. Whoever holds a
 * generation below the highest one in the session is stale: every enclave
 * names that node (the stale enclave names itself), so the blame agrees.
 * Party blame is only ever for what a validly signed statement of this
 * session says (a stale generation, another package or policy): a refusal
 * of the relaying itself (missing, duplicated, forged or foreign statements)
 * names nobody, since only the hosts could have produced it.
 */
import { channelSignatureValid } from "./channel-signature.ts";
import { bytesEqual } from "../attestation/verifier.ts";
import {
  encodeShareState,
  encodeSignedShareState,
  parseSignedShareStateUnverified,
  type ShareState,
  type ShareStateCeremony,
} from "../shared/wire/share-state.ts";
import { publicPackageHash } from "../shared/wire/wallet-statement.ts";
import type { TrustedPolicy } from "./approvals.ts";
import type { KeyShare } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { ChannelSigner } from "./wallet-statements.ts";

/** What this enclave stated at start, kept with the session until phase 2 checks its peers'. */
export interface OwnShareState {
  state: ShareState;
  /** encoding || signature, returned in the START reply for the host to relay. */
  signed: Uint8Array;
}

/** Signs this enclave's share-state statement for session `sessionId`. */
export function ownShareState(
  sign: ChannelSigner,
  sessionId: Uint8Array,
  ceremony: ShareStateCeremony,
  walletId: string,
  share: KeyShare,
  policy: TrustedPolicy | null,
): OwnShareState {
  return ownShareStateOf(sign, sessionId, ceremony, walletId, share, share.publicPackage(), policy);
}

/**
 * The same for a party that holds no loaded share: a repaired one
 * (lifecycle-repair.ts), which states the index and generation of its hollow
 * share and the package it was assembled against.
 */
export function ownShareStateOf(
  sign: ChannelSigner,
  sessionId: Uint8Array,
  ceremony: ShareStateCeremony,
  walletId: string,
  held: { index: number; generation: number },
  publicPackage: Uint8Array,
  policy: TrustedPolicy | null,
): OwnShareState {
  const state: ShareState = {
    sessionId: sessionId.slice(),
    ceremony,
    walletId,
    partyIndex: held.index,
    generation: held.generation,
    publicPackageHash: publicPackageHash(publicPackage),
    policyHash: policy?.hash ?? null,
  };
  const encoding = encodeShareState(state);
  return { state, signed: encodeSignedShareState(encoding, sign(encoding)) };
}

/**
 * Checks the statements relayed in the phase-2 step: exactly one per peer of
 * the session, each signed by that peer's attested channel key, naming this
 * session, ceremony and wallet. Then compares generations (lower than the
 * session's highest: stale_share naming that party, possibly this one) and,
 * at one generation, the public package and policy (ceremony_failed).
 * `peerKeys`: each peer's Ed25519 channel key, by party index.
 */
export function checkPeerShareStates(
  own: ShareState,
  relayed: unknown,
  peerKeys: ReadonlyMap<number, Uint8Array>,
): void {
  if (!Array.isArray(relayed) || relayed.length !== peerKeys.size)
    throw new EnclaveError(
      "ceremony_failed",
      `the phase-2 step must carry one share-state statement from each of the ${peerKeys.size} other participants`,
    );
  const seen = new Map<number, ShareState>();
  for (const signed of relayed) {
    const s = verified(signed, own, peerKeys);
    if (seen.has(s.partyIndex))
      throw new EnclaveError(
        "ceremony_failed",
        `party ${s.partyIndex}'s share-state statement was relayed twice`,
      );
    seen.set(s.partyIndex, s);
  }
  // As many as peers, none twice, each an admitted peer: every peer is there.
  const all = [own, ...seen.values()];
  const highest = Math.max(...all.map((s) => s.generation));
  if (own.generation < highest) {
    const ahead = all.find((s) => s.generation === highest)!;
    throw new EnclaveError(
      "stale_share",
      `wallet ${own.walletId}: this enclave (party ${own.partyIndex}) loaded generation ${own.generation}, party ${ahead.partyIndex} holds generation ${highest}`,
      own.partyIndex,
    );
  }
  for (const s of seen.values()) {
    if (s.generation < highest)
      throw new EnclaveError(
        "stale_share",
        `wallet ${own.walletId}: party ${s.partyIndex} loaded generation ${s.generation}, this enclave (party ${own.partyIndex}) holds generation ${highest}`,
        s.partyIndex,
      );
    const samePolicy =
      s.policyHash === null || own.policyHash === null
        ? s.policyHash === own.policyHash
        : bytesEqual(s.policyHash, own.policyHash);
    if (!bytesEqual(s.publicPackageHash, own.publicPackageHash) || !samePolicy)
      throw new EnclaveError(
        "ceremony_failed",
        `wallet ${own.walletId} generation ${highest}: party ${s.partyIndex} loaded another ${samePolicy ? "public key package" : "approval policy"} than this enclave`,
        s.partyIndex,
      );
  }
}

/**
 * One relayed statement, parsed and its signature checked against the peer it
 * names. Its refusals blame no party: an unsigned, misnamed or out-of-session
 * statement (or one relayed twice) is something only a relaying host or the
 * coordinator could hand in, and naming the party it claims to come from would
 * let them frame an honest node. This enclave cannot name the coordinator (it
 * knows peers, not who coordinates), so the refusal carries no blame at all.
 */
function verified(
  signed: unknown,
  own: ShareState,
  peerKeys: ReadonlyMap<number, Uint8Array>,
): ShareState {
  let parsed;
  try {
    parsed = parseSignedShareStateUnverified(signed);
  } catch (e) {
    throw new EnclaveError(
      "ceremony_failed",
      `a relayed share-state statement does not parse: ${(e as Error).message}`,
    );
  }
  const s = parsed.statement;
  const key = peerKeys.get(s.partyIndex);
  if (!key)
    throw new EnclaveError(
      "ceremony_failed",
      `a relayed share-state statement names party ${s.partyIndex}, not another participant of this session`,
    );
  if (!channelSignatureValid(parsed.signature, parsed.encoding, key))
    throw new EnclaveError(
      "ceremony_failed",
      `party ${s.partyIndex}'s share-state statement does not carry its channel key's valid signature`,
    );
  // Signed by the peer, so a mismatch is a statement replayed from elsewhere: refused like a replayed message.
  if (
    !bytesEqual(s.sessionId, own.sessionId) ||
    s.ceremony !== own.ceremony ||
    s.walletId !== own.walletId
  )
    throw new EnclaveError(
      "ceremony_failed",
      `party ${s.partyIndex}'s share-state statement belongs to another session, ceremony or wallet`,
    );
  return s;
}
