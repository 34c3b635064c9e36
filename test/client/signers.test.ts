/**
 * SDK approver signers (src/client/signers.ts) and `tss key new|show`: the
 * in-process keys approve what the enclave verifier accepts, an external
 * signer plugs in through the interface (here a stand-in for a KMS that
 * answers in DER), key files are 0600, never overwritten, and refused when
 * exposed or damaged.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import { afterAll, describe, expect, it } from "vitest";
import {
  approve,
  approverKeyOf,
  KeySigner,
  keyIdOf,
  p256SignatureFromDer,
  parseKeyFile,
  readKeyFile,
  TssError,
  validity,
  writeKeyFile,
  type ApprovalSigner,
} from "../../src/client/index.ts";
import { openTrustedPolicy, verifyApprovals } from "../../src/enclave/approvals.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";

const ROOT = join(import.meta.dirname, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const dir = mkdtempSync(join(tmpdir(), "tss-signers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const now = Math.floor(Date.now() / 1000);
const request: ApprovableRequest = {
  operation: "sign",
  walletId: "w_1",
  requestId: "req-1",
  ...validity(300, now),
  digest: new Uint8Array(32).fill(7),
};

const badRequest = async (p: Promise<unknown> | (() => unknown), match: RegExp) => {
  let error: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TssError);
  expect((error as TssError).code).toBe("bad_request");
  expect((error as TssError).message).toMatch(match);
};

/** A stand-in for a cloud KMS P-256 key: it signs SHA-256(message) and answers DER, possibly high-S. */
function kmsLikeSigner(highS: boolean): ApprovalSigner & { raw: ApprovalSigner } {
  const sk = p256.utils.randomSecretKey();
  const toDer = (m: Uint8Array) => {
    const sig = p256.Signature.fromBytes(p256.sign(m, sk));
    const s = highS ? p256.Point.CURVE().n - sig.s : sig.s;
    return new p256.Signature(sig.r, s).toBytes("der");
  };
  const publicKey = p256.getPublicKey(sk, true);
  return {
    algorithm: "p256",
    publicKey,
    sign: async (m) => p256SignatureFromDer(toDer(m)),
    raw: { algorithm: "p256", publicKey, sign: async (m) => toDer(m) },
  };
}

describe("approver signers", () => {
  it("in-process Ed25519 and P-256 keys and an external signer approve what the enclave accepts", async () => {
    const ed = KeySigner.generate();
    const p = KeySigner.generate("p256");
    const kms = kmsLikeSigner(true);
    expect(ed.algorithm).toBe("ed25519");
    expect(ed.publicKey).toHaveLength(32);
    expect(p.publicKey).toHaveLength(33);
    const policy = { quorum: 3, approvers: [ed, p, kms].map(approverKeyOf) };
    const { request: encoding, approvals } = await approve(request, [ed, p, kms]);
    expect(approvals.map((a) => toHex(a.keyId))).toEqual([ed.keyId, p.keyId, keyIdOf(kms)]);
    const verdict = verifyApprovals({
      policy: openTrustedPolicy(encodePolicy(policy), policyHash(policy)),
      expected: { operation: "sign", walletId: "w_1", requestId: "req-1", digest: request.digest },
      request: encoding,
      approvals: approvals.map(encodeApproval),
      nowSeconds: now,
    });
    expect(verdict.signers).toHaveLength(3);
  });

  it("refuses a signer whose signature is not in the approval form, naming its key", async () => {
    const kms = kmsLikeSigner(false);
    await badRequest(approve(request, [kms.raw]), new RegExp(`${keyIdOf(kms)}.*compact, low S`));
    const liar: ApprovalSigner = {
      algorithm: "ed25519",
      publicKey: KeySigner.generate().publicKey,
      sign: (m) => KeySigner.generate().sign(m),
    };
    await badRequest(approve(request, [liar]), /does not verify/);
  });

  it("refuses duplicate signers, no signers and requests that cannot be encoded", async () => {
    const ed = KeySigner.generate();
    await badRequest(approve(request, [ed, ed]), /given twice/);
    await badRequest(approve(request, []), /signers/);
    await badRequest(approve({ ...request, digest: undefined }, [ed]), /cannot be approved/);
    await badRequest(() => validity(0), /valid for/);
    await badRequest(() => validity(3601), /valid for/);
  });

  it("p256SignatureFromDer yields compact low-S, and refuses what is not DER", async () => {
    const sk = p256.utils.randomSecretKey();
    const sig = p256.Signature.fromBytes(p256.sign(request.digest!, sk));
    const n = p256.Point.CURVE().n;
    const high = new p256.Signature(sig.r, n - sig.s).toBytes("der");
    const low = p256SignatureFromDer(high);
    expect(low).toHaveLength(64);
    expect(toHex(low)).toBe(toHex(sig.toBytes("compact")));
    await badRequest(() => p256SignatureFromDer(sig.toBytes("compact")), /not a DER/);
  });
});

