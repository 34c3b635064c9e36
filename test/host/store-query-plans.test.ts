/**
 * The look-ups a request makes, and the one a host makes at start-up, use
 * an index (SQLite's own query plan says so), so their cost does not grow
 * with the number of wallets, shares or ceremonies a node holds
 * (bench/scale.ts measures it; docs/SIZING.md). The audit log's head (ORDER
 * BY id DESC LIMIT 1) is a rowid walk that stops at its first row, which
 * SQLite reports as a SCAN, so it is not listed.
 */
import { describe, expect, it } from "vitest";
import { migrate, openDatabase } from "../../src/host/store/index.ts";

const LOOKUPS: Record<string, string> = {
  // pendingShares at start-up (node-host.ts resolvePending), all wallets and one.
  "pending shares of a node": `SELECT * FROM shares WHERE node_id = :n AND status = 'pending' ORDER BY created_at`,
  "a node's current share": `SELECT * FROM shares WHERE wallet_id = :w AND node_id = :n AND status = 'active' AND generation = (SELECT current_generation FROM wallets WHERE wallet_id = :w)`,
  // currentShareInfo (node-host.ts walletInfo), asked of every live node for every request.
  "a node's current share's party and policy": `SELECT party_index, policy FROM shares WHERE wallet_id = :w AND node_id = :n AND status = 'active' AND generation = (SELECT current_generation FROM wallets WHERE wallet_id = :w)`,
  "a wallet": "SELECT * FROM wallets WHERE wallet_id = :w",
  "a holder's statement": `SELECT s.statement, d.document FROM wallet_statements s JOIN attestation_documents d ON d.digest = s.attestation_digest WHERE s.wallet_id = :w AND s.node_id = :n AND s.generation = :g`,
  "statements naming a document": "SELECT 1 FROM wallet_statements WHERE attestation_digest = :d",
  // findClientRequest, asked of every live node for every request.
  "a client user's request": `SELECT * FROM ceremonies WHERE client_user = :c AND request_id = :r AND request_id IS NOT NULL AND client_user <> ''`,
  "running ceremonies": "SELECT * FROM ceremonies WHERE status = 'running'",
  // findSignOutcome (node-host.ts lookupRequest), asked of every live node for every request not answered yet.
  "a signer's kept answer":
    "SELECT * FROM sign_outcomes WHERE client_user = :c AND request_id = :r",
};

describe("store look-ups use indexes", () => {
  const db = openDatabase({ path: ":memory:" });
  migrate(db);
  for (const [name, sql] of Object.entries(LOOKUPS))
    it(name, () => {
      const plan = db
        .all(`EXPLAIN QUERY PLAN ${sql.replace(/:[a-z]+/g, "NULL")}`)
        .map((r) => String(r.detail));
      expect(plan.length).toBeGreaterThan(0);
      // "SCAN t" without an index is a full scan; "SCAN t USING INDEX" walks an index in order.
      for (const step of plan) expect(step).not.toMatch(/^SCAN \w+( AS \w+)?$/);
    });
});
