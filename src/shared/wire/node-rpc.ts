/**
 * Node-to-node RPC operations: what a coordinator asks of another node's host
 * (and of its own, through the same dispatcher). One table gives every op its
 * argument and result type; the server checks each call's arguments against
 * the op's checker before any handler sees them, and the caller side
 * (RemoteParticipant, the peer directory) is typed by the same table.
 *
 * Carried as `{op, args, from}` / `{ok, result | error}` on the topics of
 * topics.ts, as binary payloads (rpc-payload.ts: byte fields raw); a call in
 * the bounded JSON of json-payload.ts (byte fields as `{"$b64": ...}`) is
 * still read and answered in JSON.
 *
 * | op             | args                                               | result                        |
 * |----------------|----------------------------------------------------|-------------------------------|
 * | prepare        | {walletId}                                         | PreparedShare                 |
 * | attestation    | {}                                                 | {document}                    |
 * | start          | NodeStartRequest (CeremonyStartRequest, client?, signerNodes?) | CeremonyReply     |
 * | step           | CeremonyStepRequest                                | CeremonyReply                 |
 * | abort          | {sessionId}                                        | {}                            |
 * | persist        | {kind: dkg/refresh, sessionId, wallet, final}      | {receipt}                     |
 * | commit         | {kind, sessionId, walletId, generation, receipts, certificate?} | {}                |
 * | rollback       | {kind, sessionId, walletId}                        | {}                            |
 * | walletInfo     | {walletId}                                         | HeldWallet or null            |
 * | listWallets    | {}                                                 | HeldWallet[]                  |
 * | requestContext | {kind, requestId, walletId?, client?, prepare?}    | {request, wallet, prepared?, document?} |
 * | ceremonyOutcome| {walletId, sessionId}                              | CeremonyOutcomeAnswer         |
 * | retireWallet   | {walletId, requestId, approvalRequest?, approvals?, client?} | RetireOutcome           |
 * | retiredParty   | {walletId}                                         | {partyIndex, generation} or null |
 * | recordMembers  | {walletId, generation, members: [{partyIndex, nodeId}]} | {}                       |
 * | checkReplaced  | {walletId}                                         | {replaced}                    |
 * | proveActive    | {walletId, nonce}                                  | {proof} or null               |
 *
 * `recordMembers` and `checkReplaced` (issue 11 item 1, src/host/share-repair.ts): after a
 * share repair's refresh commits, its coordinator has every holder record who now holds each
 * party index (store/members-repo.ts; a holder takes only a list that names itself at its own
 * index and generation, and keeps only its own entry); a coordinator that finds a holder
 * reporting an older generation of a party another node holds now (or, after a reshare it
 * was left out of, of an index beyond the committee) asks it to `checkReplaced`,
 * and that node gathers from its peers the newer generation's signed statements (walletInfo)
 * and from each holder `proveActive` (its enclave's signature, for a nonce of the asking
 * node's enclave, on the share it holds loaded now: active-proof.ts) and has its OWN enclave
 * verify them (SUPERSEDED_SHARE, src/enclave/supersession.ts); only on that verdict does it
 * delete its rows and refuse the wallet (never on the asker's or peers' word).
 *
 * `retireWallet` (issue 11 item 3, src/host/wallet-retirement.ts): the node
 * loads its share, its enclave checks the approvals and wipes it, the host
 * deletes the wallet's rows and audits who approved. It answers a refusal as
 * a RetireOutcome too (`{error}`), so the coordinator learns every holder's
 * reason from one round. `retiredParty` is what a node that no longer holds
 * the wallet retired of it earlier (from its audit log), so that a repeated
 * retirement counts those parties as done.
 *
 * `start` also carries the client's approvals (enclave-ops.ts: requestId,
 * approvalRequest, approvals, and for a DKG the policy), bounded by
 * approval.ts; `persist` carries the wallet's policy encoding with the
 * wallet record, stored beside it and handed back on LOAD_SHARE.
 *
 * A sign's `start` also names, for the host only (never relayed to the
 * enclave), the client user of the request (`client`, an id) and the signers'
 * node ids in the coordinator's order (`signerNodes`, at most MAX_PARTIES ids):
 * each signer keeps the answer under (client, request id) once its enclave
 * produced the signature (sign-outcomes-repo.ts), so a resubmission after the
 * coordinator died gets the signature reached.
 *
 * Generations (issue 9 item 3): a sign's or refresh's `start` reply carries
 * the enclave's signed share-state statement (share-state.ts) and phase 2's
 * `step` carries every other participant's (`shareStates`, at most
 * MAX_PARTIES - 1 of at most MAX_SIGNED_SHARE_STATE_BYTES); `commit` carries
 * the commit certificate, `{statements, documents}`: the n signed wallet
 * statements of the new generation and the attestation documents that bind
 * their keys (at most MAX_PARTIES of each), for the enclave's ACTIVATE_SHARE.
 *
 * Seal receipts (seal-receipt.ts): `persist` answers the holder enclave's
 * signed receipt once the host stored the sealed share; `commit` carries all
 * n (`receipts`, at most MAX_PARTIES of at most MAX_SIGNED_SEAL_RECEIPT_BYTES)
 * and each enclave activates only with one valid receipt from every party of
 * the session (src/enclave/seal-receipts.ts). Only the node that started a
 * session on a holder may `persist`, `commit` or `rollback` it there (as for
 * `step` and `abort`); `ceremonyOutcome` is open to every node.
 *
 * `requestContext` answers in one call what a coordinator needs before a
 * ceremony: the outcome this node stored under the client's request id (for
 * idempotency), and its share of the wallet the request names. With
 * `prepare` (the signers a coordinator expects from its holder view,
 * planning.ts) the node also loads that share as `prepare` does and adds
 * `prepared` (PreparedShare, or the refusal as `{error: {code, message}}`)
 * and its attestation `document`: one round instead of three before phase 1.
 *
 * `ceremonyOutcome` is what a holder left with a pending share of a refresh
 * (its coordinator died between commits) asks the other holders: whether
 * they committed that session, still hold it pending, rolled it back, or do
 * not hold the wallet at all (node-host.ts resolvePending says how the
 * answers decide).
 *
 * Argument bounds (named below): ids by patterns.ts, session ids
 * SESSION_ID_LEN, at most MAX_RELAYED_MESSAGES protocol messages of at most
 * MAX_RELAYED_MESSAGE_BYTES, at most MAX_PARTIES - 1 peer documents of at
 * most MAX_ATTESTATION_DOCUMENT_BYTES, a public package of at most
 * MAX_PUBLIC_PACKAGE_BYTES. Keys an op does not know are dropped; a bad
 * argument is refused with `bad_request` naming the field. Results are the
 * remote host's word: typed, not checked here (the coordinator checks what it
 * relies on: generations, agreement, the signature).
 */
