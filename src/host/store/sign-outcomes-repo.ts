/**
 * The signatures this node obtained as a signer (migration 10), under the client request they
 * answer: (client user, request id) → parameters hash, session and the client's result (the same
 * JSON the coordinator stores in `ceremonies`). Every DKLs23 signer gets the whole signature at
 * phase 4, so when a coordinator dies after the signature exists but before it answered, the
 * live signers still hold the answer and the planning round of a resubmission returns it
 * (node-host.ts lookupRequest) instead of running the request again. Only public data.
 */
import { col, type Db } from "./db.ts";
import { checkBytes, checkId, checkSessionHex, checkTimestamp } from "./validate.ts";

/** The result is the public sign answer (signature, keys, node ids): a few hundred bytes. */
const MAX_RESULT_BYTES = 64 * 1024;

export interface SignOutcome {
  clientUser: string;
  requestId: string;
  paramsHash: Uint8Array;
  ceremonyId: string;
  result: Uint8Array;
  createdAt: number;
}

/** Keeps a signer's outcome; a second signature for the same request (another quorum) is not kept: the first stays. */
export function recordSignOutcome(
  db: Db,
  o: Omit<SignOutcome, "createdAt">,
  now = Date.now(),
): void {
  // In a transaction like every write: BEGIN IMMEDIATE fails cleanly on a locked database,
  // where a bare statement that fails busy can leave itself in progress on the connection.
  db.transaction(() =>
    db.run(
      `INSERT INTO sign_outcomes (client_user, request_id, params_hash, ceremony_id, result, created_at)
     VALUES (:client, :request, :params, :ceremony, :result, :now)
     ON CONFLICT (client_user, request_id) DO NOTHING`,
      {
        client: checkId(o.clientUser, "client user"),
        request: checkId(o.requestId, "request id"),
        params: checkBytes(o.paramsHash, "parameters hash", 32, 32),
        ceremony: checkSessionHex(o.ceremonyId),
        result: checkBytes(o.result, "sign result", 1, MAX_RESULT_BYTES),
        now: checkTimestamp(now),
      },
    ),
  );
}

export function findSignOutcome(
  db: Db,
  clientUser: string,
  requestId: string,
): SignOutcome | undefined {
  const r = db.get(
    "SELECT client_user, request_id, params_hash, ceremony_id, result, created_at FROM sign_outcomes WHERE client_user = :client AND request_id = :request",
    { client: checkId(clientUser, "client user"), request: checkId(requestId, "request id") },
  );
  return (
    r && {
      clientUser: col.str(r, "client_user"),
      requestId: col.str(r, "request_id"),
      paramsHash: col.bytes(r, "params_hash"),
      ceremonyId: col.str(r, "ceremony_id"),
      result: col.bytes(r, "result"),
      createdAt: col.int(r, "created_at"),
    }
  );
}
