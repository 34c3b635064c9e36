/**
 * Ceremonies (DKG, sign, refresh) this node took part in, keyed by the hex session id. A client
 * request id is unique per client user (the broker user whose Response Topic the request named),
 * stored with a hash of the request's parameters, so a retried request can later be answered from
 * the first run and the same id with other parameters refused (migration 5). Rows from before
 * that have client user "" and are unique per kind.
 * Only public data is stored: participants, outcome, and the public result (e.g. a signature).
 */
import { col, type Db, type Row } from "./db.ts";
import { StoreError, isConstraintError } from "./errors.ts";
import {
  checkBytes,
  checkId,
  checkSessionHex,
  checkTimestamp,
  MAX_PARTY_INDEX,
  scrubText,
} from "./validate.ts";

export type CeremonyKind = "dkg" | "sign" | "refresh";
export type CeremonyStatus = "running" | "succeeded" | "failed";

const KINDS: readonly string[] = ["dkg", "sign", "refresh"];
const STATUSES: readonly string[] = ["running", "succeeded", "failed"];
/** Results are public outputs (signature, group key); anything large is a mistake. */
const MAX_RESULT_BYTES = 64 * 1024;
const MAX_ERROR_CHARS = 2000;

export interface Ceremony {
  /** 32-byte session id, lowercase hex. */
  ceremonyId: string;
  kind: CeremonyKind;
  /** Null only for a DKG whose wallet id is not known before it succeeds. */
  walletId: string | null;
  /** Node id of the coordinator. */
  coordinator: string;
  /** Node ids of all participants. */
  participants: string[];
  status: CeremonyStatus;
  error: string | null;
  requestId: string | null;
  /** The broker user the request came from ("" for rows from before migration 5). */
  clientUser: string;
  /** SHA-256 of the request's parameters (planning.ts requestParamsHash), when recorded. */
  paramsHash: Uint8Array | null;
  result: Uint8Array | null;
  createdAt: number;
  finishedAt: number | null;
}

export interface NewCeremony {
  ceremonyId: string;
  kind: CeremonyKind;
  walletId: string | null;
  coordinator: string;
  participants: readonly string[];
  requestId?: string | null;
  clientUser?: string;
  paramsHash?: Uint8Array | null;
}

export type CeremonyOutcome =
  | { status: "succeeded"; result?: Uint8Array | null }
  | { status: "failed"; error: string };

const SELECT = `SELECT ceremony_id, kind, wallet_id, coordinator, participants, status, error, request_id, client_user, params_hash, result, created_at, finished_at FROM ceremonies`;

function oneOf<T extends string>(value: string, allowed: readonly string[], what: string): T {
  if (!allowed.includes(value)) throw new StoreError("schema", `${what} ${value} is unknown`);
  return value as T;
}

function parseParticipants(json: string): string[] {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new StoreError("schema", "participants column is not a JSON array of node ids");
  return v;
}

function toCeremony(r: Row): Ceremony {
  return {
    ceremonyId: col.str(r, "ceremony_id"),
    kind: oneOf<CeremonyKind>(col.str(r, "kind"), KINDS, "ceremony kind"),
    walletId: col.strOrNull(r, "wallet_id"),
    coordinator: col.str(r, "coordinator"),
    participants: parseParticipants(col.str(r, "participants")),
    status: oneOf<CeremonyStatus>(col.str(r, "status"), STATUSES, "ceremony status"),
    error: col.strOrNull(r, "error"),
    requestId: col.strOrNull(r, "request_id"),
    clientUser: col.str(r, "client_user"),
    paramsHash: col.bytesOrNull(r, "params_hash"),
    result: col.bytesOrNull(r, "result"),
    createdAt: col.int(r, "created_at"),
    finishedAt: col.intOrNull(r, "finished_at"),
  };
}

function checkParticipants(list: unknown): string[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PARTY_INDEX) {
    throw new StoreError("invalid", `participants must list 1..${MAX_PARTY_INDEX} node ids`);
  }
  const ids = list.map((p, i) => checkId(p, `participant ${i}`));
  if (new Set(ids).size !== ids.length)
    throw new StoreError("invalid", "participants must not repeat a node id");
  return ids;
}

