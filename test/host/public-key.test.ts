/**
 * The host's wasm-free public-key module against the DKLs23 core's own
 * public derivation: same child keys, chain codes and addresses, and the
 * same refusals. And the chain code the host stores: migration 2 reads it
 * out of a version-1 database's public packages exactly as the core does.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { dkgInProcess } from "../../src/dev/in-process.ts";
import {
  derivePublicKey,
  ethAddress as coreEthAddress,
  packageInfo,
  type KeyShare,
} from "../../src/enclave/dkls23/binding.ts";
import { DerivationError, deriveChildPublicKey, ethAddress } from "../../src/shared/public-key.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  getWallet,
  insertWallet,
  listWalletIds,
  MIGRATIONS,
  migrate,
  openDatabase,
  schemaVersion,
  StoreError,
  type Db,
} from "../../src/host/store/index.ts";

let pkg: Uint8Array;
let root: { publicKey: Uint8Array; chainCode: Uint8Array };

beforeAll(() => {
  const shares: KeyShare[] = dkgInProcess(2, 2);
  pkg = shares[0]!.publicPackage();
  root = packageInfo(pkg);
  for (const s of shares) s.free();
});

describe("deriveChildPublicKey", () => {
  it("equals the core's derivePublicKey along several non-hardened paths", () => {
    for (const path of [
      "m",
      "m/0",
      "m/1/2",
      "m/0/7",
      "m/44/60/0/0/3",
      "m/2147483647",
      `m${"/5".repeat(32)}`,
    ]) {
      const core = derivePublicKey(pkg, path);
      const mine = deriveChildPublicKey(root.publicKey, root.chainCode, path);
      expect(toHex(mine.publicKey), path).toBe(toHex(core.publicKey));
      expect(toHex(mine.chainCode), path).toBe(toHex(core.chainCode));
      expect(ethAddress(mine.publicKey)).toBe(coreEthAddress(core.publicKey));
    }
  });

  it("differs between paths and with another chain code", () => {
    const a = deriveChildPublicKey(root.publicKey, root.chainCode, "m/0");
    const b = deriveChildPublicKey(root.publicKey, root.chainCode, "m/1");
    const c = deriveChildPublicKey(root.publicKey, new Uint8Array(32).fill(9), "m/0");
    expect(toHex(a.publicKey)).not.toBe(toHex(b.publicKey));
    expect(toHex(a.publicKey)).not.toBe(toHex(c.publicKey));
  });

  it("refuses hardened and malformed paths, as the core does, and bad keys or chain codes", () => {
    for (const p of ["m/0'", "m/2147483648", "0/1", "m/x", "m//1", "m/" + "1/".repeat(200) + "1"]) {
      expect(() => derivePublicKey(pkg, p)).toThrow();
      expect(() => deriveChildPublicKey(root.publicKey, root.chainCode, p)).toThrow(
        DerivationError,
      );
    }
    expect(() => deriveChildPublicKey(root.publicKey.slice(1), root.chainCode, "m/0")).toThrow(
      /33 bytes/,
    );
    expect(() => deriveChildPublicKey(root.publicKey, root.chainCode.slice(1), "m/0")).toThrow(
      /chain code/,
    );
    const offCurve = new Uint8Array(33).fill(0xff);
    offCurve[0] = 0x02;
    expect(() => deriveChildPublicKey(offCurve, root.chainCode, "m/0")).toThrow(DerivationError);
  });
});

describe("ethAddress", () => {
  it("equals the core's EIP-55 address of the group key", () => {
    expect(ethAddress(root.publicKey)).toBe(coreEthAddress(root.publicKey));
  });
});

describe("stored chain code", () => {
  const V1 = MIGRATIONS.slice(0, 1);
  /** A database at schema version 1 holding `pkg` as wallet `walletId`'s public package. */
  function version1(rows: { walletId: string; publicPackage: Uint8Array }[]): Db {
    const db = openDatabase({ path: ":memory:" });
    migrate(db, V1);
    for (const r of rows) {
      db.run(
        `INSERT INTO wallets (wallet_id, threshold, parties, public_key, public_package, current_generation, created_at, updated_at)
         VALUES (:w, 2, 2, :pk, :pkg, 0, 1, 1)`,
        { w: r.walletId, pk: root.publicKey, pkg: r.publicPackage },
      );
    }
    return db;
  }

  it("migration 2 fills an existing wallet's chain code from its public package, equal to the core's", () => {
    const db = version1([{ walletId: "w-old", publicPackage: pkg }]);
    try {
      expect(migrate(db, MIGRATIONS.slice(0, 2)).applied).toEqual([2]);
      expect(schemaVersion(db)).toBe(2);
      // Today's code reads wallets under today's schema (migration 4 adds the approval policy).
      expect(migrate(db).applied).not.toContain(2);
      const w = getWallet(db, "w-old")!;
      expect(toHex(w.chainCode)).toBe(toHex(root.chainCode));
      expect(toHex(deriveChildPublicKey(w.publicKey, w.chainCode, "m/0/7").publicKey)).toBe(
        toHex(derivePublicKey(pkg, "m/0/7").publicKey),
      );
    } finally {
      db.close();
    }
  });

  it("a package migration 2 cannot read leaves no chain code, and reading that wallet fails instead of guessing", () => {
    const db = version1([{ walletId: "w-odd", publicPackage: Uint8Array.of(1, 2, 3) }]);
    try {
      migrate(db);
      expect(
        db.get("SELECT chain_code FROM wallets WHERE wallet_id = 'w-odd'")?.chain_code,
      ).toBeNull();
      const e = (() => {
        try {
          getWallet(db, "w-odd");
        } catch (x) {
          return x;
        }
      })();
      expect(e).toBeInstanceOf(StoreError);
      expect((e as StoreError).message).toMatch(/no chain code/);
    } finally {
      db.close();
    }
  });

  it("new wallets must carry a 32-byte chain code; listWalletIds lists them oldest first", () => {
    const db = openDatabase({ path: ":memory:" });
    try {
      migrate(db);
      const base = { threshold: 2, parties: 2, publicKey: root.publicKey, publicPackage: pkg };
      expect(() =>
        insertWallet(db, { ...base, walletId: "w-short", chainCode: new Uint8Array(31) }),
      ).toThrow(/chain code must be 32..32 bytes/);
      insertWallet(db, { ...base, walletId: "w-b", chainCode: root.chainCode }, 2000);
      insertWallet(db, { ...base, walletId: "w-a", chainCode: root.chainCode }, 1000);
      expect(toHex(getWallet(db, "w-b")!.chainCode)).toBe(toHex(root.chainCode));
      expect(listWalletIds(db)).toEqual(["w-a", "w-b"]);
    } finally {
      db.close();
    }
  });
});
