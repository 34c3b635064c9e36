/**
 * Client-side verification of a wallet: nodes, the broker and the host are
 * not trusted to say what a wallet's key is. Every holder's enclave signs a
 * wallet statement at the end of DKG and refresh (src/shared/wire/wallet-statement.ts)
 * with the Ed25519 channel key its attestation document binds
 * (src/shared/wire/channel-key-binding.ts). Here, for every voucher
 * (statement + document) a node relayed:
 *
 *  1. the document is verified (src/attestation/verifier.ts) against the
 *     client's roots: the AWS Nitro root, or the development root only with
 *     an explicit `allowDevelopment`; debug-mode enclaves are refused;
 *  2. its PCR0 (the enclave image hash) must be on the client's allow-list;
 *  3. the statement must carry a valid strict Ed25519 signature by the
 *     channel key in that document's user_data;
 *
 * and then statements from all n holders (party indices 1..n, each from a
 * distinct enclave key) must agree on every field but the party index. A
 * statement may be a copy another holder kept of an offline holder's
 * (src/host/wallet-vouchers.ts): it passes the same checks or none, and a
 * copy of an older generation disagrees with the live holders'. The
 * result is the verified wallet: its key, chain code (so the SDK derives
 * child keys itself), generation and policy hash.
 *
 * A document is verified at the instant it states (its timestamp), not now:
 * it vouches that an attested enclave held this channel key at that time,
 * and channel keys are per boot, so a statement made in that boot stays
 * verifiable after the leaf certificate (hours) has expired. What it cannot
 * show is freshness: a host may replay an older, genuine generation's
 * statements; the generation in the answer is checked against them, and
 * rollback across all holders is item 3's subject (generation certificates).
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { decodeAttestationDocument } from "../attestation/cose.ts";
import {
  AttestationError,
  verifyAttestationDocument,
  type TrustedRoot,
} from "../attestation/verifier.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { deriveChildPublicKey } from "../shared/public-key.ts";
import { parseChannelKeyBinding } from "../shared/wire/channel-key-binding.ts";
import {
  parseSignedWalletStatementUnverified,
  type WalletStatement,
} from "../shared/wire/wallet-statement.ts";
import { TssError } from "./errors.ts";

/** What the client trusts: the only inputs that decide whether a wallet is accepted. */
export interface WalletTrust {
  /** Root certificates (AWS Nitro: src/attestation/aws-root.ts; development: the dev PKI's root). */
  roots: readonly TrustedRoot[];
  /** Accept documents chaining to a root flagged `development`. Never in production. */
  allowDevelopment?: boolean;
  /** Allowed enclave image hashes (PCR0, 48 bytes), as hex or bytes. Empty: nothing is accepted. */
  imageHashes: readonly (string | Uint8Array)[];
}

/** One holder's statement and document, as a node relayed them (hex on the wire). */
export interface WalletVoucher {
  nodeId: string;
  partyIndex: number;
  statement: Uint8Array;
  attestation: Uint8Array;
}

export interface VerifiedWallet {
  walletId: string;
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  publicPackageHash: Uint8Array;
  threshold: number;
  parties: number;
  generation: number;
  policyHash: Uint8Array | null;
  /** The n enclaves that vouched, by party index. */
  vouchedBy: {
    nodeId: string;
    partyIndex: number;
    imageHash: string;
    /** Whether the document chains to a development root (accepted only with allowDevelopment). */
    development: boolean;
  }[];
  /**
   * Each vouching node's machine (PCR4, hex) as its verified document names it, by the node id
   * the answer gave (absent: a document without one). The machine is what the attestation
   * shows; which node id it goes by is the answering host's word.
   */
  holderPcr4: Record<string, string>;
}

/** What the answer claimed, checked against the statements. */
export interface ClaimedWallet {
  walletId: string;
  publicKey?: string;
  generation?: number;
  threshold?: number;
  parties?: number;
}

export const WALLET_UNVERIFIED = "unverified_wallet";

function unverified(message: string, node: string | null = null): TssError {
  return new TssError(WALLET_UNVERIFIED, message, node);
}

function imageAllowList(trust: WalletTrust): Set<string> {
  return new Set(
    trust.imageHashes.map((h) => (typeof h === "string" ? h.toLowerCase() : toHex(h))),
  );
}

