/**
 * The audit log as a hash chain (src/host/store/audit.ts, migration 3): appends and
 * verification, tampering found at the right row, concurrent appends, the migration of an
 * existing log, filters, the events the request handler writes, and `tss audit`.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { afterAll, describe, expect, it } from "vitest";
import {
  AUDIT_GENESIS,
  appendAudit,
  auditRowHash,
  ceremonyAborted,
  MIGRATIONS,
  migrate,
  openDatabase,
  openReadOnlyFile,
  openStore,
  readAudit,
  requesterOf,
  verifyAuditChain,
  type AuditEvent,
  type Db,
} from "../../src/host/store/index.ts";
import { RequestHandler, type Reply } from "../../src/host/request-handler.ts";
import type { NodeHost } from "../../src/host/node-host.ts";
import type { Participant } from "../../src/host/participant.ts";
import type { PeerDirectory } from "../../src/host/peer-directory.ts";
import type { HeldWallet, NodeOpName } from "../../src/shared/wire/node-rpc.ts";
import { toHex } from "../../src/shared/hex.ts";
import { responseClientId } from "../../src/shared/wire/topics.ts";
import { RequestServer } from "../../src/host/mqtt/requests.ts";
import type { IPublishPacket, MqttClient } from "mqtt";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const dir = mkdtempSync(join(tmpdir(), "audit-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A fresh migrated database file. */
function fresh(): { db: Db; path: string } {
  const path = join(dir, `audit-${++files}.db`);
  return { db: openStore({ path }).db, path };
}

const cid = (n: number) => n.toString(16).padStart(64, "0");
const W = "w_0123abcd";

/** Six rows: two wallets, a DKG whose start row has no wallet id, timestamps 1000..6000. */
function sixRows(db: Db): void {
  const events: AuditEvent[] = [
    {
      event: "ceremony_started",
      ceremonyId: cid(1),
      kind: "dkg",
      participants: ["n1", "n2"],
      requestId: "r-1",
      client: "cli-1",
    },
    {
      event: "ceremony_finished",
      ceremonyId: cid(1),
      walletId: W,
      kind: "dkg",
      status: "succeeded",
      requestId: "r-1",
    },
    { event: "share_stored", walletId: W, generation: 0, partyIndex: 1, status: "active" },
    { event: "share_stored", walletId: "w_other", generation: 0, partyIndex: 2, status: "active" },
    {
      event: "ceremony_aborted",
      ceremonyId: cid(2),
      walletId: W,
      kind: "sign",
      code: "ceremony_failed",
      reason: "n2 could not load its share",
      requestId: "r-2",
      blamedNode: "n2",
    },
    { event: "refresh_committed", walletId: "w_other", fromGeneration: 0, toGeneration: 1 },
  ];
  events.forEach((e, i) => appendAudit(db, "n1", e, (i + 1) * 1000));
}

/** What someone who can write the file does first: the host's append-only triggers are in SQL, not a defence. */
function asAttacker(db: Db, sql: string): void {
  db.exec(
    "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete; DROP TRIGGER IF EXISTS audit_log_chained;",
  );
  db.exec(sql);
}

function brokenAt(db: Db): { id: number; problem: string } {
  const r = verifyAuditChain(db);
  if (r.ok) throw new Error("the chain still holds");
  return r.broken;
}

/** The first broken row once an attacker has run `sql` against the six rows. */
function breakWith(sql: string): { id: number; problem: string } {
  const { db } = fresh();
  try {
    sixRows(db);
    asAttacker(db, sql);
    return brokenAt(db);
  } finally {
    db.close();
  }
}