import type {
  CeremonyKind,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
} from "./enclave-ops.ts";
import { APPROVAL_BYTES, MAX_APPROVALS, MAX_POLICY_BYTES, MAX_REQUEST_BYTES } from "./approval.ts";
import { MAX_SIGNED_WALLET_STATEMENT_BYTES } from "./wallet-statement.ts";
import { MAX_SIGNED_SHARE_STATE_BYTES } from "./share-state.ts";
import { MAX_SIGNED_SEAL_RECEIPT_BYTES } from "./seal-receipt.ts";
import { ACTIVE_PROOF_NONCE_BYTES } from "./active-proof.ts";
import { KEY_IMPORT_ENVELOPE_BYTES } from "./key-import.ts";
import { CodedError } from "./errors.ts";
import { DIGEST_BYTES, ID_RULE, isId, isNodeId, isNonHardenedPath } from "./patterns.ts";
import {
  MAX_LIST_ITEMS,
  MAX_MESSAGE_LEN,
  MAX_PARTIES,
  SESSION_ID_LEN,
} from "./protocol-message.ts";
import { CHAIN_CODE_BYTES, COMPRESSED_KEY_BYTES } from "../public-key.ts";

/** A relayed message is a core message (MAX_MESSAGE_LEN) inside the enclaves' envelope (≤ 101 bytes more). */
export const MAX_RELAYED_MESSAGE_BYTES = MAX_MESSAGE_LEN + 256;
/** The core exchanges lists of at most MAX_LIST_ITEMS messages per phase. */
export const MAX_RELAYED_MESSAGES = MAX_LIST_ITEMS;
/** The attestation verifier's document bound (src/attestation/cose.ts MAX_DOCUMENT_BYTES). */
export const MAX_ATTESTATION_DOCUMENT_BYTES = 16 * 1024;
/** The core's public-package bound (crates/dkls23-wasm share.rs); one for 16 parties is under 1 KiB. */
export const MAX_PUBLIC_PACKAGE_BYTES = 64 * 1024;
export const SIGNATURE_BYTES = 65; // r || s || recovery id
export const MAX_U32 = 0xffff_ffff;