/** Steps 1-3 for one voucher: the statement its attested enclave signed, and that enclave's image and key. */
function verifyVoucher(
  v: WalletVoucher,
  trust: WalletTrust,
  images: Set<string>,
): {
  statement: WalletStatement;
  imageHash: string;
  channelKey: string;
  development: boolean;
  pcr4: string | null;
} {
  const blame = (what: string) => unverified(`Node ${v.nodeId}: ${what}.`, v.nodeId);
  let doc;
  try {
    const timestamp = decodeAttestationDocument(v.attestation).document.timestamp;
    doc = verifyAttestationDocument(v.attestation, {
      roots: trust.roots,
      now: new Date(timestamp),
      allowDevelopment: trust.allowDevelopment === true,
      allowDebug: false,
    });
  } catch (e) {
    const code = e instanceof AttestationError ? ` (${e.reason})` : "";
    throw blame(`its attestation document is refused${code}: ${(e as Error).message}`);
  }
  const imageHash = toHex(doc.pcrs.get(0) ?? new Uint8Array());
  if (!images.has(imageHash))
    throw blame(
      `its enclave runs image ${imageHash.slice(0, 16)}…, which is not on the allow-list`,
    );
  let key: Uint8Array;
  let signed;
  try {
    key = parseChannelKeyBinding(doc.userData).ed25519Public;
    signed = parseSignedWalletStatementUnverified(v.statement);
  } catch (e) {
    throw blame(`its voucher is malformed: ${(e as Error).message}`);
  }
  // Strict RFC 8032 (no ZIP-215 leniency), as the enclaves verify each other.
  if (!ed25519.verify(signed.signature, signed.encoding, key, { zip215: false }))
    throw blame("its wallet statement is not signed by its attested enclave");
  if (signed.statement.partyIndex !== v.partyIndex)
    throw blame(
      `its enclave signed for party ${signed.statement.partyIndex}, the node claims party ${v.partyIndex}`,
    );
  const development =
    trust.roots.find((r) => toHex(r.der) === toHex(doc.cabundle[0]!))?.development === true;
  const pcr4 = doc.pcrs.get(4);
  return {
    statement: signed.statement,
    imageHash,
    channelKey: toHex(key),
    development,
    pcr4: pcr4 && pcr4.length === 48 && pcr4.some((b) => b !== 0) ? toHex(pcr4) : null,
  };
}

/** The statement without its party index, as one comparable string. */
function sharedFields(s: WalletStatement): string {
  return [
    s.walletId,
    s.threshold,
    s.parties,
    s.generation,
    toHex(s.publicKey),
    toHex(s.chainCode),
    toHex(s.publicPackageHash),
    s.policyHash === null ? "-" : toHex(s.policyHash),
  ].join("/");
}

/**
 * Verifies a wallet from the vouchers a node relayed; rejects with
 * `unverified_wallet` (naming the node when one voucher is at fault) unless
 * all n holders' attested enclaves vouch for the same wallet, which is also
 * the one the answer claims.
 */