describe("audit hash chain", () => {
  it("hashes a row as SHA-256 over the documented domain-separated encoding", () => {
    const row = {
      id: 1,
      at: 1_700_000_000_000,
      nodeId: "n1",
      event: "schema_migrated",
      walletId: null,
      ceremonyId: "ab",
      detail: '{"fromVersion":2,"toVersion":3}',
    };
    const str = (s: string) => {
      const b = Buffer.from(s, "utf8");
      const n = Buffer.alloc(4);
      n.writeUInt32BE(b.length);
      return [n, b];
    };
    const u64 = (v: number) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(v));
      return b;
    };
    const encoded = Buffer.concat([
      Buffer.from("tss/audit-chain/v1\0"),
      Buffer.from(AUDIT_GENESIS),
      u64(row.id),
      u64(row.at),
      ...str(row.nodeId),
      ...str(row.event),
      Buffer.of(0),
      Buffer.of(1),
      ...str("ab"),
      ...str(row.detail),
    ]);
    const hash = toHex(auditRowHash(AUDIT_GENESIS, row));
    expect(hash).toBe(createHash("sha256").update(encoded).digest("hex"));
    // Pinned: the encoding is a format; changing it breaks every stored chain.
    expect(hash).toBe("ddef3d2f9890f78effd987b50827b7d2d938a3493f37f4e249cb1be564a101b3");
    // A null and an empty wallet id differ; so does the order of fields.
    expect(toHex(auditRowHash(AUDIT_GENESIS, { ...row, walletId: "" }))).not.toBe(hash);
    expect(
      toHex(auditRowHash(AUDIT_GENESIS, { ...row, nodeId: "n", event: "1schema_migrated" })),
    ).not.toBe(hash);
  });

  it("chains appends from the genesis value; verification walks it and names the head", () => {
    const { db } = fresh();
    expect(verifyAuditChain(db)).toEqual({ ok: true, rows: 0, head: null });
    sixRows(db);
    const rows = db.all("SELECT id, prev_hash, row_hash FROM audit_log ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(toHex(new Uint8Array(rows[0]!.prev_hash as ArrayBuffer))).toBe(toHex(AUDIT_GENESIS));
    for (let k = 1; k < rows.length; k++)
      expect(toHex(new Uint8Array(rows[k]!.prev_hash as ArrayBuffer))).toBe(
        toHex(new Uint8Array(rows[k - 1]!.row_hash as ArrayBuffer)),
      );
    const report = verifyAuditChain(db);
    expect(report).toEqual({
      ok: true,
      rows: 6,
      head: { id: 6, hash: readAudit(db).at(-1)!.hash },
    });
    db.close();
  });

  it("the host's own code can neither change nor delete rows nor add unchained ones, and a fork is refused", () => {
    const { db } = fresh();
    sixRows(db);
    expect(() => db.run("UPDATE audit_log SET at = 0 WHERE id = 2")).toThrow(/append-only/);
    expect(() => db.run("DELETE FROM audit_log WHERE id = 6")).toThrow(/append-only/);
    expect(() =>
      db.run(
        "INSERT INTO audit_log (at, node_id, event, detail) VALUES (1, 'n1', 'schema_migrated', '{}')",
      ),
    ).toThrow(/chained/);
    // A second row committing to row 5's hash would fork the chain.
    expect(() =>
      db.run(
        "INSERT INTO audit_log (id, at, node_id, event, detail, prev_hash, row_hash) SELECT 99, 1, 'n1', 'schema_migrated', '{}', prev_hash, randomblob(32) FROM audit_log WHERE id = 6",
      ),
    ).toThrow(/UNIQUE/);
    expect(verifyAuditChain(db).ok).toBe(true);
    db.close();
  });

  it("the operator's read-only connection cannot write at all", () => {
    const { db, path } = fresh();
    sixRows(db);
    const ro = openReadOnlyFile(path);
    expect(verifyAuditChain(ro)).toMatchObject({ ok: true, rows: 6 });
    expect(() => ro.exec("DROP TRIGGER audit_log_no_delete")).toThrow(/readonly/);
    expect(() =>
      appendAudit(ro, "n1", { event: "schema_migrated", fromVersion: 3, toVersion: 3 }),
    ).toThrow(/readonly/);
    ro.close();
    db.close();
  });

  it("finds an edited field at its row", () => {
    const edits = [
      `UPDATE audit_log SET detail = replace(detail, 'n2 could not', 'n3 could not') WHERE id = 5`,
      "UPDATE audit_log SET at = at + 1 WHERE id = 5",
      "UPDATE audit_log SET node_id = 'n9' WHERE id = 5",
      "UPDATE audit_log SET wallet_id = NULL WHERE id = 5",
      "UPDATE audit_log SET event = 'share_stored' WHERE id = 5",
    ];
    for (const sql of edits)
      expect(breakWith(sql)).toEqual({
        id: 5,
        problem: "row 5 does not match its hash: the row was altered",
      });
    // A value no append writes is reported, not thrown.
    expect(breakWith("UPDATE audit_log SET at = -1 WHERE id = 5")).toMatchObject({
      id: 5,
      problem: expect.stringMatching(/^row 5 is malformed/),
    });
  });

  it("finds a deleted middle row at the row after it", () => {
    expect(breakWith("DELETE FROM audit_log WHERE id = 3")).toEqual({
      id: 4,
      problem: "row 4 follows row 2: row 3 was deleted",
    });
    // Renumbering the rest to close the gap does not help: row 3's successor commits to row 3.
    expect(
      breakWith(
        "DELETE FROM audit_log WHERE id = 3; UPDATE audit_log SET id = id - 1 WHERE id > 3;",
      ),
    ).toEqual({
      id: 3,
      problem: "row 3 does not commit to row 2's hash: rows were reordered or replaced",
    });
  });

  it("finds two swapped rows at the first of them, whole rows or content only", () => {
    expect(
      breakWith(
        "UPDATE audit_log SET id = 1000 WHERE id = 3; UPDATE audit_log SET id = 3 WHERE id = 4; UPDATE audit_log SET id = 4 WHERE id = 1000;",
      ),
    ).toEqual({
      id: 3,
      problem: "row 3 does not commit to row 2's hash: rows were reordered or replaced",
    });
    expect(
      breakWith(
        `CREATE TEMP TABLE c AS SELECT * FROM audit_log WHERE id IN (3, 4);
         UPDATE audit_log SET (at, node_id, event, wallet_id, ceremony_id, detail) =
           (SELECT at, node_id, event, wallet_id, ceremony_id, detail FROM c WHERE c.id = 7 - audit_log.id)
           WHERE id IN (3, 4);`,
      ),
    ).toEqual({ id: 3, problem: "row 3 does not match its hash: the row was altered" });
  });

  it("finds deleted oldest and newest rows; a rewritten chain only against a head noted earlier", () => {
    expect(breakWith("DELETE FROM audit_log WHERE id IN (1, 2)")).toEqual({
      id: 3,
      problem:
        "row 3 is the first row but does not start the chain: the rows before it were deleted",
    });

    const newest = fresh().db;
    sixRows(newest);
    asAttacker(newest, "DELETE FROM audit_log WHERE id >= 5");
    expect(brokenAt(newest)).toEqual({
      id: 5,
      problem: "the newest rows were deleted: ids up to 6 were issued, the last row is row 4",
    });
    // The host keeps appending after such a deletion, and the gap stays visible.
    appendAudit(newest, "n1", { event: "schema_migrated", fromVersion: 3, toVersion: 3 });
    expect(brokenAt(newest)).toEqual({
      id: 7,
      problem: "row 7 follows row 4: rows 5..6 were deleted",
    });
    newest.close();

    // Someone who deletes the newest row, resets the counter and recomputes the chain leaves a
    // chain that holds: only the head noted before (tss audit prints it) shows the difference.
    const rewritten = fresh().db;
    sixRows(rewritten);
    const noted = verifyAuditChain(rewritten);
    asAttacker(
      rewritten,
      "DELETE FROM audit_log WHERE id = 6; UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit_log';",
    );
    const after = verifyAuditChain(rewritten);
    expect(after.ok).toBe(true);
    expect(after).not.toEqual(noted);
    rewritten.close();
  });

  it("finds a row added by hand without the host's hashes", () => {
    expect(
      breakWith(
        "INSERT INTO audit_log (id, at, node_id, event, detail) VALUES (7, 7000, 'n1', 'schema_migrated', '{}')",
      ),
    ).toEqual({ id: 7, problem: "row 7 carries no chain hash: it was not written by the host" });
  });

  it("serialises concurrent appends from several processes into one chain", async () => {
    const { db, path } = fresh();
    const writers = ["p1", "p2", "p3"];
    const PER = 40;
    const exits = await Promise.all(
      writers.map(
        (node) =>
          new Promise<number | null>((done) => {
            const child = spawn(
              BUN,
              ["run", join(ROOT, "test/fixtures/audit-appender.ts"), path, node, String(PER)],
              { stdio: ["ignore", "ignore", "inherit"] },
            );
            child.on("exit", (code) => done(code));
          }),
      ),
    );
    expect(exits).toEqual([0, 0, 0]);
    const report = verifyAuditChain(db);
    expect(report).toMatchObject({ ok: true, rows: writers.length * PER });
    const byNode = new Map<string, number>();
    for (const e of readAudit(db, { limit: 10_000 }))
      byNode.set(e.nodeId, (byNode.get(e.nodeId) ?? 0) + 1);
    expect(Object.fromEntries(byNode)).toEqual({ p1: PER, p2: PER, p3: PER });
    db.close();
  }, 60_000);

  it("migration 3 chains the rows already in the log, in id order, and appends continue that chain", () => {
    const db = openDatabase({ path: join(dir, "v2.db") });
    migrate(db, MIGRATIONS.slice(0, 2));
    for (const [at, event, detail] of [
      [10, "wallet_created", `{"threshold":2,"parties":3,"publicKeyHex":"02${"11".repeat(32)}"}`],
      [20, "share_stored", '{"generation":0,"partyIndex":1,"status":"active"}'],
    ] as const)
      db.run(
        "INSERT INTO audit_log (at, node_id, event, wallet_id, detail) VALUES (:at, 'n1', :event, :w, :detail)",
        { at, event, w: W, detail },
      );
    expect(migrate(db, MIGRATIONS.slice(0, 3)).applied).toEqual([3]);
    const before = verifyAuditChain(db);
    expect(before).toMatchObject({ ok: true, rows: 2, head: { id: 2 } });
    const first = db.get("SELECT * FROM audit_log WHERE id = 1")!;
    expect(toHex(new Uint8Array(first.row_hash as ArrayBuffer))).toBe(
      toHex(
        auditRowHash(AUDIT_GENESIS, {
          id: 1,
          at: 10,
          nodeId: "n1",
          event: "wallet_created",
          walletId: W,
          ceremonyId: null,
          detail: first.detail as string,
        }),
      ),
    );
    expect(appendAudit(db, "n1", { event: "schema_migrated", fromVersion: 2, toVersion: 3 })).toBe(
      3,
    );
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, rows: 3 });
    asAttacker(db, "UPDATE audit_log SET at = 11 WHERE id = 1");
    expect(brokenAt(db).id).toBe(1);
    db.close();
  });
});