export type PersistKind = "dkg" | "refresh";

/** A commit certificate (src/enclave/commit-certificate.ts): n signed wallet statements and, in order, the documents binding their keys. */
export interface CommitCertificate {
  statements: Uint8Array[];
  documents: Uint8Array[];
}

export interface PreparedShare {
  walletId: string;
  /** The generation the node's enclave has loaded and confirmed. */
  generation: number;
  partyIndex: number;
}

/** A wallet's public data, as the coordinator hands it to every participant. */
export interface WalletRecord {
  walletId: string;
  threshold: number;
  parties: number;
  /** Compressed SEC1 group public key (33 bytes). */
  publicKey: Uint8Array;
  /** The core's public package (group key, each party's verifying share, t, n); opaque to the host. */
  publicPackage: Uint8Array;
  /** BIP-32 chain code (32 bytes): with the public key, what the host derives child public keys from. */
  chainCode: Uint8Array;
  /** The wallet's approval policy encoding (approval.ts); its hash is sealed with every share. Absent: a wallet created without one. */
  policy?: Uint8Array;
}

/** One node's share of a wallet, as that node reports it. */
export interface HeldWallet extends WalletRecord {
  nodeId: string;
  generation: number;
  partyIndex: number;
  /** This holder's enclave-signed statement of the current generation (wallet-statement.ts); absent for a wallet from before statements. */
  statement?: Uint8Array;
  /** The attestation document binding the channel key that signed `statement`. */
  attestation?: Uint8Array;
}

/** CEREMONY_START as a coordinator sends it to a node's host; the host keeps `client` and `signerNodes` to itself. */
export interface NodeStartRequest extends CeremonyStartRequest {
  /** Sign: the broker user the client request came from (request ids are unique per user). */
  client?: string;
  /** Sign: every signer's node id, in the coordinator's order (the answer's `signers`). */
  signerNodes?: string[];
}

/** A client request this node coordinated, under its request id. */
export interface StoredRequest {
  status: string;
  result: Uint8Array | null;
  error: string | null;
  /** Hex SHA-256 of the stored request's parameters (null for rows recorded without one). */
  paramsHash?: string | null;
}

export interface RequestContext {
  request: StoredRequest | null;
  wallet: HeldWallet | null;
  /** Asked with `prepare`: the share this node loaded, or why it could not. */
  prepared?: PreparedShare | { error: { code: string; message: string } };
  /** Asked with `prepare` and loaded: this node's attestation document (what the `attestation` op answers). */
  document?: Uint8Array;
}

/** A holder's word on a refresh session: "unknown" only from a node that holds no share of the wallet. */
export type RefreshSessionState = "committed" | "pending" | "rolled_back" | "unknown";
export interface CeremonyOutcomeAnswer {
  outcome: RefreshSessionState;
  /** The generation the session produced, when the node knows it. */
  generation?: number;
  /**
   * With "committed": the seal receipts its enclave activated with (commit-proof.ts), which
   * the asking holder's own enclave checks before it follows; bounded there by boundedProofReceipts.
   */
  receipts?: Uint8Array[];
}

/** One holder's answer to retireWallet: retired (what its enclave confirmed), or why not. */
export type RetireOutcome =
  | {
      retired: true;
      partyIndex: number;
      generation: number;
      /** Hex: the sealed policy the enclave checked the approvals against. */
      policyHash?: string;
      /** Hex key ids of the approvers whose approvals the enclave counted. */
      approverKeyIds: string[];
    }
  | { retired: false; error: { code: string; message: string; reason?: string } };

type NoArgs = Record<string, never>;
type Done = Record<string, never>;

