/**
 * Append-only audit log, kept as a hash chain. The host is untrusted and its database is not
 * secret, so the log must never receive key material. The API therefore takes a closed set of
 * typed events whose fields are all public (ids, counts, generations, enums, codes, the group
 * public key, policy hashes and approver key ids); no field takes bytes. The same rules are
 * enforced at run time: unknown fields, byte arrays and out-of-range values are refused, and free
 * text is cut and has long opaque runs redacted (see scrubText).
 *
 * The chain (schema version 3). Row n stores prev_hash = row_hash of row n-1 (AUDIT_GENESIS for
 * the first row) and row_hash = SHA-256 of the canonical encoding below, so each row commits to
 * every row before it. Rows that existed before version 3 were chained in id order when the
 * migration ran (chainExistingAuditRows); the chain vouches for them as they were found then.
 *
 *   row_hash = SHA-256( AUDIT_HASH_DOMAIN            ASCII "tss/audit-chain/v1", then one 0x00
 *                     | prev_hash                    32 bytes
 *                     | id | at                      u64 big-endian each
 *                     | str(node_id) | str(event)
 *                     | opt(wallet_id) | opt(ceremony_id)
 *                     | str(detail) )                the JSON text exactly as stored
 *   str(s) = u32 big-endian byte length | UTF-8 bytes;  opt(null) = 0x00, opt(s) = 0x01 | str(s)
 *
 * Appends read the head and insert the next row in one transaction (BEGIN IMMEDIATE when
 * outermost: the database's write lock), and prev_hash is UNIQUE, so two writers cannot both
 * extend the same head: the chain cannot fork. Ids are assigned here, consecutively, so a gap is
 * itself evidence of deletion.
 *
 * What the chain proves: a row edited, deleted or moved by someone who did not also recompute
 * every later hash is found by verifyAuditChain, which names the first row that does not hold.
 * Deleting the newest rows is found while the table's AUTOINCREMENT counter remembers them; a
 * writer who also resets that counter, or recomputes the whole chain, is found only by comparing
 * the head (id, hash) with a copy kept off the node (tss audit prints it).
 */
import { createHash } from "node:crypto";
import { ERROR_CODE, isNodeId } from "../../shared/wire/patterns.ts";
import { CLIENT_ID_PATTERN, MAX_CLIENT_ID_LEN } from "../../shared/wire/topics.ts";
import { toHex } from "../../shared/hex.ts";
import { col, type Db, type Row } from "./db.ts";
import { StoreError } from "./errors.ts";
import {
  checkGeneration,
  checkId,
  checkInt,
  checkSessionHex,
  checkTimestamp,
  MAX_PARTY_INDEX,
  scrubText,
} from "./validate.ts";

type Common = { walletId?: string; ceremonyId?: string };
type CeremonyKind = "dkg" | "sign" | "refresh";
/** The approvable operations (src/shared/wire/approval.ts OPERATIONS). */
type ApprovalOperationName =
  | "sign"
  | "refresh"
  | "policy_change"
  | "dkg"
  | "retire"
  | "import"
  | "repair"
  | "reshare";

/**
 * Who asked, as the node can tell. `client` is the client id level of the request's MQTT
 * Response Topic (tss/v1/responses/<client>/…): chosen by the requester, not authenticated by
 * the broker, though the broker's ACL lets only that client id read the answer. `user` is the
 * MQTT username, for when a broker passes it on in a way clients cannot forge; none does today.
 */
export interface Requester {
  client?: string;
  user?: string;
}