describe("audit events", () => {
  it("takes the requester's client id from the request's Response Topic", () => {
    expect(responseClientId("tss/v1/responses/cli-7/req/1")).toBe("cli-7");
    const seen: (string | undefined)[] = [];
    const server = new RequestServer({ publish: () => {} } as unknown as MqttClient, () => {});
    server.setHandler((_op, _body, reply) => seen.push(reply.client));
    server.onMessage("tss/v1/requests/nodes", Buffer.from('{"requestId":"r-1"}'), {
      properties: { responseTopic: "tss/v1/responses/cli-7/x", correlationData: Buffer.of(1) },
    } as unknown as IPublishPacket);
    expect(seen).toEqual(["cli-7"]);
  });

  it("records the requester's client id, with anything unprintable replaced", () => {
    expect(requesterOf({})).toEqual({});
    expect(requesterOf({ client: "cli-7" })).toEqual({ client: "cli-7" });
    expect(requesterOf({ client: "a\nb/c" })).toEqual({ client: "a?b?c" });
    expect(requesterOf({ client: "x".repeat(300) }).client).toHaveLength(128);
  });

  it("turns a failure into ceremony_aborted with its code, sentence and structured blame", () => {
    const c = { ceremonyId: cid(3), kind: "sign" as const, requestId: "r-3", walletId: W };
    expect(
      ceremonyAborted(c, {
        code: "stale_share",
        message: "n2 is behind",
        blame: { node: "n2", party: 2 },
      }),
    ).toEqual({
      event: "ceremony_aborted",
      ceremonyId: cid(3),
      walletId: W,
      kind: "sign",
      code: "stale_share",
      reason: "n2 is behind",
      requestId: "r-3",
      blamedNode: "n2",
      blamedParty: 2,
    });
    // Whatever was thrown, the event is still one the log accepts.
    const odd = ceremonyAborted(
      { ...c, walletId: null },
      { code: "Not A Code", blame: { node: "bad node", party: 999 } },
    );
    expect(odd).toMatchObject({ code: "internal", reason: "no reason given" });
    expect(odd).not.toHaveProperty("blamedNode");
    expect(odd).not.toHaveProperty("blamedParty");
    expect(odd).not.toHaveProperty("walletId");
    const { db } = fresh();
    appendAudit(db, "n1", odd);
    appendAudit(db, "n1", ceremonyAborted(c, null));
    expect(readAudit(db)).toHaveLength(2);
    db.close();
  });

  it("types approval decisions and policy changes, and keeps secrets out of them", () => {
    const { db } = fresh();
    const [p1, p2, k1, k2] = ["p1", "p2", "k1", "k2"].map((x) =>
      createHash("sha256").update(x).digest("hex"),
    );
    appendAudit(db, "n1", {
      event: "approval_decided",
      walletId: W,
      requestId: "r-4",
      operation: "sign",
      decision: "refused",
      decidedBy: "n2",
      policyHash: p1,
      approverKeyIds: [k1!],
      refusal: "below_quorum",
      reason: "1 of 2 approvals",
      client: "cli-7",
    });
    appendAudit(db, "n1", {
      event: "policy_changed",
      walletId: W,
      fromPolicyHash: p1,
      toPolicyHash: p2!,
      requestId: "r-5",
      quorum: 2,
      approvers: 3,
      approverKeyIds: [k1!, k2!],
    });
    expect(readAudit(db).map((e) => [e.walletId, e.detail])).toEqual([
      [
        W,
        {
          requestId: "r-4",
          operation: "sign",
          decision: "refused",
          decidedBy: "n2",
          policyHash: p1,
          approverKeyIds: [k1],
          refusal: "below_quorum",
          reason: "1 of 2 approvals",
          client: "cli-7",
        },
      ],
      [
        W,
        {
          fromPolicyHash: p1,
          toPolicyHash: p2,
          requestId: "r-5",
          quorum: 2,
          approvers: 3,
          approverKeyIds: [k1, k2],
        },
      ],
    ]);
    const refuse = (e: unknown) => () => appendAudit(db, "n1", e as AuditEvent);
    const change = { event: "policy_changed", walletId: W, toPolicyHash: p2 };
    expect(refuse({ ...change, policy: "{}" })).toThrow(/no field policy/);
    expect(refuse({ ...change, walletId: undefined })).toThrow(/needs a wallet id/);
    // Hash fields take exactly one SHA-256 in lowercase hex: no bytes, nothing longer.
    expect(refuse({ ...change, toPolicyHash: new Uint8Array(32) })).toThrow(/SHA-256/);
    expect(refuse({ ...change, toPolicyHash: `${p2}00` })).toThrow(/SHA-256/);
    expect(refuse({ ...change, approverKeyIds: Array(17).fill(k1) })).toThrow(/at most 16/);
    const decision = {
      event: "approval_decided",
      requestId: "r",
      operation: "sign",
      decision: "approved",
      decidedBy: "n1",
    };
    expect(refuse({ ...decision, decision: "maybe" })).toThrow(/decision/);
    expect(refuse({ ...decision, decidedBy: new Uint8Array(8) })).toThrow(/decidedBy/);
    const secret = toHex(new Uint8Array(32).fill(7));
    appendAudit(db, "n1", { ...decision, reason: `pasted ${secret}` } as AuditEvent);
    expect(JSON.stringify(readAudit(db))).not.toContain(secret);
    db.close();
  });

  it("filters by wallet (its rows and its ceremonies' rows) and by time", () => {
    const { db } = fresh();
    sixRows(db);
    const ids = (o: Parameters<typeof readAudit>[1]) => readAudit(db, o).map((e) => e.id);
    // The DKG's start row (1) carries no wallet id but belongs to the wallet's ceremony.
    expect(ids({ walletId: W })).toEqual([1, 2, 3, 5]);
    expect(ids({ walletId: "w_other" })).toEqual([4, 6]);
    expect(ids({ sinceMs: 4000 })).toEqual([4, 5, 6]);
    expect(ids({ walletId: W, sinceMs: 2500 })).toEqual([3, 5]);
    expect(ids({ walletId: "w_none" })).toEqual([]);
    db.close();
  });
});