describe("key files", () => {
  it("round-trip with mode 0600 and are never overwritten", async () => {
    for (const alg of ["ed25519", "p256"] as const) {
      const signer = KeySigner.generate(alg);
      const path = join(dir, `${alg}.key`);
      writeKeyFile(path, signer);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const back = readKeyFile(path);
      expect(back.keyId).toBe(signer.keyId);
      expect(back.algorithm).toBe(alg);
      const m = new Uint8Array([1, 2, 3]);
      expect(toHex(await back.sign(m))).toHaveLength(128);
      await badRequest(() => writeKeyFile(path, KeySigner.generate(alg)), /never overwritten/);
      expect(readKeyFile(path).keyId).toBe(signer.keyId);
    }
  });

  it("are refused when other users may read them, or when damaged", async () => {
    const signer = KeySigner.generate("p256");
    const path = join(dir, "exposed.key");
    writeKeyFile(path, signer);
    chmodSync(path, 0o640);
    await badRequest(() => readKeyFile(path), /chmod 600/);
    const json = JSON.parse(signer.toKeyFile()) as Record<string, unknown>;
    const other = JSON.parse(KeySigner.generate("p256").toKeyFile()) as Record<string, unknown>;
    await badRequest(
      () => parseKeyFile(JSON.stringify({ ...json, publicKey: other.publicKey })),
      /does not match/,
    );
    await badRequest(
      () => parseKeyFile(JSON.stringify({ ...json, keyId: other.keyId })),
      /does not match/,
    );
    await badRequest(() => parseKeyFile(JSON.stringify({ ...json, algorithm: "ed25519" })), /./);
    await badRequest(() => parseKeyFile(JSON.stringify({ ...json, format: "x" })), /format/);
    await badRequest(() => parseKeyFile(JSON.stringify({ ...json, version: 2 })), /version/);
    await badRequest(() => parseKeyFile("{"), /not JSON/);
    await badRequest(() => readKeyFile(join(dir, "absent.key")), /cannot read/);
  });
});

describe("tss key", () => {
  const tss = (...args: string[]) => {
    const r = spawnSync(BUN, ["run", join(ROOT, "src/cli/tss.ts"), ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("new writes a 0600 key file and show prints its key id and public key, never the secret", () => {
    const made = tss("key", "new", "--algorithm", "p256", "--out", "cli.key", "--json");
    expect(made.status).toBe(0);
    const shown = JSON.parse(made.stdout) as Record<string, string>;
    const file = readFileSync(join(dir, "cli.key"), "utf8");
    const secret = (JSON.parse(file) as { secretKey: string }).secretKey;
    expect(statSync(join(dir, "cli.key")).mode & 0o777).toBe(0o600);
    expect(shown).toEqual({
      keyId: readKeyFile(join(dir, "cli.key")).keyId,
      algorithm: "p256",
      publicKey: toHex(readKeyFile(join(dir, "cli.key")).publicKey),
      file: "cli.key",
    });
    const show = tss("key", "show", "cli.key");
    expect(show.status).toBe(0);
    expect(show.stdout).toContain(shown.keyId);
    expect(show.stdout).toContain(shown.publicKey);
    for (const out of [made.stdout, made.stderr, show.stdout, show.stderr])
      expect(out).not.toContain(secret);
    expect(tss("key", "new", "--out", "ed.key").stdout).toMatch(/Algorithm +ed25519/);
  });

  it("refuses mistakes with status 2 and one sentence", () => {
    expect(tss("key", "new", "--out", "cli2.key").status).toBe(0);
    const again = tss("key", "new", "--out", "cli2.key");
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/never overwritten/);
    expect(tss("key", "new").stderr).toMatch(/needs --out FILE/);
    expect(tss("key", "new", "--out", "x.key", "--algorithm", "rsa").stderr).toMatch(
      /--algorithm must be one of ed25519, p256/,
    );
    expect(tss("key", "new", "--out", "x.key", "--url", "mqtt://h:1").stderr).toMatch(
      /does not apply to tss key new/,
    );
    expect(tss("key", "show").stderr).toMatch(/needs a key file/);
    writeFileSync(join(dir, "open.key"), readFileSync(join(dir, "cli2.key")));
    chmodSync(join(dir, "open.key"), 0o644);
    const exposed = tss("key", "show", "open.key");
    expect(exposed.status).toBe(2);
    expect(exposed.stderr).toMatch(/chmod 600/);
    expect(tss("key", "frob").stderr).toMatch(/tss key takes new or show/);
  });

  it("has truthful --help", () => {
    const help = tss("key", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/new --out FILE/);
    expect(help.stdout).toMatch(/never connect/);
    expect(tss("key", "new", "--help").stdout).toMatch(/mode 0600/);
    expect(tss("key", "show", "--help").stdout).not.toMatch(/--url/);
    expect(tss("--help").stdout).toMatch(/key new --out FILE/);
  });
});