export type AuditEvent = Common &
  (
    | {
        event: "wallet_created";
        walletId: string;
        threshold: number;
        parties: number;
        publicKeyHex: string;
      }
    | {
        event: "share_stored";
        walletId: string;
        generation: number;
        partyIndex: number;
        status: "pending" | "active";
      }
    | { event: "refresh_committed"; walletId: string; fromGeneration: number; toGeneration: number }
    | { event: "refresh_aborted"; walletId: string; reason: string }
    /** A DKG's pending share removed (or its session fenced) on this node: the wallet never became usable. */
    | { event: "dkg_aborted"; walletId: string; reason: string }
    | ({
        /** The coordinator recorded the ceremony and is about to drive it. */
        event: "ceremony_started";
        ceremonyId: string;
        kind: CeremonyKind;
        participants: readonly string[];
        requestId?: string;
      } & Requester)
    | {
        /**
         * The ceremony ended. The host writes this for success only and `ceremony_aborted` for
         * failures; `status: "failed"` stays valid for callers that predate ceremony_aborted.
         */
        event: "ceremony_finished";
        ceremonyId: string;
        kind: CeremonyKind;
        status: "succeeded" | "failed";
        error?: string;
        requestId?: string;
      }
    | {
        /** The ceremony was abandoned: every participant told to drop the session. */
        event: "ceremony_aborted";
        ceremonyId: string;
        kind: CeremonyKind;
        /** An error code (the contract's, or a lower one such as an enclave's). */
        code: string;
        reason: string;
        requestId?: string;
        blamedNode?: string;
        blamedParty?: number;
      }
    | {
        /**
         * This node's enclave dropped an open session (`supersededCeremonyId`) for a start of
         * the same approved request with a lower session id (`ceremonyId`), as concurrent
         * duplicates need (src/enclave/approval-replay.ts). The enclave cannot tell who started
         * either; this node's host records the node that asked for each start, so a node that
         * cancels others' sessions this way is on record at every node it did it to.
         */
        event: "ceremony_superseded";
        ceremonyId: string;
        supersededCeremonyId: string;
        startedBy: string;
        supersededStartedBy?: string;
      }
    | ({
        /**
         * An authorisation decision on a client request, as an enclave made it (for the approval
         * work, src/shared/wire/approval.ts: nothing writes it yet). `decidedBy` is the node
         * whose enclave checked the approvals; `approverKeyIds` are the approver key ids whose
         * approvals counted; `refusal` is the approval format's refusal reason.
         */
        event: "approval_decided";
        requestId: string;
        operation: ApprovalOperationName;
        decision: "approved" | "refused";
        decidedBy: string;
        policyHash?: string;
        approverKeyIds?: readonly string[];
        refusal?: string;
        reason?: string;
      } & Requester)
    | {
        /**
         * A wallet's approval policy replaced: written by each holder when the policy change's
         * refresh commits there (node-host.ts), naming the policies by hash.
         * Policies are named by their hash; `fromPolicyHash` is absent for a wallet's first.
         */
        event: "policy_changed";
        walletId: string;
        toPolicyHash: string;
        fromPolicyHash?: string;
        requestId?: string;
        quorum?: number;
        approvers?: number;
        approverKeyIds?: readonly string[];
      }
    | ({
        /**
         * This node retired the wallet (src/host/wallet-retirement.ts): its enclave checked the
         * approvals against the wallet's sealed policy and wiped its share; the host deleted the
         * wallet's rows. `approverKeyIds` are the approvers whose approvals the enclave counted.
         */
        event: "wallet_retired";
        walletId: string;
        requestId: string;
        partyIndex: number;
        generation: number;
        policyHash?: string;
        approverKeyIds?: readonly string[];
      } & Requester)
    | ({
        /**
         * A share repair (src/host/share-repair.ts), by its coordinator: party `partyIndex`
         * moved from `fromNode` (absent: no live node reported it) to `toNode`, rebuilt by
         * `helpers`, and the complete refresh reached `generation`. `approverKeyIds`: the key
         * ids of the approvals presented (every holder's enclave checked them).
         */
        event: "share_repaired";
        walletId: string;
        requestId: string;
        partyIndex: number;
        fromNode?: string;
        toNode: string;
        helpers: readonly string[];
        generation: number;
        approverKeyIds?: readonly string[];
      } & Requester)
    | ({
        /**
         * A reshare to a new committee (src/host/wallet-reshare.ts), by its coordinator: the
         * wallet went from `fromThreshold`-of-`fromParties` to `threshold`-of-`parties` at
         * `generation`, `dealers` dealing and `added` joining (`nodes`: the new committee by
         * party index). `approverKeyIds`: the key ids of the approvals presented (every
         * member's enclave checked them).
         */
        event: "wallet_reshared";
        walletId: string;
        requestId: string;
        fromThreshold: number;
        fromParties: number;
        threshold: number;
        parties: number;
        dealers: readonly string[];
        added: readonly string[];
        nodes: readonly string[];
        generation: number;
        /** Online holders left out, asked to check right after the commit; `leftReplaced`: those whose enclave verified it and deleted. */
        leaving?: readonly string[];
        leftReplaced?: readonly string[];
        /** Party indices of holders that left while offline (allowOfflineLeaving): not asked yet. */
        offlineLeaving?: readonly number[];
        approverKeyIds?: readonly string[];
      } & Requester)
    | {
        /**
         * This node found its share of the wallet replaced by a repair: its own enclave verified
         * the evidence (share-repair.ts checkReplacedHere, src/enclave/supersession.ts) that
         * generation `generation` committed with its party held by an enclave of machine
         * `byPcr4` (reported for `byNode`, from the `confirmedBy` peers' statements); its rows
         * of `replacedGeneration` were securely deleted. Rows from before that verification
         * (no byPcr4) name the old generation and kept the rows.
         */
        event: "share_replaced";
        walletId: string;
        partyIndex: number;
        generation: number;
        byNode: string;
        confirmedBy: readonly string[];
        replacedGeneration?: number;
        byPcr4?: string;
      }
    | {
        /**
         * This node left the wallet's committee in a reshare: its own enclave verified
         * (share-repair.ts checkReplacedHere, src/enclave/supersession.ts) that generation
         * `generation` committed on `parties` seats (`confirmedBy`'s statements and active
         * proofs), none of them on this machine, and none at its index `partyIndex`; its rows
         * of `replacedGeneration` were securely deleted.
         */
        event: "left_committee";
        walletId: string;
        partyIndex: number;
        generation: number;
        replacedGeneration: number;
        parties: number;
        confirmedBy: readonly string[];
      }
    | {
        event: "unseal_failed";
        walletId: string;
        generation: number;
        code: "malformed" | "auth_failed" | "share_mismatch";
      }
    | { event: "schema_migrated"; fromVersion: number; toVersion: number }
  );

