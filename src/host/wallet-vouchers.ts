/**
 * What a node relays so that a client can check a wallet for itself: each
 * holder's enclave-signed wallet statement with the attestation document
 * binding the key that signed it (src/shared/wire/wallet-statement.ts),
 * as hex, in party order. Nothing here is trusted or checked by the host:
 * the SDK verifies it (src/client/wallet-verification.ts).
 *
 * The SDK believes a wallet only with all n holders' statements of one
 * generation, so a holder that is offline (or rolled back) would make the
 * wallet unverifiable for every client that had not verified it before.
 * Each holder therefore keeps its peers' statements of the current
 * generation (the same signed bytes, under the peer's node id) and answers
 * them for the parties no live holder vouches for now:
 *
 *  - at a commit, from the commit certificate, which its own enclave has just
 *    verified against every holder's attestation (keepCertificateStatements);
 *  - from live holders' answers it relays (keepPeerStatements), which only
 *    fill a party it has nothing for, or name a copy it kept unnamed.
 *
 * A relayed copy is exactly as unforgeable as a live one (its enclave's
 * signature, bound to its document), and a stale copy says its generation:
 * only copies of the live holders' generation are answered, and the SDK
 * refuses statements that disagree on anything, so an old statement of an
 * offline holder, relayed by a lying host, fails verification as before.
 */
import { toHex } from "../shared/hex.ts";
import type { HeldWallet } from "../shared/wire/node-rpc.ts";
import { parseSignedWalletStatementUnverified } from "../shared/wire/wallet-statement.ts";
import {
  dropWalletStatementsBefore,
  getWallet,
  getWalletStatement,
  listWalletStatements,
  putWalletStatement,
  renameWalletStatement,
  type Db,
  type HeldWalletStatement,
} from "./store/index.ts";

export interface WalletVoucher {
  nodeId: string;
  partyIndex: number;
  statement: string;
  attestation: string;
}

/** One statement and document, as a peer relayed it or a certificate carried it. */
export interface PeerStatement {
  nodeId: string;
  statement: Uint8Array;
  attestation: Uint8Array;
}

/**
 * The node id a kept copy is filed under until a live holder is seen answering it: a commit
 * certificate names parties, not nodes. A valid node id (vouchers carry node ids), and one no
 * deployment should give a node.
 */
export const unnamedHolder = (partyIndex: number) => `party:${partyIndex}`;
const isUnnamed = (nodeId: string) => /^party:\d+$/.test(nodeId);

/** The party and generation a signed statement names for `walletId`, or null (the host verifies nothing else). */
function statedParty(
  statement: Uint8Array,
  walletId: string,
): { partyIndex: number; generation: number } | null {
  try {
    const s = parseSignedWalletStatementUnverified(statement).statement;
    return s.walletId === walletId ? { partyIndex: s.partyIndex, generation: s.generation } : null;
  } catch {
    return null;
  }
}

/**
 * The vouchers of an answer: every live holder's (`holders`, one generation: the current
 * holders), then for each other party of 1..n the kept copy (`kept`) of that same generation.
 */
export function walletVouchers(
  holders: readonly HeldWallet[],
  kept: readonly HeldWalletStatement[] = [],
): WalletVoucher[] {
  const live = holders.flatMap((h) =>
    h.statement === undefined || h.attestation === undefined
      ? []
      : [
          {
            nodeId: h.nodeId,
            partyIndex: h.partyIndex,
            statement: h.statement,
            attestation: h.attestation,
          },
        ],
  );
  const first = holders[0];
  // Every live voucher as answered (two claiming one party are the SDK's to refuse).
  const all = [...live];
  const covered = new Set(live.map((v) => v.partyIndex));
  if (first !== undefined)
    for (const k of kept) {
      if (k.generation !== first.generation) continue;
      const s = statedParty(k.statement, first.walletId);
      if (!s || s.generation !== first.generation || s.partyIndex > first.parties) continue;
      if (covered.has(s.partyIndex)) continue;
      covered.add(s.partyIndex);
      all.push({ ...k, ...s });
    }
  return all
    .sort((a, b) => a.partyIndex - b.partyIndex)
    .map((v) => ({
      nodeId: v.nodeId,
      partyIndex: v.partyIndex,
      statement: toHex(v.statement),
      attestation: toHex(v.attestation),
    }));
}

/** The wallet's current generation and this node's party in it, when this node holds it with a statement. */
function ownHolding(db: Db, self: string, walletId: string) {
  const w = getWallet(db, walletId);
  if (!w) return null;
  const own = getWalletStatement(db, walletId, self, w.currentGeneration);
  const s = own && statedParty(own.statement, walletId);
  return s && s.generation === w.currentGeneration
    ? { generation: w.currentGeneration, parties: w.parties, partyIndex: s.partyIndex }
    : null;
}

