/** The tss approval options (src/cli/approval-args.ts): repeatable --key, --approver, --quorum, --admin-key, checked before connecting. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { approverArg, keyFilesArg, walletPolicyArg } from "../../src/cli/approval-args.ts";
import { parseArgv, UsageError } from "../../src/cli/args.ts";
import { KeySigner, writeKeyFile } from "../../src/client/signers.ts";
import { toHex } from "../../src/shared/hex.ts";

const dir = mkdtempSync(join(tmpdir(), "tss-cli-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const refusedWith = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error("no usage error");
};

describe("tss approval options", () => {
  it("reads every --key file of sign and wallet refresh, in order", () => {
    const a = KeySigner.generate("ed25519");
    const b = KeySigner.generate("p256");
    writeKeyFile(join(dir, "a.key"), a);
    writeKeyFile(join(dir, "b.key"), b);
    const inv = parseArgv([
      "sign",
      "--wallet",
      "w_1",
      "--digest",
      "ab",
      "--key",
      join(dir, "a.key"),
      "--key",
      join(dir, "b.key"),
    ]);
    expect(keyFilesArg(inv, "key")!.map((s) => s.keyId)).toEqual([a.keyId, b.keyId]);
    expect(
      parseArgv(["wallet", "refresh", "w_1", "--key", join(dir, "a.key")]).lists.get("key"),
    ).toHaveLength(1);
    expect(keyFilesArg(parseArgv(["sign"]), "key")).toBeUndefined();
    expect(
      refusedWith(() => keyFilesArg(parseArgv(["sign", "--key", join(dir, "missing.key")]), "key")),
    ).toMatch(/missing\.key/);
    expect(refusedWith(() => parseArgv(["nodes", "--key", "x"]))).toBe(
      "Option --key does not apply to tss nodes.",
    );
  });

  it("builds a wallet's policy from --approver and --quorum", () => {
    const ed = KeySigner.generate("ed25519");
    const p = KeySigner.generate("p256");
    const inv = parseArgv([
      "wallet",
      "create",
      "--approver",
      toHex(ed.publicKey),
      "--approver",
      `p256:${toHex(p.publicKey)}`,
      "--quorum",
      "2",
    ]);
    const policy = walletPolicyArg(inv)!;
    expect(policy.quorum).toBe(2);
    expect(policy.approvers.map((k) => k.algorithm)).toEqual(["ed25519", "p256"]);
    expect(walletPolicyArg(parseArgv(["wallet", "create"]))).toBeUndefined();
    const two = ["wallet", "create", "--approver", toHex(ed.publicKey), "--approver"];
    expect(refusedWith(() => walletPolicyArg(parseArgv([...two, toHex(p.publicKey)])))).toMatch(
      /--quorum M/,
    );
    expect(
      refusedWith(() => walletPolicyArg(parseArgv([...two, toHex(p.publicKey), "--quorum", "3"]))),
    ).toMatch(/between 1 and the 2/);
    expect(
      refusedWith(() => walletPolicyArg(parseArgv(["wallet", "create", "--quorum", "1"]))),
    ).toMatch(/--approver/);
    expect(refusedWith(() => approverArg("zz"))).toMatch(/--approver/);
    expect(refusedWith(() => approverArg(`ed25519:${toHex(p.publicKey)}`))).toMatch(/32 bytes/);
  });
});