export type AuditEventName = AuditEvent["event"];

export interface AuditEntry {
  id: number;
  at: number;
  nodeId: string;
  event: AuditEventName;
  walletId: string | null;
  ceremonyId: string | null;
  detail: Record<string, unknown>;
  /** This row's chain hash, lowercase hex. */
  hash: string;
}

type Detail = string | number | string[] | number[];
type FieldCheck = (value: unknown, field: string) => Detail;

const MAX_TEXT_CHARS = 500;
/** The approval format's bound on approvers per policy (src/shared/wire/approval.ts). */
const MAX_APPROVERS = 16;
const KINDS = ["dkg", "sign", "refresh"] as const;

const count: FieldCheck = (v, f) => checkInt(v, 1, MAX_PARTY_INDEX, f);
const generation: FieldCheck = (v, f) => checkGeneration(v, f);
const version: FieldCheck = (v, f) => checkInt(v, 0, 1_000_000, f);
const id: FieldCheck = (v, f) => checkId(v, f);
const text: FieldCheck = (v, f) => {
  if (typeof v !== "string") throw new StoreError("invalid", `audit field ${f} must be a string`);
  return scrubText(v, MAX_TEXT_CHARS);
};
const matching =
  (pattern: RegExp, rule: string): FieldCheck =>
  (v, f) => {
    if (typeof v !== "string" || !pattern.test(v))
      throw new StoreError("invalid", `audit field ${f} must be ${rule}`);
    return v;
  };
const oneOf =
  (...allowed: readonly string[]): FieldCheck =>
  (v, f) => {
    if (typeof v !== "string" || !allowed.includes(v))
      throw new StoreError("invalid", `audit field ${f} must be one of ${allowed.join(", ")}`);
    return v;
  };
