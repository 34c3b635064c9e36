/**
 * Commit certificates: proof, checkable inside an enclave, that all n holders
 * of a wallet produced one generation. A certificate is the n signed wallet
 * statements of that generation (src/shared/wire/wallet-statement.ts, the
 * ones each enclave signs at the end of a refresh and the host already keeps
 * for clients) and, in the same order, the attestation documents whose
 * channel keys signed them. It is carried as two lists (enclave-ops.ts
 * ACTIVATE_SHARE), no format of its own.
 *
 * Checked: each document chains to this enclave's trusted roots as of its own
 * timestamp and runs an allowed image (peer-sessions.ts attestedAtIssue), each
 * statement carries its document's channel key's valid signature, the n
 * statements agree on everything but the party index, their indices are
 * exactly 1..n, their keys are n distinct enclaves, this enclave's own
 * statement is signed by its own key of this boot, and the subject (wallet,
 * generation, public package) is the share being activated.
 *
 * Why it is worth having: an enclave that verified a certificate for
 * generation g refuses every share of the wallet below g (shares.ts), so a
 * host that rolls its database back and reloads the old share into the same
 * enclave is refused there. Memory only: a restarted enclave knows nothing,
 * and then the share-state statements of every sign and refresh
 * (share-state.ts) are what names the stale node.
 */
import { channelSignatureValid } from "./channel-signature.ts";
import { bytesEqual } from "../attestation/verifier.ts";
import { toHex } from "../shared/hex.ts";
import {
  parseSignedWalletStatementUnverified,
  type WalletStatement,
} from "../shared/wire/wallet-statement.ts";
import { MAX_PARTIES } from "../shared/wire/protocol-message.ts";
import { EnclaveError } from "./errors.ts";
import type { PeerIdentity } from "./peer-attestation.ts";

/** What a certificate must certify: the share about to be activated. */
export interface CertificateSubject {
  walletId: string;
  generation: number;
  partyIndex: number;
  publicPackageHash: Uint8Array;
}

export interface CertificateTrust {
  /** Verifies one document as of its timestamp (PeerSessions.attestedAtIssue). */
  attested(doc: Uint8Array): PeerIdentity;
  /** This enclave's own channel key of this boot. */
  ownKey: Uint8Array;
}

function refuse(message: string): never {
  throw new EnclaveError("bad_request", `commit certificate refused: ${message}`);
}

/** One verified statement of a set, with the attested enclave that signed it. */
export interface VerifiedStatement {
  statement: WalletStatement;
  identity: PeerIdentity;
}

/**
 * Checks n signed statements and their documents as one set: each document attested as of its
 * timestamp, each statement signed by its document's channel key, indices exactly 1..n, n
 * distinct enclaves, all agreeing on everything but the index. Any flaw: bad_request. By
 * party index. Shared with supersession.ts, which checks another subject.
 */
export function verifiedStatementSet(
  statements: unknown,
  documents: unknown,
  trust: Pick<CertificateTrust, "attested">,
  /** What the refusals name: the evidence being checked. */
  what = "commit certificate",
): Map<number, VerifiedStatement> {
  function refuse(message: string): never {
    throw new EnclaveError("bad_request", `${what} refused: ${message}`);
  }
  if (
    !Array.isArray(statements) ||
    !Array.isArray(documents) ||
    statements.length !== documents.length ||
    statements.length < 2 ||
    statements.length > MAX_PARTIES
  )
    refuse(`needs 2..${MAX_PARTIES} statements and as many attestation documents`);
  const byParty = new Map<number, VerifiedStatement>();
  const keys = new Set<string>();
  for (let k = 0; k < statements.length; k++) {
    let parsed;
    try {
      parsed = parseSignedWalletStatementUnverified(statements[k]);
    } catch (e) {
      refuse(`statement ${k}: ${(e as Error).message}`);
    }
    let identity: PeerIdentity;
    try {
      identity = trust.attested(documents[k] as Uint8Array);
    } catch (e) {
      refuse(`document ${k}: ${(e as Error).message}`);
    }
    if (!channelSignatureValid(parsed.signature, parsed.encoding, identity.ed25519Public))
      refuse(`statement ${k} is not signed by its document's channel key`);
    const s = parsed.statement;
    if (byParty.has(s.partyIndex)) refuse(`party ${s.partyIndex} appears twice`);
    const key = toHex(identity.ed25519Public);
    if (keys.has(key)) refuse(`one enclave signed two statements`);
    keys.add(key);
    byParty.set(s.partyIndex, { statement: s, identity });
  }
  const first = byParty.values().next().value!.statement;
  if (first.parties !== byParty.size)
    refuse(`${byParty.size} statements for ${first.parties} parties`);
  for (let i = 1; i <= first.parties; i++)
    if (!byParty.has(i)) refuse(`no statement of party ${i}`);
  for (const { statement: s } of byParty.values())
    if (!sameWallet(s, first))
      refuse(`party ${s.partyIndex}'s statement disagrees with party ${first.partyIndex}'s`);
  return byParty;
}

/** Checks a certificate for `subject`; returns the generation it certifies. Any flaw: bad_request, nothing remembered. */
export function verifyCommitCertificate(
  statements: unknown,
  documents: unknown,
  subject: CertificateSubject,
  trust: CertificateTrust,
): number {
  const byParty = verifiedStatementSet(statements, documents, trust);
  const own = byParty.get(subject.partyIndex);
  if (own && !bytesEqual(own.identity.ed25519Public, trust.ownKey))
    refuse(`party ${subject.partyIndex}'s statement is not this enclave's`);
  const first = byParty.values().next().value!.statement;
  if (
    first.walletId !== subject.walletId ||
    first.generation !== subject.generation ||
    !bytesEqual(first.publicPackageHash, subject.publicPackageHash)
  )
    refuse(
      `it certifies another wallet, generation or public key package than the share activated`,
    );
  return first.generation;
}

/** Every field but the party index. */
function sameWallet(a: WalletStatement, b: WalletStatement): boolean {
  const policy =
    a.policyHash === null || b.policyHash === null
      ? a.policyHash === b.policyHash
      : bytesEqual(a.policyHash, b.policyHash);
  return (
    policy &&
    a.walletId === b.walletId &&
    a.threshold === b.threshold &&
    a.parties === b.parties &&
    a.generation === b.generation &&
    bytesEqual(a.publicKey, b.publicKey) &&
    bytesEqual(a.chainCode, b.chainCode) &&
    bytesEqual(a.publicPackageHash, b.publicPackageHash)
  );
}
