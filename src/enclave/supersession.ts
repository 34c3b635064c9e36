/**
 * SUPERSEDED_SHARE (enclave-ops.ts; issue 11 item 1): the verdict a lost node's host needs
 * before it deletes its rows of a wallet whose party a share repair moved to another node.
 * The host gathers the evidence from its peers, which may lie (a compromised host, or the
 * broker forging every answer); so it is this enclave, with its own attestation roots and
 * image list, that decides whether the evidence proves it. It proves it when all of this holds:
 *
 * 1. The nonce is one this enclave issued for the wallet (SUPERSESSION_NONCE) less than
 *    NONCE_TTL_MS ago; it is taken back by this call, whatever the verdict (single use).
 * 2. The statements are a valid set (commit-certificate.ts verifiedStatementSet): n wallet
 *    statements of one generation g', indices exactly 1..n, each signed by the channel key of
 *    an attested enclave of an allowed image, n distinct enclaves, agreeing on everything but
 *    the index. Checked once; every proof below is checked against it.
 * 3. Of the same wallet: the wallet id and the group public key of the row the host names, at
 *    a generation newer than that row's (an older or equal set, a replay of the row's own
 *    generation, or another wallet's set proves nothing).
 * 4. Live now: one active proof (active-proof.ts) for every index 1..n, each for this nonce,
 *    this wallet and key at g' and its own index, of the statements' sharing (their n and
 *    public package hash, so a share of another sharing of that generation never stands in for
 *    one of this set), signed by the channel key of the enclave
 *    whose statement holds that index. An enclave signs one only for the share it holds loaded
 *    at that moment (PROVE_ACTIVE, proveActive below). Statements (signed at phase 4, before
 *    any commit) and seal receipts (every host stored, not committed) can be replayed from a
 *    session that was later rolled back everywhere; after such a rollback the honest holders
 *    hold g loaded, not g', and sign nothing at g' for a fresh nonce.
 * 5. Moved to another machine: the statement at the row's party index is signed by an enclave
 *    whose attested PCR4 (its node identity) is present and not all zero, and this enclave's
 *    own PCR4 is at no index of g' (at the row's index it is a pending share to settle, at
 *    another this machine still holds the wallet: never a reason to delete). Or, when g' has
 *    fewer than the row's index parties (a reshare left this holder out of a smaller
 *    committee, wallet-reshare.ts): every index of g' is signed by an enclave attested with a
 *    node identity, none of them this machine's, so g' is a committed sharing of the same key
 *    at a higher generation that does not include this machine.
 * 6. This enclave holds no pending share of the wallet, and a loaded share of it, if any, is
 *    the row named (same index, generation, key).
 *
 * What holds, exactly: every enclave of g' held g' loaded after the nonce was issued. Its
 * host chose what to load: LOAD_SHARE opens any sealed share the host hands in, and this
 * enclave cannot tell a row its host committed from one still pending (the sealed bytes are
 * the same), so a compromised host can make its own enclave prove a pending share. That is
 * one index. An honest host loads only its active row at the wallet's current generation
 * (node-host.ts prepare, shares-repo.ts currentShare), which it has only once it committed
 * g'; so with every index required (n of n), one compromised host and the broker together
 * cannot produce a verdict for a g' that the honest holders did not commit. The seal
 * receipts of g' prove less than this (they are signed before any commit) and are not asked
 * for. A holder whose enclave restarted since g' signs with a new channel key, not its
 * statement's: no verdict then, and the rows stay (availability, not safety).
 *
 * On a verdict the enclave drops its loaded share of the wallet and refuses every share of it
 * below g' from then on (shares.ts certified floor), as after a commit certificate. Memory
 * only, like that floor. Nothing here is secret: nonces, statements, documents and proofs are
 * public.
 */
import { randomBytes } from "node:crypto";
import { bytesEqual } from "../attestation/verifier.ts";
import { COMPRESSED_KEY_BYTES } from "../shared/public-key.ts";
import {
  encodeActiveProof,
  encodeSignedActiveProof,
  parseSignedActiveProofUnverified,
  ACTIVE_PROOF_NONCE_BYTES,
} from "../shared/wire/active-proof.ts";
import {
  PROVE_ACTIVE_FIELDS,
  SUPERSEDED_SHARE_FIELDS,
  SUPERSESSION_NONCE_FIELDS,
  type ProveActiveReply,
  type ProveActiveRequest,
  type SupersededShareReply,
  type SupersededShareRequest,
  type SupersessionNonceReply,
  type SupersessionNonceRequest,
} from "../shared/wire/enclave-ops.ts";
import { MAX_PARTIES } from "../shared/wire/protocol-message.ts";
import { channelSignatureValid } from "./channel-signature.ts";
import { verifiedStatementSet, type CertificateTrust } from "./commit-certificate.ts";
import { EnclaveError } from "./errors.ts";
import { needBytes, needInt, needOnlyFields, needWalletId } from "./request-checks.ts";
import type { ShareTable } from "./shares.ts";
import type { ChannelSigner } from "./wallet-statements.ts";
import { packageInfo } from "./dkls23/binding.ts";
import { publicPackageHash } from "../shared/wire/wallet-statement.ts";