/** The group public key is public by definition; exactly 33 compressed bytes in hex, nothing longer. */
const publicKeyHex = matching(
  /^0[23][0-9a-f]{64}$/,
  "a 33-byte compressed public key in lowercase hex",
);
const errorCode = matching(ERROR_CODE, "an error code");
/**
 * Policy hashes and approver key ids are SHA-256 outputs of public data, and like the group key
 * an exception to "no bytes": fixed length, in their own named fields, never free text.
 */
const sha256Hex = matching(/^[0-9a-f]{64}$/, "a SHA-256 hash in lowercase hex");
const sha256Hexes: FieldCheck = (v, f) => {
  if (!Array.isArray(v) || v.length > MAX_APPROVERS)
    throw new StoreError("invalid", `audit field ${f} must list at most ${MAX_APPROVERS} hashes`);
  return v.map((x, i) => sha256Hex(x, `${f}[${i}]`) as string);
};
/** A machine's PCR4 (48 bytes): public, what a repair approval names. */
const pcr4Hex = matching(/^[0-9a-f]{96}$/, "a 48-byte PCR4 in lowercase hex");
const clientId = matching(CLIENT_ID_PATTERN, "an MQTT client id");
const sessionHex = matching(/^[0-9a-f]{64}$/, "a 32-byte session id in lowercase hex");
const nodeIds: FieldCheck = (v, f) => {
  if (!Array.isArray(v) || v.length > MAX_PARTY_INDEX)
    throw new StoreError("invalid", `audit field ${f} must be a list of node ids`);
  return v.map((x, i) => checkId(x, `${f}[${i}]`));
};

const partyIndices: FieldCheck = (v, f) => {
  if (!Array.isArray(v) || v.length > MAX_PARTY_INDEX)
    throw new StoreError("invalid", `audit field ${f} must be a list of party indices`);
  return v.map((x, i) => checkInt(x, 1, MAX_PARTY_INDEX, `${f}[${i}]`));
};

type FieldSpec = { check: FieldCheck; optional?: true };
const optional = (check: FieldCheck): FieldSpec => ({ check, optional: true });
const requester = { client: optional(clientId), user: optional(id) };

/** Per event: its detail fields, and which of walletId / ceremonyId it requires. */
const EVENTS: Record<
  AuditEventName,
  { fields: Record<string, FieldSpec>; wallet?: true; ceremony?: true }