describe("the request handler's audit rows", () => {
  const sk = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(sk, true);
  const held = (nodeId: string, partyIndex: number): HeldWallet => ({
    walletId: W,
    nodeId,
    partyIndex,
    generation: 0,
    threshold: 2,
    parties: 2,
    publicKey,
    publicPackage: Uint8Array.of(1),
    chainCode: new Uint8Array(32),
  });

  /** A participant that plays every phase without a protocol, finishing with `signature`. */
  function fakeParticipant(
    nodeId: string,
    partyIndex: number,
    signature: Uint8Array | Error,
  ): Participant {
    const reply = async () => ({ messages: [], generation: 0, signature: signature as Uint8Array });
    return {
      nodeId,
      prepare: async () => {
        if (signature instanceof Error) throw signature;
        return { walletId: W, generation: 0, partyIndex };
      },
      attestation: async () => Uint8Array.of(1),
      start: reply,
      step: reply,
      abort: async () => {},
      persist: async () => Uint8Array.of(1),
      commit: async () => {},
      rollback: async () => {},
    };
  }

  /** Node a coordinates a 2-of-2 signature with b; a's fake finishes with `aSignature`. */
  async function signThrough(
    b: Participant,
    aSignature: Uint8Array = new Uint8Array(65),
  ): Promise<{ db: Db; reply: { fail?: unknown; done?: unknown } }> {
    const { db } = fresh();
    const a = fakeParticipant("a", 1, aSignature);
    const members: Record<string, Participant> = { a, b };
    const peers: PeerDirectory = {
      liveNodes: () => [
        { nodeId: "a", since: 1 },
        { nodeId: "b", since: 2 },
      ],
      participant: (id) => members[id]!,
      ask: (async (nodeId: string, op: NodeOpName) =>
        op === "requestContext"
          ? { request: null, wallet: held(nodeId, nodeId === "a" ? 1 : 2) }
          : null) as PeerDirectory["ask"],
    };
    const out: { fail?: unknown; done?: unknown } = {};
    const reply: Reply = {
      client: "cli-7",
      progress: () => {},
      done: (r) => (out.done = r),
      fail: (e) => (out.fail = e),
    };
    const self = { nodeId: "a", db } as unknown as NodeHost;
    await new RequestHandler(self, peers, { phaseTimeoutMs: 5_000 }).handle(
      "sign",
      { requestId: "r-9", walletId: W, digest: DIGEST_HEX },
      reply,
    );
    return { db, reply: out };
  }
  const DIGEST_HEX = "42".repeat(32);

  it("a ceremony's start and abort: request id, client, reason and the node blamed", async () => {
    const failing = fakeParticipant(
      "b",
      2,
      Object.assign(new Error("unseal failed"), { code: "unseal_failed" }),
    );
    const { db, reply } = await signThrough(failing);
    expect(reply.fail).toMatchObject({ code: "ceremony_failed", node: "b" });
    const entries = readAudit(db);
    expect(entries.map((e) => e.event)).toEqual(["ceremony_started", "ceremony_aborted"]);
    expect(entries[0]).toMatchObject({
      nodeId: "a",
      walletId: W,
      detail: { kind: "sign", participants: ["a", "b"], requestId: "r-9", client: "cli-7" },
    });
    expect(entries[1]).toMatchObject({
      walletId: W,
      ceremonyId: entries[0]!.ceremonyId,
      detail: { kind: "sign", code: "ceremony_failed", requestId: "r-9", blamedNode: "b" },
    });
    expect(String(entries[1]!.detail.reason)).toMatch(/b could not load its share/);
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, rows: 2 });
    db.close();
  });

  it("a ceremony's successful end", async () => {
    const digest = Buffer.from(DIGEST_HEX, "hex");
    const rec = secp256k1.sign(digest, sk, { prehash: false, format: "recovered" });
    // noble's recovered form is recovery id || r || s; the enclave's is r || s || recovery id.
    const signature = Uint8Array.of(...rec.slice(1), rec[0]!);
    const { db, reply } = await signThrough(fakeParticipant("b", 2, signature), signature);
    expect(reply.fail ?? null).toBeNull();
    const entries = readAudit(db);
    expect(entries.map((e) => e.event)).toEqual(["ceremony_started", "ceremony_finished"]);
    expect(entries[1]).toMatchObject({
      walletId: W,
      detail: { kind: "sign", status: "succeeded", requestId: "r-9" },
    });
    db.close();
  });
});