/** The peers' copies this node keeps of the wallet at `generation`, by party index. */
function keptByParty(db: Db, self: string, walletId: string, generation: number) {
  const out = new Map<number, HeldWalletStatement>();
  for (const k of listWalletStatements(db, walletId, generation)) {
    if (k.nodeId === self) continue;
    const s = statedParty(k.statement, walletId);
    if (s && s.generation === generation) out.set(s.partyIndex, k);
  }
  return out;
}

/**
 * After this node committed `generation` with `certificate` (every holder's statement and
 * document, in one order, which its enclave verified before activating): keeps the peers'
 * statements of it and drops the older copies.
 * A copy is filed under the node id this node knew for its party, else unnamed until seen.
 */
export function keepCertificateStatements(
  db: Db,
  self: string,
  walletId: string,
  generation: number,
  certificate: { statements: readonly Uint8Array[]; documents: readonly Uint8Array[] },
): void {
  const own = ownHolding(db, self, walletId);
  if (!own || own.generation !== generation) return;
  // The node id last seen at each party, from the copies of earlier generations.
  const named = new Map<number, string>();
  for (const k of listWalletStatements(db, walletId)) {
    const s = statedParty(k.statement, walletId);
    if (s && k.nodeId !== self && !isUnnamed(k.nodeId)) named.set(s.partyIndex, k.nodeId);
  }
  db.transaction(() => {
    const kept = keptByParty(db, self, walletId, generation);
    certificate.statements.forEach((statement, i) => {
      const attestation = certificate.documents[i];
      const s = statedParty(statement, walletId);
      if (!attestation || !s || s.generation !== generation || s.partyIndex === own.partyIndex)
        return;
      if (s.partyIndex < 1 || s.partyIndex > own.parties) return;
      // A retried commit rewrites the copy it kept; a repaired party's copy may carry its
      // previous node's name until the new holder is seen answering it (keepPeerStatements).
      const nodeId =
        kept.get(s.partyIndex)?.nodeId ?? named.get(s.partyIndex) ?? unnamedHolder(s.partyIndex);
      putWalletStatement(db, { walletId, nodeId, generation, statement, attestation });
    });
    dropPeersBefore(db, self, walletId, generation);
  });
}

/**
 * Peers' statements that this node relayed (a `wallet` answer, a ceremony's result): a copy
 * of the current generation for a party it keeps nothing for is kept; an unnamed copy with the
 * same bytes is named after the node that answered it. A copy it keeps is never replaced from
 * an answer: the certificate's were verified by its enclave, an answer's by nobody.
 */
export function keepPeerStatements(
  db: Db,
  self: string,
  walletId: string,
  peers: readonly PeerStatement[],
): void {
  const own = ownHolding(db, self, walletId);
  if (!own) return;
  const { generation } = own;
  let added = false;
  db.transaction(() => {
    const kept = keptByParty(db, self, walletId, generation);
    for (const p of peers) {
      if (p.nodeId === self || isUnnamed(p.nodeId)) continue;
      const s = statedParty(p.statement, walletId);
      if (!s || s.generation !== generation || s.partyIndex === own.partyIndex) continue;
      if (s.partyIndex < 1 || s.partyIndex > own.parties) continue;
      const old = kept.get(s.partyIndex);
      if (!old) {
        putWalletStatement(db, { walletId, generation, ...p });
        kept.set(s.partyIndex, { ...p, generation });
        added = true;
      } else if (old.nodeId !== p.nodeId && toHex(old.statement) === toHex(p.statement)) {
        renameWalletStatement(db, walletId, generation, old.nodeId, p.nodeId);
      }
    }
    // A commit settled from the peers brings no certificate: its older copies go here.
    if (added) dropPeersBefore(db, self, walletId, generation);
  });
}

/** The peers' copies of generations before `generation`: a commit made them history. */
function dropPeersBefore(db: Db, self: string, walletId: string, generation: number): void {
  const peers = new Set(
    listWalletStatements(db, walletId)
      .filter((k) => k.nodeId !== self && k.generation < generation)
      .map((k) => k.nodeId),
  );
  for (const nodeId of peers) dropWalletStatementsBefore(db, walletId, nodeId, generation);
}

/** What this node keeps for the answer: every stored statement of the wallet (walletVouchers picks). */
export function keptStatements(db: Db, walletId: string): HeldWalletStatement[] {
  return getWallet(db, walletId) ? listWalletStatements(db, walletId) : [];
}