const MAX_U32 = 2 ** 32 - 1;
/** How long an issued nonce may wait for its SUPERSEDED_SHARE: gathering n proofs takes seconds. */
export const NONCE_TTL_MS = 60_000;
/** Nonces outstanding at once (one per wallet; the oldest goes first). */
export const MAX_OPEN_NONCES = 256;

export interface SupersessionTrust extends Pick<CertificateTrust, "attested"> {
  /** This enclave's own node identity (PCR4). */
  ownPcr4: Uint8Array;
}

function refuse(message: string): never {
  throw new EnclaveError("bad_request", `supersession refused: ${message}`);
}

/** The nonces this enclave issued, one per wallet, each taken back by its one SUPERSEDED_SHARE. */
export class SupersessionNonces {
  private readonly open = new Map<string, { nonce: Uint8Array; expires: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(req: SupersessionNonceRequest): SupersessionNonceReply {
    needOnlyFields(req, SUPERSESSION_NONCE_FIELDS, "SUPERSESSION_NONCE");
    const walletId = needWalletId(req.walletId);
    // A new nonce replaces the wallet's old one: at most one check per wallet is in flight.
    this.open.delete(walletId);
    if (this.open.size >= MAX_OPEN_NONCES) this.open.delete(this.open.keys().next().value!);
    const nonce = Uint8Array.from(randomBytes(ACTIVE_PROOF_NONCE_BYTES));
    this.open.set(walletId, { nonce, expires: this.now() + NONCE_TTL_MS });
    return { nonce: Uint8Array.from(nonce) };
  }

  /** Takes the wallet's nonce back; refuses one this enclave did not issue, or issued too long ago. */
  take(walletId: string, nonce: unknown): Uint8Array {
    const given = needBytes(nonce, "nonce", ACTIVE_PROOF_NONCE_BYTES, ACTIVE_PROOF_NONCE_BYTES);
    const open = this.open.get(walletId);
    this.open.delete(walletId);
    if (!open || open.expires < this.now() || !bytesEqual(open.nonce, given))
      refuse("the nonce is not one this enclave issued for the wallet, or it expired");
    return open.nonce;
  }
}

/**
 * PROVE_ACTIVE: signs, for `nonce`, the share of the wallet this enclave holds loaded now. A
 * loaded share came in by LOAD_SHARE (opened from what the host handed in) or ACTIVATE_SHARE
 * (with every holder's seal receipt); never a share still pending here (shares.ts keeps those
 * apart until activation). See the header for what a host can still choose.
 */
export function proveActive(
  req: ProveActiveRequest,
  shares: ShareTable,
  sign: ChannelSigner,
): ProveActiveReply {
  needOnlyFields(req, PROVE_ACTIVE_FIELDS, "PROVE_ACTIVE");
  const walletId = needWalletId(req.walletId);
  const nonce = needBytes(req.nonce, "nonce", ACTIVE_PROOF_NONCE_BYTES, ACTIVE_PROOF_NONCE_BYTES);
  const loaded = shares.current(walletId);
  if (!loaded)
    throw new EnclaveError(
      "share_not_loaded",
      `no share of wallet ${walletId} is loaded in this enclave`,
    );
  shares.refuseIfStale(walletId, loaded.generation);
  // The sharing's own package, as its wallet statement names it (wallet-statements.ts).
  const pkg = loaded.share.publicPackage();
  const encoding = encodeActiveProof({
    nonce,
    walletId,
    partyIndex: loaded.partyIndex,
    generation: loaded.generation,
    publicKey: loaded.publicKey,
    parties: packageInfo(pkg).parties,
    publicPackageHash: publicPackageHash(pkg),
  });
  return { proof: encodeSignedActiveProof(encoding, sign(encoding)) };
}

/** Checks the evidence (see the header); on a verdict drops the superseded share. Any flaw: bad_request. */
export function verifySupersession(
  req: SupersededShareRequest,
  shares: ShareTable,
  nonces: SupersessionNonces,
  trust: SupersessionTrust,
): SupersededShareReply {
  needOnlyFields(req, SUPERSEDED_SHARE_FIELDS, "SUPERSEDED_SHARE");
  const walletId = needWalletId(req.walletId);
  // First: whatever else is wrong, this nonce is spent.
  const nonce = nonces.take(walletId, req.nonce);
  const partyIndex = needInt(req.partyIndex, "partyIndex", 1, MAX_PARTIES);
  const generation = needInt(req.generation, "generation", 0, MAX_U32);
  const publicKey = needBytes(
    req.publicKey,
    "publicKey",
    COMPRESSED_KEY_BYTES,
    COMPRESSED_KEY_BYTES,
  );
  if (shares.hasPending(walletId))
    refuse(`a share of wallet ${walletId} is pending here: settle it, never delete it`);
  const loaded = shares.current(walletId);
  if (
    loaded &&
    (loaded.partyIndex !== partyIndex ||
      loaded.generation !== generation ||
      !bytesEqual(loaded.publicKey, publicKey))
  )
    refuse("the share loaded here is not the row named");
  // Bounded before any signature is checked.
  const proofs = req.activeProofs as unknown;
  if (!Array.isArray(proofs) || proofs.length < 2 || proofs.length > MAX_PARTIES)
    refuse(`needs 2..${MAX_PARTIES} active proofs`);

  const set = verifiedStatementSet(req.statements, req.documents, trust, "supersession");
  const first = set.values().next().value!.statement;
  if (first.walletId !== walletId || !bytesEqual(first.publicKey, publicKey))
    refuse("the statements are of another wallet or key");
  if (first.generation <= generation)
    refuse(`the statements' generation ${first.generation} is not newer than ${generation}`);
  const holder = set.get(partyIndex);
  // Indices are exactly 1..n' (verifiedStatementSet): no holder means the committee is smaller.
  if (!holder && partyIndex <= set.size) refuse(`no statement of party ${partyIndex}`);
  // Left the committee: every seat must be another machine's, so each needs a node identity.
  for (const [p, v] of holder ? [[partyIndex, holder] as const] : set) {
    const id = v.identity.pcr4;
    if (!id || id.every((b) => b === 0))
      refuse(`party ${p}'s enclave is attested without a node identity`);
  }
  for (const [p, v] of set)
    if (v.identity.pcr4 && bytesEqual(v.identity.pcr4, trust.ownPcr4))
      refuse(
        p === partyIndex
          ? `party ${partyIndex} is still held on this machine at generation ${first.generation}`
          : `this machine holds party ${p} of the wallet at generation ${first.generation}: it is still a member`,
      );

  // Live now: every index's enclave holds g' loaded, said for this nonce with its statement's key.
  if (proofs.length !== set.size)
    refuse(`needs one active proof from each of the ${set.size} parties`);
  const proven = new Set<number>();
  for (let k = 0; k < proofs.length; k++) {
    let parsed;
    try {
      parsed = parseSignedActiveProofUnverified(proofs[k]);
    } catch (e) {
      refuse(`active proof ${k}: ${(e as Error).message}`);
    }
    const p = parsed.proof;
    const by = set.get(p.partyIndex);
    if (!by) refuse(`active proof ${k} names party ${p.partyIndex}, not in the set`);
    if (proven.has(p.partyIndex)) refuse(`party ${p.partyIndex}'s active proof appears twice`);
    proven.add(p.partyIndex);
    if (!channelSignatureValid(parsed.signature, parsed.encoding, by.identity.ed25519Public))
      refuse(`party ${p.partyIndex}'s active proof is not signed by its statement's channel key`);
    if (!bytesEqual(p.nonce, nonce))
      refuse(`party ${p.partyIndex}'s active proof is for another nonce`);
    if (p.walletId !== walletId || !bytesEqual(p.publicKey, publicKey))
      refuse(`party ${p.partyIndex}'s active proof is of another wallet or key`);
    if (p.generation !== first.generation)
      refuse(
        `party ${p.partyIndex}'s enclave holds generation ${p.generation} loaded, not ${first.generation}`,
      );
    // The same sharing the statements name, not another at that generation and index.
    if (p.parties !== first.parties || !bytesEqual(p.publicPackageHash, first.publicPackageHash))
      refuse(`party ${p.partyIndex}'s active proof is of another sharing than the statements'`);
  }

  shares.supersede(walletId, first.generation);
  return {
    walletId,
    partyIndex,
    generation,
    supersededBy: first.generation,
    ...(holder ? { holderPcr4: Uint8Array.from(holder.identity.pcr4!) } : {}),
  };
}