export function verifyWallet(
  claimed: ClaimedWallet,
  vouchers: readonly WalletVoucher[],
  trust: WalletTrust,
): VerifiedWallet {
  const images = imageAllowList(trust);
  if (vouchers.length === 0)
    throw unverified(`No enclave statement vouches for wallet ${claimed.walletId}.`);
  const checked = vouchers.map((v) => ({ v, ...verifyVoucher(v, trust, images) }));
  const first = checked[0]!.statement;
  for (const c of checked) {
    if (sharedFields(c.statement) !== sharedFields(first))
      throw unverified(
        `The enclaves disagree about wallet ${claimed.walletId}: node ${c.v.nodeId}'s statement (generation ${c.statement.generation}, key ${toHex(c.statement.publicKey).slice(0, 16)}…) differs from node ${checked[0]!.v.nodeId}'s (generation ${first.generation}, key ${toHex(first.publicKey).slice(0, 16)}…).`,
        c.v.nodeId,
      );
  }
  const byParty = new Map(checked.map((c) => [c.statement.partyIndex, c]));
  const keys = new Set(checked.map((c) => c.channelKey));
  if (byParty.size !== checked.length || keys.size !== checked.length)
    throw unverified(
      `Wallet ${claimed.walletId}: one party index or one enclave vouches more than once.`,
    );
  const missing = Array.from({ length: first.parties }, (_, i) => i + 1).filter(
    (p) => !byParty.has(p),
  );
  if (missing.length > 0 || checked.length !== first.parties)
    throw unverified(
      `Wallet ${claimed.walletId} is vouched for by ${checked.length} of its ${first.parties} holders; missing part${missing.length === 1 ? "y" : "ies"} ${missing.join(", ")}.`,
    );
  const mismatch = (what: string, got: unknown, want: unknown) =>
    unverified(
      `The answer claims ${what} ${String(got)} for wallet ${claimed.walletId}, its enclaves vouch for ${String(want)}.`,
    );
  if (first.walletId !== claimed.walletId)
    throw mismatch("wallet id", claimed.walletId, first.walletId);
  if (claimed.publicKey !== undefined && claimed.publicKey !== toHex(first.publicKey))
    throw mismatch("public key", claimed.publicKey, toHex(first.publicKey));
  if (claimed.generation !== undefined && claimed.generation !== first.generation)
    throw mismatch("generation", claimed.generation, first.generation);
  if (claimed.threshold !== undefined && claimed.threshold !== first.threshold)
    throw mismatch("threshold", claimed.threshold, first.threshold);
  if (claimed.parties !== undefined && claimed.parties !== first.parties)
    throw mismatch("parties", claimed.parties, first.parties);
  return {
    walletId: first.walletId,
    publicKey: first.publicKey,
    chainCode: first.chainCode,
    publicPackageHash: first.publicPackageHash,
    threshold: first.threshold,
    parties: first.parties,
    generation: first.generation,
    policyHash: first.policyHash,
    vouchedBy: [...byParty.values()]
      .sort((a, b) => a.statement.partyIndex - b.statement.partyIndex)
      .map((c) => ({
        nodeId: c.v.nodeId,
        partyIndex: c.statement.partyIndex,
        imageHash: c.imageHash,
        development: c.development,
      })),
    holderPcr4: Object.fromEntries(
      checked.flatMap((c) => (c.pcr4 === null ? [] : [[c.v.nodeId, c.pcr4]])),
    ),
  };
}

/**
 * The key a signature for `path` must verify against: the verified wallet
 * key, or its BIP-32 child derived here from the verified chain code, so a
 * coordinator cannot name another key.
 */
export function verifiedSigningKey(wallet: VerifiedWallet, path: string | null): string {
  return toHex(
    path === null || path === "m"
      ? wallet.publicKey
      : deriveChildPublicKey(wallet.publicKey, wallet.chainCode, path).publicKey,
  );
}

/** Vouchers as they arrive in an answer (hex fields), without trusting anything in them. */
export function parseVouchersUnverified(v: unknown): WalletVoucher[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 16) throw unverified("The answer's vouchers are malformed.");
  return v.map((x) => {
    const o = x as Record<string, unknown>;
    if (
      o === null ||
      typeof o !== "object" ||
      typeof o.nodeId !== "string" ||
      !Number.isInteger(o.partyIndex) ||
      typeof o.statement !== "string" ||
      typeof o.attestation !== "string"
    )
      throw unverified("The answer's vouchers are malformed.");
    try {
      return {
        nodeId: o.nodeId,
        partyIndex: o.partyIndex as number,
        statement: fromHex(o.statement),
        attestation: fromHex(o.attestation),
      };
    } catch {
      throw unverified(`Node ${o.nodeId}'s voucher is not hex.`, o.nodeId);
    }
  });
}

/**
 * Verifies the vouchers of one answer (`dkg`, `wallet`, `wallets` item,
 * `refresh`) against what the answer claims; `result` is the raw answer
 * object, whose `vouchers` the shape parser leaves alone.
 */
export function verifyAnswer(
  result: unknown,
  claimed: ClaimedWallet,
  trust: WalletTrust,
): VerifiedWallet {
  const vouchers = (result as { vouchers?: unknown } | null)?.vouchers;
  return verifyWallet(claimed, parseVouchersUnverified(vouchers), trust);
}