> = {
  wallet_created: {
    wallet: true,
    fields: {
      threshold: { check: count },
      parties: { check: count },
      publicKeyHex: { check: publicKeyHex },
    },
  },
  share_stored: {
    wallet: true,
    fields: {
      generation: { check: generation },
      partyIndex: { check: count },
      status: { check: oneOf("pending", "active") },
    },
  },
  refresh_committed: {
    wallet: true,
    fields: { fromGeneration: { check: generation }, toGeneration: { check: generation } },
  },
  refresh_aborted: { wallet: true, fields: { reason: { check: text } } },
  dkg_aborted: { wallet: true, fields: { reason: { check: text } } },
  ceremony_started: {
    ceremony: true,
    fields: {
      kind: { check: oneOf(...KINDS) },
      participants: { check: nodeIds },
      requestId: optional(id),
      ...requester,
    },
  },
  ceremony_superseded: {
    ceremony: true,
    fields: {
      supersededCeremonyId: { check: sessionHex },
      startedBy: { check: id },
      supersededStartedBy: optional(id),
    },
  },
  ceremony_finished: {
    ceremony: true,
    fields: {
      kind: { check: oneOf(...KINDS) },
      status: { check: oneOf("succeeded", "failed") },
      error: optional(text),
      requestId: optional(id),
    },
  },
  ceremony_aborted: {
    ceremony: true,
    fields: {
      kind: { check: oneOf(...KINDS) },
      code: { check: errorCode },
      reason: { check: text },
      requestId: optional(id),
      blamedNode: optional(id),
      blamedParty: optional(count),
    },
  },
  approval_decided: {
    fields: {
      requestId: { check: id },
      operation: {
        check: oneOf(
          "sign",
          "refresh",
          "policy_change",
          "dkg",
          "retire",
          "import",
          "repair",
          "reshare",
        ),
      },
      decision: { check: oneOf("approved", "refused") },
      decidedBy: { check: id },
      policyHash: optional(sha256Hex),
      approverKeyIds: optional(sha256Hexes),
      refusal: optional(errorCode),
      reason: optional(text),
      ...requester,
    },
  },
  policy_changed: {
    wallet: true,
    fields: {
      toPolicyHash: { check: sha256Hex },
      fromPolicyHash: optional(sha256Hex),
      requestId: optional(id),
      quorum: optional(count),
      approvers: optional(count),
      approverKeyIds: optional(sha256Hexes),
    },
  },
  wallet_retired: {
    wallet: true,
    fields: {
      requestId: { check: id },
      partyIndex: { check: count },
      generation: { check: generation },
      policyHash: optional(sha256Hex),
      approverKeyIds: optional(sha256Hexes),
      ...requester,
    },
  },
  share_repaired: {
    wallet: true,
    fields: {
      requestId: { check: id },
      partyIndex: { check: count },
      fromNode: optional(id),
      toNode: { check: id },
      helpers: { check: nodeIds },
      generation: { check: generation },
      approverKeyIds: optional(sha256Hexes),
      ...requester,
    },
  },
  wallet_reshared: {
    wallet: true,
    fields: {
      requestId: { check: id },
      fromThreshold: { check: count },
      fromParties: { check: count },
      threshold: { check: count },
      parties: { check: count },
      dealers: { check: nodeIds },
      added: { check: nodeIds },
      nodes: { check: nodeIds },
      generation: { check: generation },
      leaving: optional(nodeIds),
      leftReplaced: optional(nodeIds),
      offlineLeaving: optional(partyIndices),
      approverKeyIds: optional(sha256Hexes),
      ...requester,
    },
  },
  share_replaced: {
    wallet: true,
    fields: {
      partyIndex: { check: count },
      generation: { check: generation },
      byNode: { check: id },
      confirmedBy: { check: nodeIds },
      replacedGeneration: optional(generation),
      byPcr4: optional(pcr4Hex),
    },
  },
  left_committee: {
    wallet: true,
    fields: {
      partyIndex: { check: count },
      generation: { check: generation },
      replacedGeneration: { check: generation },
      parties: { check: count },
      confirmedBy: { check: nodeIds },
    },
  },
  unseal_failed: {
    wallet: true,
    fields: {
      generation: { check: generation },
      code: { check: oneOf("malformed", "auth_failed", "share_mismatch") },
    },
  },
  schema_migrated: { fields: { fromVersion: { check: version }, toVersion: { check: version } } },
};

function detailOf(e: AuditEvent): {
  walletId: string | null;
  ceremonyId: string | null;
  detail: Record<string, Detail>;
} {
  const spec = Object.hasOwn(EVENTS, e.event) ? EVENTS[e.event] : undefined;
  if (!spec) throw new StoreError("invalid", `unknown audit event ${String(e.event)}`);
  const detail: Record<string, Detail> = {};
  for (const [key, value] of Object.entries(e)) {
    if (key === "event" || key === "walletId" || key === "ceremonyId" || value === undefined)
      continue;
    const field = Object.hasOwn(spec.fields, key) ? spec.fields[key] : undefined;
    if (!field) throw new StoreError("invalid", `audit event ${e.event} has no field ${key}`);
    detail[key] = field.check(value, key);
  }
  for (const [key, field] of Object.entries(spec.fields)) {
    if (!field.optional && !(key in detail))
      throw new StoreError("invalid", `audit event ${e.event} needs field ${key}`);
  }
  const walletId = e.walletId === undefined ? null : checkId(e.walletId, "wallet id");
  const ceremonyId = e.ceremonyId === undefined ? null : checkSessionHex(e.ceremonyId);
  if (spec.wallet && walletId === null)
    throw new StoreError("invalid", `audit event ${e.event} needs a wallet id`);
  if (spec.ceremony && ceremonyId === null)
    throw new StoreError("invalid", `audit event ${e.event} needs a ceremony id`);
  return { walletId, ceremonyId, detail };
}

/**
 * The requester as the log records it: the Response Topic's client id, with anything outside
 * CLIENT_ID_PATTERN replaced, so that an odd topic is still recorded rather than refused.
 */