/** Records a ceremony as running. A duplicate session id or (client user, request id) is a conflict. */
export function startCeremony(db: Db, c: NewCeremony, now: number = Date.now()): Ceremony {
  if (!KINDS.includes(c.kind))
    throw new StoreError("invalid", `ceremony kind must be one of ${KINDS.join(", ")}`);
  if (c.walletId === null && c.kind !== "dkg")
    throw new StoreError("invalid", `a ${c.kind} ceremony needs a wallet id`);
  const p = {
    id: checkSessionHex(c.ceremonyId),
    kind: c.kind,
    wallet: c.walletId === null ? null : checkId(c.walletId, "wallet id"),
    coordinator: checkId(c.coordinator, "coordinator"),
    participants: JSON.stringify(checkParticipants(c.participants)),
    request: c.requestId == null ? null : checkId(c.requestId, "request id"),
    client: c.clientUser ? checkId(c.clientUser, "client user") : "",
    params: c.paramsHash == null ? null : checkBytes(c.paramsHash, "parameters hash", 32, 32),
    now: checkTimestamp(now),
  };
  try {
    db.run(
      `INSERT INTO ceremonies (ceremony_id, kind, wallet_id, coordinator, participants, status, request_id, client_user, params_hash, created_at)
       VALUES (:id, :kind, :wallet, :coordinator, :participants, 'running', :request, :client, :params, :now)`,
      p,
    );
  } catch (e) {
    if (!isConstraintError(e)) throw e;
    if (getCeremony(db, c.ceremonyId))
      throw new StoreError("conflict", `ceremony ${c.ceremonyId} already exists`);
    const earlier =
      p.request === null
        ? undefined
        : p.client === ""
          ? findCeremonyByRequest(db, c.kind, p.request)
          : findClientRequest(db, p.client, p.request);
    if (earlier) {
      throw new StoreError(
        "conflict",
        `a ${earlier.kind} ceremony for request ${p.request} already exists`,
      );
    }
    throw e;
  }
  return getCeremony(db, c.ceremonyId)!;
}

/** Moves a running ceremony to succeeded or failed. Finishing twice is a conflict. */
export function finishCeremony(
  db: Db,
  ceremonyId: string,
  outcome: CeremonyOutcome,
  now: number = Date.now(),
): Ceremony {
  const id = checkSessionHex(ceremonyId);
  checkTimestamp(now);
  let p: { status: string; error: string | null; result: Uint8Array | null };
  if (outcome.status === "succeeded") {
    p = {
      status: "succeeded",
      error: null,
      result:
        outcome.result == null
          ? null
          : checkBytes(outcome.result, "ceremony result", 0, MAX_RESULT_BYTES),
    };
  } else if (outcome.status === "failed") {
    if (typeof outcome.error !== "string" || outcome.error.length === 0)
      throw new StoreError("invalid", "a failed ceremony needs an error sentence");
    // Long errors are cut, not refused: recording the failure matters more than its full text.
    p = { status: "failed", error: scrubText(outcome.error, MAX_ERROR_CHARS), result: null };
  } else {
    throw new StoreError("invalid", "ceremony outcome must be succeeded or failed");
  }
  return db.transaction(() => {
    const changed = db.run(
      "UPDATE ceremonies SET status = :status, error = :error, result = :result, finished_at = :now WHERE ceremony_id = :id AND status = 'running'",
      { ...p, id, now },
    );
    const c = getCeremony(db, id);
    if (!c) throw new StoreError("not_found", `no ceremony ${id}`);
    if (changed !== 1)
      throw new StoreError("conflict", `ceremony ${id} already finished (${c.status})`);
    return c;
  });
}

export function getCeremony(db: Db, ceremonyId: string): Ceremony | undefined {
  const r = db.get(`${SELECT} WHERE ceremony_id = :id`, { id: checkSessionHex(ceremonyId) });
  return r && toCeremony(r);
}

/** A ceremony recorded before migration 5 (client user ""), under its kind and request id. */
export function findCeremonyByRequest(
  db: Db,
  kind: CeremonyKind,
  requestId: string,
): Ceremony | undefined {
  const r = db.get(`${SELECT} WHERE kind = :kind AND request_id = :request AND client_user = ''`, {
    kind,
    request: checkId(requestId, "request id"),
  });
  return r && toCeremony(r);
}

/** The ceremony a client user's request id started, of whatever kind: ids are unique per user. */
export function findClientRequest(
  db: Db,
  clientUser: string,
  requestId: string,
): Ceremony | undefined {
  // The redundant terms are ceremonies_client_request's own condition: without them SQLite
  // cannot use that partial index and scans every ceremony (one per signature ever made).
  const r = db.get(
    `${SELECT} WHERE client_user = :client AND request_id = :request AND request_id IS NOT NULL AND client_user <> ''`,
    {
      client: checkId(clientUser, "client user"),
      request: checkId(requestId, "request id"),
    },
  );
  return r && toCeremony(r);
}

/** Ceremonies still marked running, oldest first: after a restart these are the ones to fail. */
export function runningCeremonies(db: Db): Ceremony[] {
  return db
    .all(`${SELECT} WHERE status = 'running' ORDER BY created_at, ceremony_id`)
    .map(toCeremony);
}