/** Every op: its argument and result type. */
export interface NodeOps {
  prepare: { args: { walletId: string }; result: PreparedShare };
  attestation: { args: NoArgs; result: { document: Uint8Array } };
  start: { args: NodeStartRequest; result: CeremonyReply };
  step: { args: CeremonyStepRequest; result: CeremonyReply };
  abort: { args: { sessionId: Uint8Array }; result: Done };
  persist: {
    args: { kind: PersistKind; sessionId: Uint8Array; wallet: WalletRecord; final: CeremonyReply };
    /** The holder enclave's seal receipt, handed on only once the host stored the share. */
    result: { receipt: Uint8Array };
  };
  commit: {
    args: {
      kind: PersistKind;
      sessionId: Uint8Array;
      walletId: string;
      generation: number;
      /** Every holder's seal receipt (from the persist answers), for the enclave's ACTIVATE_SHARE. */
      receipts: Uint8Array[];
      certificate?: CommitCertificate;
    };
    result: Done;
  };
  rollback: { args: { kind: PersistKind; sessionId: Uint8Array; walletId: string }; result: Done };
  walletInfo: { args: { walletId: string }; result: HeldWallet | null };
  listWallets: { args: NoArgs; result: HeldWallet[] };
  requestContext: {
    /** `client`: the broker user the request came from; request ids are unique per user. */
    args: {
      kind: CeremonyKind;
      requestId: string;
      walletId?: string;
      client?: string;
      /** Also load the named wallet's share and attest (a signer the coordinator expects). */
      prepare?: boolean;
    };
    result: RequestContext;
  };
  ceremonyOutcome: {
    args: { walletId: string; sessionId: Uint8Array };
    result: CeremonyOutcomeAnswer;
  };
  retireWallet: {
    args: {
      walletId: string;
      requestId: string;
      approvalRequest?: Uint8Array;
      approvals?: Uint8Array[];
      /** The broker user the request came from, for the audit log. */
      client?: string;
    };
    result: RetireOutcome;
  };
  retiredParty: {
    args: { walletId: string };
    result: { partyIndex: number; generation: number } | null;
  };
  recordMembers: {
    args: {
      walletId: string;
      generation: number;
      members: { partyIndex: number; nodeId: string }[];
    };
    result: Done;
  };
  checkReplaced: { args: { walletId: string }; result: { replaced: boolean } };
  /** Its enclave's active proof of the wallet for the asker's nonce (active-proof.ts), or null; open to every node. */
  proveActive: {
    args: { walletId: string; nonce: Uint8Array };
    result: { proof: Uint8Array } | null;
  };
}
export type NodeOpName = keyof NodeOps;
export type NodeOpArgs<K extends NodeOpName> = NodeOps[K]["args"];
export type NodeOpResult<K extends NodeOpName> = NodeOps[K]["result"];

// ---- argument checkers ----

/** Checks an untrusted value; returns it typed (objects: a copy with the known keys only). */
type Check<T> = (v: unknown, at: string) => T;

const refuse = (at: string, rule: string): never => {
  throw new CodedError("bad_request", `${at} ${rule}`);
};

const bytes =
  (min: number, max: number): Check<Uint8Array> =>
  (v, at) =>
    v instanceof Uint8Array && v.length >= min && v.length <= max
      ? v
      : refuse(at, min === max ? `must be ${min} bytes` : `must be ${min}..${max} bytes`);

const int =
  (min: number, max: number): Check<number> =>
  (v, at) =>
    typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max
      ? v
      : refuse(at, `must be an integer in ${min}..${max}`);

const flag: Check<boolean> = (v, at) =>
  typeof v === "boolean" ? v : refuse(at, "must be true or false");
const id: Check<string> = (v, at) => (isId(v) ? v : refuse(at, `must be ${ID_RULE}`));
/** A reshare's committee: node ids joined by commas (the enclave checks each). */
const nodeIdList: Check<string> = (v, at) =>
  typeof v === "string" && v.length <= 16 * 65 && v.split(",").every((n) => isNodeId(n))
    ? v
    : refuse(at, "must be node ids separated by commas");
const path: Check<string> = (v, at) =>
  isNonHardenedPath(v) ? v : refuse(at, "must be a non-hardened path like m/0/7");

const oneOf =
  <L extends string>(values: readonly L[]): Check<L> =>
  (v, at) =>
    typeof v === "string" && (values as readonly string[]).includes(v)
      ? (v as L)
      : refuse(at, `must be one of ${values.join(", ")}`);

/** Absent and null both mean "not given" (JSON drops undefined fields). */
const optional =
  <T>(c: Check<T>): Check<T | undefined> =>
  (v, at) =>
    v === undefined || v === null ? undefined : c(v, at);

const list =
  <T>(c: Check<T>, max: number): Check<T[]> =>
  (v, at) => {
    if (!Array.isArray(v) || v.length > max)
      return refuse(at, `must be a list of at most ${max} items`);
    return v.map((x, i) => c(x, `${at}[${i}]`));
  };