describe("tss audit", () => {
  const tss = (...args: string[]) => {
    const r = spawnSync(BUN, ["run", join(ROOT, "src/cli/tss.ts"), "audit", ...args], {
      encoding: "utf8",
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("shows the rows, checks the chain and exits 0; filters narrow the rows, not the check", () => {
    const { db, path } = fresh();
    sixRows(db);
    const head = verifyAuditChain(db);
    db.close();
    const bytes = readFileSync(path);

    const all = tss("--db", path);
    expect(all.status).toBe(0);
    expect(all.stdout).toMatch(/^ID +TIME +NODE +EVENT +WALLET +CEREMONY +DETAIL$/m);
    expect(all.stdout).toMatch(
      /^5 +1970-01-01T00:00:05\.000Z +n1 +ceremony_aborted +w_0123abcd +0{12}… +kind=sign code=ceremony_failed reason=n2 could not load its share requestId=r-2 blamedNode=n2$/m,
    );
    expect(all.stdout).toContain(
      `The audit chain holds: 6 row(s) from the genesis value to row 6, head hash ${head.ok && head.head!.hash}.`,
    );

    const json = tss("--db", path, "--wallet", W, "--since", "1970-01-01T00:00:02.500Z", "--json");
    expect(json.status).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.entries.map((e: { id: number }) => e.id)).toEqual([3, 5]);
    expect(doc.chain).toEqual(head);

    const recent = tss("--db", path, "--since", "1h");
    expect(recent.status).toBe(0);
    expect(recent.stdout).toMatch(/^No audit rows match\.$/m);
    expect(recent.stdout).toContain("The audit chain holds: 6 row(s)");
    // Opened read-only: the file is byte for byte what the host left.
    expect(readFileSync(path).equals(bytes)).toBe(true);
  }, 60_000);

  it("exits 1 naming the first broken row when the log was tampered with", () => {
    const { db, path } = fresh();
    sixRows(db);
    asAttacker(db, "DELETE FROM audit_log WHERE id = 2");
    db.close();
    const r = tss("--db", path);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "tss: The audit chain is broken at row 3: row 3 follows row 1: row 2 was deleted; the 1 row(s) before it hold.\n",
    );
    expect(r.stdout).not.toContain("chain holds");
    const j = tss("--db", path, "--json");
    expect(j.status).toBe(1);
    expect(JSON.parse(j.stdout).chain).toEqual({
      ok: false,
      rows: 1,
      broken: { id: 3, problem: "row 3 follows row 1: row 2 was deleted" },
    });
  }, 60_000);

  it("refuses usage mistakes with status 2 and an unmigrated database with status 1", () => {
    expect(tss()).toMatchObject({
      status: 2,
      stderr: "tss: tss audit needs --db PATH, the node's database file.\n",
    });
    expect(tss("--db", join(dir, "absent.db")).status).toBe(2);
    expect(existsSync(join(dir, "absent.db"))).toBe(false);
    expect(tss("--db", "x.db", "--url", "mqtt://h:1")).toMatchObject({
      status: 2,
      stderr: "tss: Option --url does not apply to tss audit.\n",
    });
    expect(tss("--db", "x.db", "--since", "2026-12-01T08:00")).toMatchObject({ status: 2 });
    expect(tss("--db", "x.db", "--wallet", "bad id")).toMatchObject({ status: 2 });
    const old = openDatabase({ path: join(dir, "old.db") });
    migrate(old, MIGRATIONS.slice(0, 2));
    old.close();
    const r = tss("--db", join(dir, "old.db"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/schema version 2, before the audit chain \(version 3\)/);
  }, 60_000);
});