export function requesterOf(reply: { client?: string }): Requester {
  const c = reply.client;
  if (typeof c !== "string" || c.length === 0) return {};
  return { client: c.replace(/[/+#\u0000-\u001f]/g, "?").slice(0, MAX_CLIENT_ID_LEN) };
}

/**
 * The ceremony_aborted event for failure `e`: its code and sentence, and the node (and party)
 * its structured blame names. Read defensively: `e` may have crossed a process boundary.
 */
export function ceremonyAborted(
  c: { ceremonyId: string; kind: CeremonyKind; requestId?: string; walletId?: string | null },
  e: unknown,
): AuditEvent {
  const err = (e ?? {}) as { code?: unknown; message?: unknown; blame?: unknown };
  const blame = (err.blame ?? {}) as { node?: unknown; party?: unknown };
  const party = blame.party;
  return {
    event: "ceremony_aborted",
    ceremonyId: c.ceremonyId,
    ...(c.walletId == null ? {} : { walletId: c.walletId }),
    kind: c.kind,
    code: typeof err.code === "string" && ERROR_CODE.test(err.code) ? err.code : "internal",
    reason: typeof err.message === "string" && err.message !== "" ? err.message : "no reason given",
    ...(c.requestId === undefined ? {} : { requestId: c.requestId }),
    ...(isNodeId(blame.node) ? { blamedNode: blame.node } : {}),
    ...(Number.isInteger(party) && (party as number) >= 1 && (party as number) <= MAX_PARTY_INDEX
      ? { blamedParty: party as number }
      : {}),
  };
}

// ---- the chain ----

/** What the first row commits to as its predecessor. */
export const AUDIT_GENESIS: Uint8Array = new Uint8Array(32);
export const AUDIT_HASH_DOMAIN = "tss/audit-chain/v1";
const HASH_BYTES = 32;

/** The columns a row hash covers, as stored. */
export interface AuditRowContent {
  id: number;
  at: number;
  nodeId: string;
  event: string;
  walletId: string | null;
  ceremonyId: string | null;
  /** The detail column's JSON text, byte for byte. */
  detail: string;
}

/** row_hash of a row whose predecessor's hash is `prev` (the encoding is in the header comment). */
export function auditRowHash(prev: Uint8Array, row: AuditRowContent): Uint8Array {
  if (prev.length !== HASH_BYTES) throw new StoreError("invalid", "previous hash must be 32 bytes");
  const h = createHash("sha256");
  const u32be = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const u64be = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const str = (s: string) => {
    const b = Buffer.from(s, "utf8");
    h.update(u32be(b.length)).update(b);
  };
  const opt = (s: string | null) => {
    if (s === null) h.update(Uint8Array.of(0));
    else {
      h.update(Uint8Array.of(1));
      str(s);
    }
  };
  h.update(Buffer.from(`${AUDIT_HASH_DOMAIN}\0`, "ascii")).update(prev);
  h.update(u64be(row.id)).update(u64be(row.at));
  str(row.nodeId);
  str(row.event);
  opt(row.walletId);
  opt(row.ceremonyId);
  str(row.detail);
  return new Uint8Array(h.digest());
}

/** The highest id the table has ever issued (AUTOINCREMENT's counter), or 0. */
function issuedIds(db: Db): number {
  // SQLite creates sqlite_sequence with the first AUTOINCREMENT table; audit_log is one.
  if (!db.get("SELECT 1 AS x FROM sqlite_master WHERE name = 'sqlite_sequence'")) return 0;
  const r = db.get("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'");
  return r ? col.int(r, "seq") : 0;
}

/**
 * Appends one event; returns its id. Reading the head and inserting happen in one transaction,
 * so concurrent appends serialise; call inside db.transaction to make it atomic with a change.
 */
export function appendAudit(
  db: Db,
  nodeId: string,
  event: AuditEvent,
  now: number = Date.now(),
): number {
  const { walletId, ceremonyId, detail } = detailOf(event);
  const content = {
    at: checkTimestamp(now),
    nodeId: checkId(nodeId, "node id"),
    event: event.event,
    walletId,
    ceremonyId,
    detail: JSON.stringify(detail),
  };
  return db.transaction(() => {
    const head = db.get("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1");
    const prev = head ? col.bytes(head, "row_hash") : AUDIT_GENESIS;
    // Past the counter too: ids of deleted newest rows are never reused, so their loss stays visible.
    const rowId = Math.max(head ? col.int(head, "id") : 0, issuedIds(db)) + 1;
    const row = { id: rowId, ...content };
    db.run(
      "INSERT INTO audit_log (id, at, node_id, event, wallet_id, ceremony_id, detail, prev_hash, row_hash) VALUES (:id, :at, :node, :event, :wallet, :ceremony, :detail, :prev, :hash)",
      {
        id: rowId,
        at: row.at,
        node: row.nodeId,
        event: row.event,
        wallet: row.walletId,
        ceremony: row.ceremonyId,
        detail: row.detail,
        prev,
        hash: auditRowHash(prev, row),
      },
    );
    return rowId;
  });
}

const PAGE = 1000;
const CHAIN_SELECT =
  "SELECT id, at, node_id, event, wallet_id, ceremony_id, detail, prev_hash, row_hash FROM audit_log";

function contentOf(r: Row): AuditRowContent {
  return {
    id: col.int(r, "id"),
    at: col.int(r, "at"),
    nodeId: col.str(r, "node_id"),
    event: col.str(r, "event"),
    walletId: col.strOrNull(r, "wallet_id"),
    ceremonyId: col.strOrNull(r, "ceremony_id"),
    detail: col.str(r, "detail"),
  };
}

/** Every row in id order, a page at a time, so a long log is never held in memory at once. */
function* allRows(db: Db): Generator<Row> {
  let after = 0;
  for (;;) {
    const rows = db.all(`${CHAIN_SELECT} WHERE id > :after ORDER BY id LIMIT ${PAGE}`, { after });
    yield* rows;
    if (rows.length < PAGE) return;
    after = col.int(rows.at(-1)!, "id");
  }
}

/**
 * Schema migration 3: chains the rows written before the chain existed, in id order, from
 * AUDIT_GENESIS. Runs inside the migration's transaction, before the append-only triggers exist.
 */
export function chainExistingAuditRows(db: Db): number {
  let prev = AUDIT_GENESIS;
  let n = 0;
  for (const r of allRows(db)) {
    const row = contentOf(r);
    const hash = auditRowHash(prev, row);
    db.run("UPDATE audit_log SET prev_hash = :prev, row_hash = :hash WHERE id = :id", {
      prev,
      hash,
      id: row.id,
    });
    prev = hash;
    n++;
  }
  return n;
}

export type AuditChainReport =
  | { ok: true; rows: number; head: { id: number; hash: string } | null }
  | {
      ok: false;
      /** Rows that held before the break. */
      rows: number;
      /** The first row that does not hold (for deleted newest rows: the first id missing). */
      broken: { id: number; problem: string };
    };

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Walks the whole chain from AUDIT_GENESIS and reports the first row that does not hold. Read
 * only; rows appended while it runs are checked too (appends only ever add higher ids).
 */
export function verifyAuditChain(db: Db): AuditChainReport {
  // Read before the rows, so a row appended meanwhile cannot look like a deleted one.
  const issued = issuedIds(db);
  let prev = AUDIT_GENESIS;
  let prevId: number | null = null;
  let rows = 0;
  const broken = (id: number, problem: string): AuditChainReport => ({
    ok: false,
    rows,
    broken: { id, problem },
  });
  for (const r of allRows(db)) {
    const rowId = col.int(r, "id");
    let content: AuditRowContent;
    let stored: { prev: Uint8Array | null; hash: Uint8Array | null };
    let computed: Uint8Array;
    try {
      content = contentOf(r);
      stored = { prev: col.bytesOrNull(r, "prev_hash"), hash: col.bytesOrNull(r, "row_hash") };
      computed = auditRowHash(prev, content);
    } catch (e) {
      // E.g. a negative id or time, which no append writes and the encoding cannot hold.
      return broken(rowId, `row ${rowId} is malformed (${(e as Error).message})`);
    }
    if (stored.prev === null || stored.hash === null)
      return broken(rowId, `row ${rowId} carries no chain hash: it was not written by the host`);
    if (prevId === null && !sameBytes(stored.prev, AUDIT_GENESIS))
      return broken(
        rowId,
        `row ${rowId} is the first row but does not start the chain: the rows before it were deleted`,
      );
    if (prevId !== null && rowId !== prevId + 1)
      return broken(
        rowId,
        `row ${rowId} follows row ${prevId}: ${rowId - prevId - 1 === 1 ? `row ${prevId + 1} was` : `rows ${prevId + 1}..${rowId - 1} were`} deleted`,
      );
    if (!sameBytes(stored.prev, prev))
      return broken(
        rowId,
        `row ${rowId} does not commit to row ${prevId}'s hash: rows were reordered or replaced`,
      );
    if (!sameBytes(computed, stored.hash))
      return broken(rowId, `row ${rowId} does not match its hash: the row was altered`);
    prev = stored.hash;
    prevId = rowId;
    rows++;
  }
  const last = prevId ?? 0;
  if (issued > last)
    return broken(
      last + 1,
      `the newest rows were deleted: ids up to ${issued} were issued, the last row is ${last === 0 ? "missing" : `row ${last}`}`,
    );
  return { ok: true, rows, head: prevId === null ? null : { id: prevId, hash: toHex(prev) } };
}

// ---- reading ----

const SELECT = `SELECT id, at, node_id, event, wallet_id, ceremony_id, detail, row_hash FROM audit_log`;

function toEntry(r: Row): AuditEntry {
  const event = col.str(r, "event");
  if (!Object.hasOwn(EVENTS, event))
    throw new StoreError("schema", `audit event ${event} is unknown to this code`);
  let detail: unknown;
  try {
    detail = JSON.parse(col.str(r, "detail"));
  } catch {
    detail = null;
  }
  if (detail === null || typeof detail !== "object" || Array.isArray(detail))
    throw new StoreError("schema", `audit row ${String(r.id)} has a detail that is not an object`);
  return {
    id: col.int(r, "id"),
    at: col.int(r, "at"),
    nodeId: col.str(r, "node_id"),
    event: event as AuditEventName,
    walletId: col.strOrNull(r, "wallet_id"),
    ceremonyId: col.strOrNull(r, "ceremony_id"),
    detail: detail as Record<string, unknown>,
    hash: toHex(col.bytesOrNull(r, "row_hash") ?? new Uint8Array()),
  };
}

/** A DKG learns its wallet id only when it succeeds, so its start row is found by its ceremony id. */
const WALLET_CEREMONIES =
  "SELECT ceremony_id FROM audit_log WHERE wallet_id = :w AND ceremony_id IS NOT NULL";

/**
 * Entries in append order, optionally for one wallet (its rows, and every row of a ceremony that
 * has one of them) and from a time on (`sinceMs`, inclusive);
 * at most `limit` (default 1000) after `afterId`. Reading does not verify the chain: see
 * verifyAuditChain.
 */
export function readAudit(
  db: Db,
  opts: { walletId?: string; sinceMs?: number; afterId?: number; limit?: number } = {},
): AuditEntry[] {
  const limit = checkInt(opts.limit ?? 1000, 1, 10_000, "limit");
  const after = checkInt(opts.afterId ?? 0, 0, Number.MAX_SAFE_INTEGER, "afterId");
  const since = checkTimestamp(opts.sinceMs ?? 0);
  const rows =
    opts.walletId === undefined
      ? db.all(`${SELECT} WHERE id > :after AND at >= :since ORDER BY id LIMIT :limit`, {
          after,
          since,
          limit,
        })
      : db.all(
          `${SELECT} WHERE (wallet_id = :w OR ceremony_id IN (${WALLET_CEREMONIES})) AND id > :after AND at >= :since ORDER BY id LIMIT :limit`,
          { w: checkId(opts.walletId, "wallet id"), after, since, limit },
        );
  return rows.map(toEntry);
}
