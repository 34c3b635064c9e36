/**
 * Append-only audit log. The host is untrusted and its database is not secret, so the log must
 * never receive key material. The API therefore takes a closed set of typed events whose fields
 * are all public (ids, counts, generations, enums, the group public key); no field takes bytes.
 * The same rules are enforced at run time: unknown fields, byte arrays and out-of-range values
 * are refused, and free text is cut and has long opaque runs redacted (see scrubText).
 */
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
    | {
        event: "ceremony_started";
        ceremonyId: string;
        kind: "dkg" | "sign" | "refresh";
        participants: readonly string[];
      }
    | {
        event: "ceremony_finished";
        ceremonyId: string;
        kind: "dkg" | "sign" | "refresh";
        status: "succeeded" | "failed";
        error?: string;
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
}

type Detail = string | number | string[];
type FieldCheck = (value: unknown, field: string) => Detail;

const MAX_TEXT_CHARS = 500;
const KINDS = ["dkg", "sign", "refresh"] as const;

const count: FieldCheck = (v, f) => checkInt(v, 1, MAX_PARTY_INDEX, f);
const generation: FieldCheck = (v, f) => checkGeneration(v, f);
const version: FieldCheck = (v, f) => checkInt(v, 0, 1_000_000, f);
const text: FieldCheck = (v, f) => {
  if (typeof v !== "string") throw new StoreError("invalid", `audit field ${f} must be a string`);
  return scrubText(v, MAX_TEXT_CHARS);
};
const oneOf =
  (...allowed: readonly string[]): FieldCheck =>
  (v, f) => {
    if (typeof v !== "string" || !allowed.includes(v))
      throw new StoreError("invalid", `audit field ${f} must be one of ${allowed.join(", ")}`);
    return v;
  };
/** The group public key is public by definition; exactly 33 compressed bytes in hex, nothing longer. */
const publicKeyHex: FieldCheck = (v, f) => {
  if (typeof v !== "string" || !/^0[23][0-9a-f]{64}$/.test(v))
    throw new StoreError(
      "invalid",
      `audit field ${f} must be a 33-byte compressed public key in lowercase hex`,
    );
  return v;
};
const nodeIds: FieldCheck = (v, f) => {
  if (!Array.isArray(v) || v.length > MAX_PARTY_INDEX)
    throw new StoreError("invalid", `audit field ${f} must be a list of node ids`);
  return v.map((x, i) => checkId(x, `${f}[${i}]`));
};

/** Per event: its detail fields, and which of walletId / ceremonyId it requires. */
const EVENTS: Record<
  AuditEventName,
  { fields: Record<string, { check: FieldCheck; optional?: true }>; wallet?: true; ceremony?: true }
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
  ceremony_started: {
    ceremony: true,
    fields: { kind: { check: oneOf(...KINDS) }, participants: { check: nodeIds } },
  },
  ceremony_finished: {
    ceremony: true,
    fields: {
      kind: { check: oneOf(...KINDS) },
      status: { check: oneOf("succeeded", "failed") },
      error: { check: text, optional: true },
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
    const field = spec.fields[key];
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

/** Appends one event; returns its id. Call inside db.transaction to make it atomic with a change. */
export function appendAudit(
  db: Db,
  nodeId: string,
  event: AuditEvent,
  now: number = Date.now(),
): number {
  const { walletId, ceremonyId, detail } = detailOf(event);
  const row = db.get(
    "INSERT INTO audit_log (at, node_id, event, wallet_id, ceremony_id, detail) VALUES (:at, :node, :event, :wallet, :ceremony, :detail) RETURNING id",
    {
      at: checkTimestamp(now),
      node: checkId(nodeId, "node id"),
      event: event.event,
      wallet: walletId,
      ceremony: ceremonyId,
      detail: JSON.stringify(detail),
    },
  );
  if (!row) throw new StoreError("schema", "audit insert returned no id");
  return col.int(row, "id");
}

const SELECT = "SELECT id, at, node_id, event, wallet_id, ceremony_id, detail FROM audit_log";

function toEntry(r: Row): AuditEntry {
  const event = col.str(r, "event");
  if (!Object.hasOwn(EVENTS, event))
    throw new StoreError("schema", `audit event ${event} is unknown to this code`);
  return {
    id: col.int(r, "id"),
    at: col.int(r, "at"),
    nodeId: col.str(r, "node_id"),
    event: event as AuditEventName,
    walletId: col.strOrNull(r, "wallet_id"),
    ceremonyId: col.strOrNull(r, "ceremony_id"),
    detail: JSON.parse(col.str(r, "detail")) as Record<string, unknown>,
  };
}

/** Entries in append order, optionally for one wallet; at most `limit` (default 1000) after `afterId`. */
export function readAudit(
  db: Db,
  opts: { walletId?: string; afterId?: number; limit?: number } = {},
): AuditEntry[] {
  const limit = checkInt(opts.limit ?? 1000, 1, 10_000, "limit");
  const after = checkInt(opts.afterId ?? 0, 0, Number.MAX_SAFE_INTEGER, "afterId");
  const rows =
    opts.walletId === undefined
      ? db.all(`${SELECT} WHERE id > :after ORDER BY id LIMIT :limit`, { after, limit })
      : db.all(`${SELECT} WHERE wallet_id = :w AND id > :after ORDER BY id LIMIT :limit`, {
          w: checkId(opts.walletId, "wallet id"),
          after,
          limit,
        });
  return rows.map(toEntry);
}
