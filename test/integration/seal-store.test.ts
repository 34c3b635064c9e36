/**
 * Enclave sealing (AES-256-GCM bound to wallet/node/index/generation/public key) and the host's
 * libSQL store, on real database files in a temp dir.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DATA_KEY_BYTES,
  MAX_SEALED_BYTES,
  MAX_SHARE_BYTES,
  SEAL_OVERHEAD,
  SealError,
  sealAssociatedData,
  sealShare,
  unsealShare,
  type SealBinding,
} from "../../src/enclave/seal.ts";
import {
  abortRefresh,
  appendAudit,
  commitRefresh,
  currentShare,
  findCeremonyByRequest,
  finishCeremony,
  generationOf,
  getCeremony,
  insertActiveShare,
  insertWallet,
  latestVersion,
  MIGRATIONS,
  listShares,
  migrate,
  openDatabase,
  openStore,
  parseDbLocation,
  readAudit,
  runningCeremonies,
  schemaVersion,
  stagePendingShare,
  startCeremony,
  StoreError,
  type Db,
  type NewShare,
} from "../../src/host/store/index.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function pubKey(): Uint8Array {
  const pk = randomBytes(33);
  pk[0] = 0x02;
  return new Uint8Array(pk);
}

const PK = pubKey();
const CHAIN_CODE = new Uint8Array(32).fill(7);
const BINDING: SealBinding = {
  walletId: "wallet-1",
  nodeId: "node-a",
  partyIndex: 2,
  generation: 0,
  publicKey: PK,
};

function sealError(fn: () => unknown): SealError {
  try {
    const out = fn();
    throw new Error(`expected a SealError, got a result of ${(out as Uint8Array)?.length} bytes`);
  } catch (e) {
    if (!(e instanceof SealError)) throw e;
    expect(e.message.length).toBeGreaterThan(10);
    return e;
  }
}

function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error("expected a StoreError");
}

describe("sealShare / unsealShare", () => {
  const dataKey = new Uint8Array(randomBytes(DATA_KEY_BYTES));

  it("round-trips, with a fresh nonce per seal and no AD in the blob", () => {
    const share = new Uint8Array(randomBytes(3000));
    const a = sealShare({ dataKey, shareBytes: share, binding: BINDING });
    const b = sealShare({ dataKey, shareBytes: share, binding: BINDING });
    expect(a.length).toBe(share.length + SEAL_OVERHEAD);
    expect(a[0]).toBe(1);
    expect(hex(a)).not.toBe(hex(b));
    expect(Buffer.from(a).indexOf(Buffer.from(BINDING.walletId))).toBe(-1);
    expect(hex(unsealShare({ dataKey, sealed: a, binding: { ...BINDING } }))).toBe(hex(share));
    expect(hex(unsealShare({ dataKey, sealed: b, binding: BINDING }))).toBe(hex(share));
  });

  it("handles the largest share that fits the 2 MiB bound", () => {
    const share = new Uint8Array(MAX_SHARE_BYTES).fill(7);
    const sealed = sealShare({ dataKey, shareBytes: share, binding: BINDING });
    expect(sealed.length).toBe(MAX_SEALED_BYTES);
    expect(unsealShare({ dataKey, sealed, binding: BINDING }).every((x) => x === 7)).toBe(true);
    expect(
      sealError(() =>
        sealShare({ dataKey, shareBytes: new Uint8Array(MAX_SHARE_BYTES + 1), binding: BINDING }),
      ).code,
    ).toBe("malformed");
  });

  it("fails authentication for every flipped bit after the version byte; a changed version is malformed", () => {
    const sealed = sealShare({
      dataKey,
      shareBytes: new Uint8Array(randomBytes(8)),
      binding: BINDING,
    });
    let tried = 0;
    for (let pos = 0; pos < sealed.length; pos++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = sealed.slice();
        bad[pos]! ^= 1 << bit;
        const e = sealError(() => unsealShare({ dataKey, sealed: bad, binding: BINDING }));
        // Byte 0 is the format version: any other value is an unknown format, refused before decryption.
        expect(e.code).toBe(pos === 0 ? "malformed" : "auth_failed");
        tried++;
      }
    }
    expect(tried).toBe(8 * (SEAL_OVERHEAD + 8));
  });

  it("fails authentication under any other binding or data key", () => {
    const sealed = sealShare({
      dataKey,
      shareBytes: new Uint8Array(randomBytes(64)),
      binding: BINDING,
    });
    const otherPk = PK.slice();
    otherPk[32]! ^= 1;
    const flippedPrefix = PK.slice();
    flippedPrefix[0] = 0x03;
    const variants: SealBinding[] = [
      { ...BINDING, walletId: "wallet-2" },
      { ...BINDING, walletId: "wallet-1 " },
      { ...BINDING, nodeId: "node-b" },
      { ...BINDING, partyIndex: 3 },
      { ...BINDING, generation: 1 },
      { ...BINDING, publicKey: otherPk },
      { ...BINDING, publicKey: flippedPrefix },
    ];
    for (const binding of variants)
      expect(sealError(() => unsealShare({ dataKey, sealed, binding })).code).toBe("auth_failed");
    const otherKey = dataKey.slice();
    otherKey[0]! ^= 0x80;
    expect(sealError(() => unsealShare({ dataKey: otherKey, sealed, binding: BINDING })).code).toBe(
      "auth_failed",
    );
  });

  it("encodes the binding unambiguously (length prefixes, domain label, version)", () => {
    const ab = sealAssociatedData({ ...BINDING, walletId: "ab", nodeId: "c" });
    const bc = sealAssociatedData({ ...BINDING, walletId: "a", nodeId: "bc" });
    expect(hex(ab)).not.toBe(hex(bc));
    expect(Buffer.from(ab).toString("latin1")).toContain("tss-signing-layer/sealed-key-share");
    const sealed = sealShare({
      dataKey,
      shareBytes: Uint8Array.of(1, 2, 3),
      binding: { ...BINDING, walletId: "ab", nodeId: "c" },
    });
    expect(
      sealError(() =>
        unsealShare({ dataKey, sealed, binding: { ...BINDING, walletId: "a", nodeId: "bc" } }),
      ).code,
    ).toBe("auth_failed");
  });

  it("refuses truncated, oversized and unknown-version blobs as malformed", () => {
    const sealed = sealShare({ dataKey, shareBytes: Uint8Array.of(9), binding: BINDING });
    expect(sealed.length).toBe(SEAL_OVERHEAD + 1);
    for (let len = 0; len < sealed.length; len++) {
      expect(
        sealError(() => unsealShare({ dataKey, sealed: sealed.subarray(0, len), binding: BINDING }))
          .code,
      ).toBe("malformed");
    }
    const huge = new Uint8Array(MAX_SEALED_BYTES + 1);
    huge[0] = 1;
    expect(
      sealError(() => unsealShare({ dataKey, sealed: huge, binding: BINDING })).message,
    ).toMatch(/limit/);
    const v2 = sealed.slice();
    v2[0] = 2;
    expect(sealError(() => unsealShare({ dataKey, sealed: v2, binding: BINDING })).message).toMatch(
      /version 2/,
    );
    expect(
      sealError(() =>
        unsealShare({ dataKey, sealed: "x" as unknown as Uint8Array, binding: BINDING }),
      ).code,
    ).toBe("malformed");
  });

  it("refuses bad data keys, bindings and shares as malformed", () => {
    const sealed = sealShare({ dataKey, shareBytes: Uint8Array.of(1), binding: BINDING });
    for (const len of [0, 16, 31, 33, 64]) {
      const key = new Uint8Array(len);
      expect(sealError(() => unsealShare({ dataKey: key, sealed, binding: BINDING })).code).toBe(
        "malformed",
      );
      expect(
        sealError(() => sealShare({ dataKey: key, shareBytes: Uint8Array.of(1), binding: BINDING }))
          .code,
      ).toBe("malformed");
    }
    const uncompressed = new Uint8Array(33);
    uncompressed[0] = 0x04;
    const bad: Partial<SealBinding>[] = [
      { walletId: "" },
      { nodeId: "x".repeat(257) },
      { walletId: "\ud800" },
      { partyIndex: 0 },
      { partyIndex: 256 },
      { partyIndex: 1.5 },
      { generation: -1 },
      { generation: 2 ** 32 },
      { publicKey: new Uint8Array(32) },
      { publicKey: uncompressed },
    ];
    for (const b of bad) {
      expect(
        sealError(() =>
          sealShare({ dataKey, shareBytes: Uint8Array.of(1), binding: { ...BINDING, ...b } }),
        ).code,
      ).toBe("malformed");
      expect(
        sealError(() => unsealShare({ dataKey, sealed, binding: { ...BINDING, ...b } })).code,
      ).toBe("malformed");
    }
    expect(
      sealError(() => sealShare({ dataKey, shareBytes: new Uint8Array(0), binding: BINDING })).code,
    ).toBe("malformed");
  });
});

describe("libSQL store", () => {
  const root = mkdtempSync(join(tmpdir(), "seal-store-"));
  let dir = "";
  let path = "";
  let db: Db;
  let counter = 0;
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    dir = join(root, `t${counter++}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    path = join(dir, "host.db");
    db = openStore({ path }).db;
  });
  afterEach(() => db.close());

  const WALLET = "wallet-1";
  function wallet(walletId = WALLET) {
    return insertWallet(
      db,
      {
        walletId,
        threshold: 2,
        parties: 3,
        publicKey: PK,
        chainCode: CHAIN_CODE,
        publicPackage: new Uint8Array(randomBytes(200)),
      },
      1000,
    );
  }
  function share(over: Partial<NewShare> = {}): NewShare {
    return {
      walletId: WALLET,
      nodeId: "node-a",
      partyIndex: 1,
      generation: 0,
      sealedShare: new Uint8Array(randomBytes(100)),
      kmsCiphertextBlob: new Uint8Array(randomBytes(184)),
      kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/dev",
      ...over,
    };
  }

  it("opens files in WAL mode with foreign keys, synchronous=FULL and secure_delete", () => {
    expect(db.get("PRAGMA journal_mode")?.journal_mode).toBe("wal");
    expect(db.get("PRAGMA foreign_keys")?.foreign_keys).toBe(1);
    expect(db.get("PRAGMA synchronous")?.synchronous).toBe(2);
    expect(db.get("PRAGMA secure_delete")?.secure_delete).toBe(1);
    // No wallet: the foreign key refuses the share even through raw SQL.
    expect(() =>
      db.run(
        "INSERT INTO shares (wallet_id, node_id, party_index, generation, status, sealed_share, kms_ciphertext_blob, kms_key_id, created_at) VALUES ('nope', 'n', 1, 0, 'active', x'00', x'00', 'k', 0)",
      ),
    ).toThrow(/FOREIGN KEY/);
  });

  it("parses locations: paths are files, libsql/https/http URLs are servers; refuses cleartext tokens", () => {
    expect(parseDbLocation("/var/lib/host.db")).toEqual({ path: "/var/lib/host.db" });
    expect(parseDbLocation("libsql://db.example.org", "t")).toEqual({
      url: "libsql://db.example.org",
      authToken: "t",
    });
    expect(storeError(() => parseDbLocation("./x.db", "t")).code).toBe("invalid");
    expect(
      storeError(() => openDatabase({ url: "http://db.example.org:8080", authToken: "t" })).message,
    ).toMatch(/in clear/);
    expect(storeError(() => openDatabase({ url: "ftp://db.example.org" })).message).toMatch(
      /scheme/,
    );
    expect(
      storeError(() => openDatabase({ path: join(dir, "no-such-dir", "x.db") })).message,
    ).toMatch(/cannot open database file/);
    expect(
      storeError(() => openDatabase({ url: "https://user:pw@db.example.org" })).message,
    ).toMatch(/authToken/);
  });

  it("migrations are idempotent across reopen and recorded in schema_migrations", () => {
    expect(schemaVersion(db)).toBe(latestVersion());
    wallet();
    db.close();
    const again = openStore({ path });
    db = again.db;
    expect(again.migration).toEqual({ from: latestVersion(), to: latestVersion(), applied: [] });
    expect(migrate(db).applied).toEqual([]);
    expect(db.all("SELECT version FROM schema_migrations").map((r) => r.version)).toEqual(
      MIGRATIONS.map((m) => m.version),
    );
    expect(generationOf(db, WALLET)).toBe(0);
  });

  it("refuses a database whose schema is newer than the code, and leaves it untouched", () => {
    db.run(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, 'from the future', 0)",
      { v: latestVersion() + 1 },
    );
    db.close();
    const e = storeError(() => openStore({ path }));
    expect(e.code).toBe("schema");
    expect(e.message).toMatch(/newer than this code knows/);
    db = openDatabase({ path });
    expect(schemaVersion(db)).toBe(latestVersion() + 1);
  });

  it("refuses a migration history with gaps", () => {
    db.run("DELETE FROM schema_migrations");
    db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (2, 'x', 0)");
    expect(
      storeError(() =>
        migrate(db, [
          { version: 1, name: "a", sql: "" },
          { version: 2, name: "b", sql: "" },
        ]),
      ).message,
    ).toMatch(/inconsistent/);
  });

  it("checks SQL parameters instead of letting the driver crash or bind NULL", () => {
    const sql = "SELECT wallet_id FROM wallets WHERE wallet_id = :w";
    expect(storeError(() => db.get(sql, { w: true as unknown as string })).code).toBe("invalid");
    expect(storeError(() => db.get(sql, { w: undefined as unknown as string })).code).toBe(
      "invalid",
    );
    expect(storeError(() => db.get(sql, {})).message).toMatch(/:w missing/);
    expect(storeError(() => db.get(sql, { w: "a", x: 1 })).message).toMatch(/:x is not used/);
    expect(storeError(() => db.get(sql, { w: 1.5 })).code).toBe("invalid");
  });

  it("nests transactions with savepoints and rolls back on error", () => {
    wallet();
    expect(() =>
      db.transaction(() => {
        insertWallet(db, {
          walletId: "w2",
          threshold: 2,
          parties: 2,
          publicKey: PK,
          chainCode: CHAIN_CODE,
          publicPackage: Uint8Array.of(1),
        });
        try {
          db.transaction(() => {
            insertWallet(db, {
              walletId: "w3",
              threshold: 2,
              parties: 2,
              publicKey: PK,
              chainCode: CHAIN_CODE,
              publicPackage: Uint8Array.of(1),
            });
            throw new Error("inner");
          });
        } catch {
          /* inner rolled back only */
        }
        expect(db.get("SELECT count(*) AS n FROM wallets")?.n).toBe(2);
        throw new Error("outer");
      }),
    ).toThrow("outer");
    expect(db.all("SELECT wallet_id FROM wallets").map((r) => r.wallet_id)).toEqual([WALLET]);
    expect(storeError(() => db.transaction(async () => 1)).message).toMatch(/synchronous/);
    expect(db.inTransaction).toBe(false);
  });

  it("wallets: insert, duplicate, lookup", () => {
    const w = wallet();
    expect(w).toMatchObject({
      walletId: WALLET,
      threshold: 2,
      parties: 3,
      currentGeneration: 0,
      createdAt: 1000,
    });
    expect(hex(w.publicKey)).toBe(hex(PK));
    expect(storeError(() => wallet()).code).toBe("conflict");
    expect(storeError(() => generationOf(db, "missing")).code).toBe("not_found");
    expect(
      storeError(() =>
        insertWallet(db, {
          walletId: "w",
          threshold: 1,
          parties: 2,
          publicKey: PK,
          chainCode: CHAIN_CODE,
          publicPackage: Uint8Array.of(1),
        }),
      ).code,
    ).toBe("invalid");
  });

  it("refresh commit: exactly one active share at the new generation, the old one deleted", () => {
    wallet();
    const g0 = insertActiveShare(db, share());
    expect(currentShare(db, WALLET, "node-a")).toMatchObject({ generation: 0, status: "active" });
    expect(storeError(() => insertActiveShare(db, share())).code).toBe("conflict");

    const g1 = stagePendingShare(db, share({ generation: 1 }));
    expect(g1.status).toBe("pending");
    // Until the commit the old share keeps serving.
    expect(hex(currentShare(db, WALLET, "node-a").sealedShare)).toBe(hex(g0.sealedShare));
    expect(storeError(() => stagePendingShare(db, share({ generation: 1 }))).message).toMatch(
      /already staged/,
    );
    expect(storeError(() => stagePendingShare(db, share({ generation: 2 }))).code).toBe("conflict");
    expect(storeError(() => commitRefresh(db, WALLET, "node-a", 2)).code).toBe("conflict");

    expect(commitRefresh(db, WALLET, "node-a", 1)).toEqual({
      fromGeneration: 0,
      toGeneration: 1,
      alreadyCommitted: false,
    });
    const rows = listShares(db, WALLET, "node-a");
    expect(rows.map((r) => [r.generation, r.status])).toEqual([[1, "active"]]);
    expect(hex(rows[0]!.sealedShare)).toBe(hex(g1.sealedShare));
    expect(generationOf(db, WALLET)).toBe(1);
    expect(currentShare(db, WALLET, "node-a").generation).toBe(1);
    expect(commitRefresh(db, WALLET, "node-a", 1).alreadyCommitted).toBe(true);
    expect(listShares(db, WALLET, "node-a")).toHaveLength(1);
  });

  it("refresh abort: the old share stays active and the generation unchanged", () => {
    wallet();
    const g0 = insertActiveShare(db, share());
    stagePendingShare(db, share({ generation: 1 }));
    expect(abortRefresh(db, WALLET, "node-a")).toBe(1);
    expect(listShares(db, WALLET, "node-a").map((r) => [r.generation, r.status])).toEqual([
      [0, "active"],
    ]);
    expect(hex(currentShare(db, WALLET, "node-a").sealedShare)).toBe(hex(g0.sealedShare));
    expect(generationOf(db, WALLET)).toBe(0);
    expect(storeError(() => commitRefresh(db, WALLET, "node-a", 1)).message).toMatch(
      /no pending share/,
    );
    // A later refresh can stage the same generation again.
    stagePendingShare(db, share({ generation: 1 }));
    expect(commitRefresh(db, WALLET, "node-a", 1).alreadyCommitted).toBe(false);
  });

  it("two nodes in one store: the wallet moves on at the first commit; the laggard says so", () => {
    wallet();
    insertActiveShare(db, share());
    insertActiveShare(db, share({ nodeId: "node-b", partyIndex: 2 }));
    expect(
      storeError(() => insertActiveShare(db, share({ nodeId: "node-c", partyIndex: 2 }))).code,
    ).toBe("conflict");
    stagePendingShare(db, share({ generation: 1 }));
    stagePendingShare(db, share({ nodeId: "node-b", partyIndex: 2, generation: 1 }));
    commitRefresh(db, WALLET, "node-a", 1);
    expect(storeError(() => currentShare(db, WALLET, "node-b")).message).toMatch(
      /has not committed the refresh/,
    );
    commitRefresh(db, WALLET, "node-b", 1);
    expect(currentShare(db, WALLET, "node-b")).toMatchObject({ generation: 1, partyIndex: 2 });
    expect(listShares(db, WALLET).map((r) => [r.nodeId, r.generation, r.status])).toEqual([
      ["node-a", 1, "active"],
      ["node-b", 1, "active"],
    ]);
    expect(storeError(() => currentShare(db, WALLET, "node-z")).code).toBe("not_found");
    // The schema itself refuses a second active share for a node.
    expect(() =>
      db.run(
        "INSERT INTO shares (wallet_id, node_id, party_index, generation, status, sealed_share, kms_ciphertext_blob, kms_key_id, created_at) VALUES (:w, 'node-a', 1, 9, 'active', x'00', x'00', 'k', 0)",
        { w: WALLET },
      ),
    ).toThrow(/UNIQUE/);
  });

  it("ceremonies: start, idempotent request ids per kind, finish once", () => {
    wallet();
    const id = hex(randomBytes(32));
    const c = startCeremony(
      db,
      {
        ceremonyId: id,
        kind: "sign",
        walletId: WALLET,
        coordinator: "node-a",
        participants: ["node-a", "node-b"],
        requestId: "req-1",
      },
      5,
    );
    expect(c).toMatchObject({
      status: "running",
      participants: ["node-a", "node-b"],
      finishedAt: null,
      createdAt: 5,
    });
    expect(
      storeError(() =>
        startCeremony(db, {
          ceremonyId: id,
          kind: "sign",
          walletId: WALLET,
          coordinator: "a",
          participants: ["a"],
        }),
      ).message,
    ).toMatch(/already exists/);
    const other = hex(randomBytes(32));
    expect(
      storeError(() =>
        startCeremony(db, {
          ceremonyId: other,
          kind: "sign",
          walletId: WALLET,
          coordinator: "a",
          participants: ["a"],
          requestId: "req-1",
        }),
      ).message,
    ).toMatch(/request req-1/);
    startCeremony(db, {
      ceremonyId: other,
      kind: "refresh",
      walletId: WALLET,
      coordinator: "a",
      participants: ["a"],
      requestId: "req-1",
    });
    expect(findCeremonyByRequest(db, "sign", "req-1")?.ceremonyId).toBe(id);
    expect(
      runningCeremonies(db)
        .map((x) => x.ceremonyId)
        .sort(),
    ).toEqual([id, other].sort());

    const sig = new Uint8Array(randomBytes(65));
    const done = finishCeremony(db, id, { status: "succeeded", result: sig }, 9);
    expect(done).toMatchObject({ status: "succeeded", finishedAt: 9, error: null });
    expect(hex(done.result!)).toBe(hex(sig));
    expect(storeError(() => finishCeremony(db, id, { status: "failed", error: "late" })).code).toBe(
      "conflict",
    );
    const failed = finishCeremony(db, other, {
      status: "failed",
      error: `peer 3 sent junk ${"ab".repeat(32)}`,
    });
    expect(failed.error).toBe("peer 3 sent junk [redacted]");
    expect(getCeremony(db, hex(randomBytes(32)))).toBeUndefined();
    expect(
      storeError(() =>
        startCeremony(db, {
          ceremonyId: "ABC",
          kind: "dkg",
          walletId: null,
          coordinator: "a",
          participants: ["a"],
        }),
      ).code,
    ).toBe("invalid");
    expect(
      storeError(() =>
        startCeremony(db, {
          ceremonyId: hex(randomBytes(32)),
          kind: "sign",
          walletId: null,
          coordinator: "a",
          participants: ["a"],
        }),
      ).code,
    ).toBe("invalid");
  });

  it("audit: typed public events only; unknown fields and bytes refused; free text scrubbed", () => {
    const cid = hex(randomBytes(32));
    appendAudit(
      db,
      "node-a",
      {
        event: "wallet_created",
        walletId: WALLET,
        threshold: 2,
        parties: 3,
        publicKeyHex: hex(PK),
      },
      1,
    );
    appendAudit(
      db,
      "node-a",
      {
        event: "ceremony_started",
        ceremonyId: cid,
        kind: "refresh",
        participants: ["node-a", "node-b"],
      },
      2,
    );
    appendAudit(
      db,
      "node-a",
      { event: "unseal_failed", walletId: WALLET, generation: 0, code: "auth_failed" },
      3,
    );
    const entries = readAudit(db);
    expect(entries.map((e) => e.event)).toEqual([
      "wallet_created",
      "ceremony_started",
      "unseal_failed",
    ]);
    expect(entries[1]).toMatchObject({
      ceremonyId: cid,
      walletId: null,
      detail: { kind: "refresh", participants: ["node-a", "node-b"] },
    });
    expect(readAudit(db, { walletId: WALLET })).toHaveLength(2);

    const smuggle = (e: unknown) =>
      storeError(() => appendAudit(db, "node-a", e as Parameters<typeof appendAudit>[2]));
    expect(
      smuggle({
        event: "unseal_failed",
        walletId: WALLET,
        generation: 0,
        code: "auth_failed",
        dataKey: "00",
      }).message,
    ).toMatch(/no field dataKey/);
    expect(
      smuggle({ event: "refresh_aborted", walletId: WALLET, reason: new Uint8Array(32) }).message,
    ).toMatch(/must be a string/);
    expect(
      smuggle({
        event: "wallet_created",
        walletId: WALLET,
        threshold: 2,
        parties: 3,
        publicKeyHex: hex(randomBytes(32)),
      }).code,
    ).toBe("invalid");
    expect(smuggle({ event: "made_up" }).message).toMatch(/unknown audit event/);

    // Free text: 16 bytes of hex or 30 of base64 are redacted; ordinary sentences are not.
    const reason = `timeout; nonce ${hex(randomBytes(16))} blob ${randomBytes(30).toString("base64")} from node-b`;
    appendAudit(db, "node-a", { event: "refresh_aborted", walletId: WALLET, reason });
    expect(readAudit(db).at(-1)?.detail.reason).toBe(
      "timeout; nonce [redacted] blob [redacted] from node-b",
    );
    expect(smuggle({ event: "refresh_aborted", reason: "x" }).message).toMatch(/needs a wallet id/);
  });

  it("the audit log and the database files never hold a data key or share plaintext", () => {
    const secrets: Uint8Array[] = [];
    const sealFor = (nodeId: string, partyIndex: number, generation: number): NewShare => {
      const dataKey = new Uint8Array(randomBytes(32));
      const plain = new Uint8Array(randomBytes(96));
      secrets.push(dataKey, plain);
      const sealed = sealShare({
        dataKey,
        shareBytes: plain,
        binding: { walletId: WALLET, nodeId, partyIndex, generation, publicKey: PK },
      });
      expect(
        hex(
          unsealShare({
            dataKey,
            sealed,
            binding: { walletId: WALLET, nodeId, partyIndex, generation, publicKey: PK },
          }),
        ),
      ).toBe(hex(plain));
      return share({ nodeId, partyIndex, generation, sealedShare: sealed });
    };

    wallet();
    const old = insertActiveShare(db, sealFor("node-a", 1, 0));
    stagePendingShare(db, sealFor("node-a", 1, 1));
    abortRefresh(db, WALLET, "node-a");
    stagePendingShare(db, sealFor("node-a", 1, 1));
    commitRefresh(db, WALLET, "node-a", 1);
    // A careless caller pastes secrets into free text; the log must not keep them.
    const [k0, p0] = [secrets[0]!, secrets[1]!];
    appendAudit(db, "node-a", {
      event: "refresh_aborted",
      walletId: WALLET,
      reason: `key ${hex(k0)} share ${Buffer.from(p0).toString("base64")}`,
    });
    appendAudit(db, "node-a", {
      event: "ceremony_finished",
      ceremonyId: hex(randomBytes(32)),
      kind: "refresh",
      status: "failed",
      error: `bad ${hex(p0).toUpperCase()}`,
    });
    const text = JSON.stringify(readAudit(db));
    expect(text).toContain("[redacted]");

    const files = () =>
      ["", "-wal", "-shm"]
        .map((s) => path + s)
        .filter(existsSync)
        .map((f) => [f, readFileSync(f)] as const);
    const needles = (s: Uint8Array) => {
      const b = Buffer.from(s);
      const out = [
        b,
        Buffer.from(hex(s)),
        Buffer.from(hex(s).toUpperCase()),
        Buffer.from(b.toString("base64")),
      ];
      // Any 16-byte window of a secret, raw and in hex, catches partial copies too.
      for (let i = 0; i + 16 <= b.length; i += 8)
        out.push(b.subarray(i, i + 16), Buffer.from(b.subarray(i, i + 16).toString("hex")));
      return out;
    };
    for (const s of secrets) expect(text.includes(hex(s))).toBe(false);
    const scan = (afterCheckpoint: boolean) => {
      expect(files().length).toBeGreaterThanOrEqual(1);
      for (const [f, bytes] of files()) {
        for (const s of secrets)
          for (const n of needles(s)) expect(bytes.indexOf(n), `secret found in ${f}`).toBe(-1);
        // secure_delete: once checkpointed, the refreshed-away sealed share is not left in free pages.
        if (afterCheckpoint)
          expect(bytes.indexOf(Buffer.from(old.sealedShare)), `old sealed share in ${f}`).toBe(-1);
      }
    };
    scan(false); // WAL frames as written
    expect(db.checkpoint()).toBe(true);
    scan(true);
    expect(files().map(([f]) => f)).toContain(`${path}-wal`);
    db.close();
    scan(true);
    db = openDatabase({ path });
  });
});