type Shape = Record<string, Check<unknown>>;
type Checked<S extends Shape> = { [K in keyof S]: S[K] extends Check<infer T> ? T : never };

const object =
  <S extends Shape>(shape: S): Check<Checked<S>> =>
  (v, at) => {
    if (!v || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array)
      return refuse(at, "must be an object");
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(shape)) {
      const x = check(Object.hasOwn(o, k) ? o[k] : undefined, `${at}.${k}`);
      if (x !== undefined) out[k] = x;
    }
    return out as Checked<S>;
  };

const sessionId = bytes(SESSION_ID_LEN, SESSION_ID_LEN);
const party = int(1, MAX_PARTIES);
const generation = int(0, MAX_U32);
const persistKind = oneOf<PersistKind>(["dkg", "refresh"]);
const ceremonyKind = oneOf<CeremonyKind>(["dkg", "sign", "refresh", "repair", "reshare"]);
const publicKey = bytes(COMPRESSED_KEY_BYTES, COMPRESSED_KEY_BYTES);
const publicPackage = bytes(1, MAX_PUBLIC_PACKAGE_BYTES);
const chainCode = bytes(CHAIN_CODE_BYTES, CHAIN_CODE_BYTES);
const messages = list(bytes(1, MAX_RELAYED_MESSAGE_BYTES), MAX_RELAYED_MESSAGES);

const walletRecord = object({
  walletId: id,
  threshold: int(2, MAX_PARTIES),
  parties: int(2, MAX_PARTIES),
  publicKey,
  publicPackage,
  chainCode,
  policy: optional(bytes(1, MAX_POLICY_BYTES)),
});

const ceremonyReply = object({
  messages,
  generation,
  signature: optional(bytes(SIGNATURE_BYTES, SIGNATURE_BYTES)),
  publicKey: optional(publicKey),
  publicPackage: optional(publicPackage),
  chainCode: optional(chainCode),
  partyIndex: optional(party),
  statement: optional(bytes(1, MAX_SIGNED_WALLET_STATEMENT_BYTES)),
  shareState: optional(bytes(1, MAX_SIGNED_SHARE_STATE_BYTES)),
});

const commitCertificate = object({
  statements: list(bytes(1, MAX_SIGNED_WALLET_STATEMENT_BYTES), MAX_PARTIES),
  documents: list(bytes(1, MAX_ATTESTATION_DOCUMENT_BYTES), MAX_PARTIES),
});

const startRequest = object({
  kind: ceremonyKind,
  sessionId,
  walletId: id,
  threshold: optional(int(2, MAX_PARTIES)),
  parties: optional(int(2, MAX_PARTIES)),
  partyIndex: optional(party),
  signers: optional(list(party, MAX_PARTIES)),
  digest: optional(bytes(DIGEST_BYTES, DIGEST_BYTES)),
  path: optional(path),
  expectedGeneration: optional(generation),
  peerDocuments: list(bytes(1, MAX_ATTESTATION_DOCUMENT_BYTES), MAX_PARTIES - 1),
  peerParties: list(party, MAX_PARTIES - 1),
  // Relayed to the enclave as they came from the client; only the enclave checks what they say.
  requestId: optional(id),
  approvalRequest: optional(bytes(1, MAX_REQUEST_BYTES)),
  approvals: optional(list(bytes(APPROVAL_BYTES, APPROVAL_BYTES), MAX_APPROVALS)),
  policy: optional(bytes(1, MAX_POLICY_BYTES)),
  // A key import (key-import.ts): ciphertext only, checked and opened by the dealer's enclave.
  importEnvelope: optional(bytes(KEY_IMPORT_ENVELOPE_BYTES[0], KEY_IMPORT_ENVELOPE_BYTES[1])),
  importDealer: optional(party),
  // A share repair (lifecycle-repair.ts) and the refresh completing it at the target.
  repairTarget: optional(party),
  repairHelpers: optional(list(party, MAX_PARTIES)),
  repairSession: optional(sessionId),
  // A reshare to a new committee (lifecycle-reshare.ts): node ids comma-separated in seat order.
  reshareDealers: optional(list(party, MAX_PARTIES)),
  reshareSeats: optional(list(party, MAX_PARTIES)),
  reshareNodes: optional(nodeIdList),
  publicPackage: optional(publicPackage),
  client: optional(id),
  signerNodes: optional(list(id, MAX_PARTIES)),
});

/** The server-side checker of each op's arguments. */
export const NODE_OP_ARGS: { readonly [K in NodeOpName]: Check<NodeOpArgs<K>> } = {
  prepare: object({ walletId: id }),
  attestation: object({}),
  start: startRequest,
  step: object({
    sessionId,
    phase: int(2, 4),
    messages,
    shareStates: optional(list(bytes(1, MAX_SIGNED_SHARE_STATE_BYTES), MAX_PARTIES - 1)),
  }),
  abort: object({ sessionId }),
  persist: object({ kind: persistKind, sessionId, wallet: walletRecord, final: ceremonyReply }),
  commit: object({
    kind: persistKind,
    sessionId,
    walletId: id,
    generation,
    receipts: list(bytes(1, MAX_SIGNED_SEAL_RECEIPT_BYTES), MAX_PARTIES),
    certificate: optional(commitCertificate),
  }),
  rollback: object({ kind: persistKind, sessionId, walletId: id }),
  walletInfo: object({ walletId: id }),
  listWallets: object({}),
  requestContext: object({
    kind: ceremonyKind,
    requestId: id,
    walletId: optional(id),
    client: optional(id),
    prepare: optional(flag),
  }),
  ceremonyOutcome: object({ walletId: id, sessionId }),
  retireWallet: object({
    walletId: id,
    requestId: id,
    approvalRequest: optional(bytes(1, MAX_REQUEST_BYTES)),
    approvals: optional(list(bytes(APPROVAL_BYTES, APPROVAL_BYTES), MAX_APPROVALS)),
    client: optional(id),
  }),
  retiredParty: object({ walletId: id }),
  recordMembers: object({
    walletId: id,
    generation,
    members: list(object({ partyIndex: party, nodeId: id }), MAX_PARTIES),
  }),
  checkReplaced: object({ walletId: id }),
  proveActive: object({
    walletId: id,
    nonce: bytes(ACTIVE_PROOF_NONCE_BYTES, ACTIVE_PROOF_NONCE_BYTES),
  }),
};

export const NODE_OP_NAMES = Object.keys(NODE_OP_ARGS) as NodeOpName[];

export function isNodeOpName(op: unknown): op is NodeOpName {
  return typeof op === "string" && Object.hasOwn(NODE_OP_ARGS, op);
}

/** Checks `args` for `op`; throws a bad_request CodedError naming the field. */
export function checkNodeOpArgs<K extends NodeOpName>(op: K, args: unknown): NodeOpArgs<K> {
  return NODE_OP_ARGS[op](args, op);
}

// ---- server and caller ----

/** What a node does for each op, given checked arguments. */
/** `caller`: the calling node's id as the transport established it (its replies topic); absent for this node's own calls. */
export type NodeOpHandlers = {
  readonly [K in NodeOpName]: (
    args: NodeOpArgs<K>,
    caller?: string,
  ) => Promise<NodeOpResult<K>> | NodeOpResult<K>;
};

/** Runs one op with untrusted arguments: checks them, then calls its handler. */
export async function dispatchNodeOp<K extends NodeOpName>(
  handlers: NodeOpHandlers,
  op: K,
  args: unknown,
  caller?: string,
): Promise<NodeOpResult<K>> {
  return handlers[op](checkNodeOpArgs(op, args), caller);
}

/** The server side: checks the op name and its arguments, then runs the op's handler for `caller`. */
export function nodeOpDispatcher(
  handlers: NodeOpHandlers,
): (op: string, args: unknown, caller?: string) => Promise<unknown> {
  return async (op, args, caller) => {
    if (!isNodeOpName(op))
      throw new CodedError(
        "bad_request",
        `unknown node operation ${JSON.stringify(String(op).slice(0, 64))}`,
      );
    return dispatchNodeOp(handlers, op, args, caller);
  };
}

/** The transport a caller needs (the bus's NodeRpc). */
export interface NodeCaller {
  callNode(
    nodeId: string,
    op: string,
    args: unknown,
    opts?: { timeoutMs?: number },
  ): Promise<unknown>;
}

/** Calls `op` on `nodeId`; the result is typed by the table but is the remote host's unchecked word. */
export function callNodeOp<K extends NodeOpName>(
  caller: NodeCaller,
  nodeId: string,
  op: K,
  args: NodeOpArgs<K>,
  opts?: { timeoutMs?: number },
): Promise<NodeOpResult<K>> {
  return caller.callNode(nodeId, op, args, opts) as Promise<NodeOpResult<K>>;
}
