/**
 * The executables that ship (build/build-executables.sh): each answers
 * --version and --help; the production enclave, outside a Nitro Enclave,
 * refuses to start with a sentence, not a stack, and carries none of the
 * development stand-ins (the development enclave does: the scan can fail);
 * the enclave executable is byte-reproducible; build/package.sh leaves no
 * development enclave in its release directory; and a 2-of-3 cluster of compiled hosts and compiled
 * development enclaves (their own processes, no Bun or sources) makes a
 * wallet and signs through the compiled CLI. The set is built once per tree
 * (src/harness/executables.ts caches it in .tmp/executables).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";
import { cachedExecutables, type Executables } from "../../src/harness/executables.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { DEVELOPMENT_MARKERS } from "../helpers/development-markers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const pkgVersion = (
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;
const dirs: string[] = [];
let x: Executables;

/** Runs an executable with no TSS_* settings from this environment, in an empty directory. */
function run(exe: string, args: string[], env: Record<string, string> = {}, dir?: string) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TSS_")),
  ) as Record<string, string>;
  const cwd = dir ?? mkdtempSync(join(tmpdir(), "exe-cwd-"));
  dirs.push(cwd);
  const r = spawnSync(exe, args, {
    cwd,
    env: { ...clean, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

beforeAll(() => {
  x = cachedExecutables();
}, 300_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("compiled executables", () => {
  it("each answers --version with the package version and the build's commit, and --help truthfully", () => {
    const stamp = spawnSync("bash", [join(ROOT, "build/build-executables.sh"), "--print-stamp"], {
      encoding: "utf8",
    }).stdout.trim();
    const commit = stamp.split(" ")[1]!;
    expect(stamp.split(" ")[0]).toBe(pkgVersion);
    expect(commit).toMatch(/^([0-9a-f]{40}(-dirty)?|unknown)$/);
    const cases: [string, string, RegExp][] = [
      [x.host, "tss-host", /usage: tss-host \[--config FILE\][\s\S]*TSS_MQTT_PASSWORD/],
      [x.enclave, "tss-enclave", /usage: tss-enclave --listen vsock:PORT[\s\S]*\/dev\/nsm/],
      [x.cli, "tss", /Usage: tss \[options\] COMMAND[\s\S]*--version/],
      [x.enclaveDev, "tss-enclave-dev", /usage: tss-enclave-dev[\s\S]*DEVELOPMENT ONLY/],
    ];
    for (const [exe, name, help] of cases) {
      const v = run(exe, ["--version"]);
      expect(v.status, `${name} --version: ${v.stderr}`).toBe(0);
      expect(v.stdout).toContain(`${name}`);
      expect(v.stdout).toContain(`${pkgVersion} (commit ${commit})`);
      const h = run(exe, ["--help"]);
      expect(h.status, `${name} --help: ${h.stderr}`).toBe(0);
      expect(h.stdout).toMatch(help);
    }
    expect(run(x.enclaveDev, ["--version"]).stdout).toMatch(/DEVELOPMENT ONLY/);
  });

  it("outside git, the commit comes from build/commit.txt as git archive fills it, else unknown", () => {
    const root = mkdtempSync(join(tmpdir(), "tarball-"));
    dirs.push(root);
    mkdirSync(join(root, "build"));
    copyFileSync(
      join(ROOT, "build/build-executables.sh"),
      join(root, "build/build-executables.sh"),
    );
    copyFileSync(join(ROOT, "package.json"), join(root, "package.json"));
    const stamp = () =>
      spawnSync("bash", [join(root, "build/build-executables.sh"), "--print-stamp"], {
        encoding: "utf8",
      }).stdout.trim();
    const hash = "0123456789abcdef0123456789abcdef01234567";
    writeFileSync(join(root, "build/commit.txt"), `${hash}\n`);
    expect(stamp()).toBe(`${pkgVersion} ${hash}`);
    // An unsubstituted placeholder (a copy not made by git archive) says so.
    copyFileSync(join(ROOT, "build/commit.txt"), join(root, "build/commit.txt"));
    expect(readFileSync(join(root, "build/commit.txt"), "utf8").trim()).toBe("$Format:%H$");
    expect(stamp()).toBe(`${pkgVersion} unknown`);
    expect(readFileSync(join(ROOT, ".gitattributes"), "utf8")).toMatch(
      /^build\/commit\.txt export-subst$/m,
    );
    // Once committed, git archive itself writes HEAD's commit into the file.
    const head = spawnSync("git", ["-C", ROOT, "rev-parse", "HEAD"], { encoding: "utf8" });
    const inHead =
      spawnSync("git", ["-C", ROOT, "cat-file", "-e", "HEAD:.gitattributes"]).status === 0 &&
      spawnSync("git", ["-C", ROOT, "cat-file", "-e", "HEAD:build/commit.txt"]).status === 0;
    if (head.status === 0 && inHead) {
      const archived = spawnSync(
        "sh",
        ["-c", `git -C "${ROOT}" archive HEAD build/commit.txt | tar -xO build/commit.txt`],
        { encoding: "utf8" },
      );
      expect(archived.stdout.trim()).toBe(head.stdout.trim());
    }
  });

  it("the compiled host reads the environment its --help documents, and no .env file", () => {
    const dir = mkdtempSync(join(tmpdir(), "host-env-"));
    dirs.push(dir);
    const flags = [
      ...["--node-id", "n1", "--mqtt", "mqtt://127.0.0.1:1", "--database", join(dir, "n1.db")],
      ...[
        "--enclave",
        `unix:${join(dir, "none.sock")}`,
        "--kms-relay",
        `unix:${join(dir, "r.sock")}`,
      ],
    ];
    const fromEnv = run(x.host, flags, { TSS_MQTT_USERNAME: "someone-else" });
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).toMatch(/"event":"fatal".*mqtt.username must be the node id n1/);
    // The same setting in a .env file of its working directory is not read (autoload is off).
    writeFileSync(join(dir, ".env"), "TSS_MQTT_USERNAME=someone-else\n");
    const r = run(x.host, flags, {}, dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/"event":"fatal".*cannot connect to unix:.*none\.sock/);
  });

  it("the production enclave outside a Nitro Enclave exits non-zero with a clear error, no stack", () => {
    expect(existsSync("/dev/nsm")).toBe(false);
    const flags = [
      "--listen",
      "vsock:5000",
      "--kms-relay",
      "vsock:3:8000",
      "--kms-endpoint",
      "https://kms.eu-west-1.amazonaws.com",
      "--kms-region",
      "eu-west-1",
      "--kms-key-id",
      "arn:aws:kms:eu-west-1:123456789012:key/0f3c1e2a-1111-2222-3333-444455556666",
    ];
    // The roots it reads from beside itself (a hard link, so beside "it" is this folder).
    mkdirSync(join(ROOT, ".tmp"), { recursive: true });
    const dir = mkdtempSync(join(ROOT, ".tmp", "prod-enclave-"));
    dirs.push(dir);
    const exe = join(dir, "tss-enclave");
    linkSync(x.enclave, exe);
    const noRoots = run(exe, flags);
    expect(noRoots.status).toBe(1);
    expect(noRoots.stderr).toMatch(/"event":"fatal".*cannot read the AWS Nitro root certificate/);
    // With the pinned roots in place, the missing device is what stops it.
    // The same fixture test/enclave/production-platform.test.ts uses.
    const nitroRoot = join(ROOT, "../shared/fixtures/nitro/aws-nitro-enclaves-root-g1.pem");
    copyFileSync(nitroRoot, join(dir, "aws-nitro-root.pem"));
    const amazon = [1, 2, 3, 4]
      .map((i) =>
        readFileSync(`/usr/share/ca-certificates/mozilla/Amazon_Root_CA_${i}.crt`, "utf8"),
      )
      .join("\n");
    writeFileSync(join(dir, "amazon-trust-roots.pem"), amazon);
    const r = run(exe, flags);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /"event":"fatal".*\/dev\/nsm does not exist: not running inside an AWS Nitro Enclave/,
    );
    for (const out of [noRoots, r]) {
      expect(out.stderr).not.toMatch(/^\s+at /m);
      expect(out.stdout).toBe("");
    }
    const bad = run(x.enclave, ["--listen", "unix:/tmp/x.sock"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--listen vsock:PORT is required/);
  });

  it("the production enclave executable carries no development stand-in; the development one does", () => {
    // What ships is build/compile.ts's output, not test/enclave/production-bundle.test.ts's own bundle.
    const production = readFileSync(x.enclave);
    const development = readFileSync(x.enclaveDev);
    // In every executable: the Bun runtime itself spells it.
    const inRuntime = new Set(["Bun.stdin"]);
    for (const [what, markers] of Object.entries(DEVELOPMENT_MARKERS))
      for (const m of markers.filter((m) => !inRuntime.has(m))) {
        expect(production.includes(m), `tss-enclave has ${what}: ${JSON.stringify(m)}`).toBe(false);
        expect(development.includes(m), `tss-enclave-dev lacks ${JSON.stringify(m)}`).toBe(true);
      }
    expect(production.includes("/dev/nsm")).toBe(true);
    expect(development.includes("/dev/nsm")).toBe(false);
  });

  it("build/package.sh removes a development enclave left in its release directory, before anything else", () => {
    const out = mkdtempSync(join(tmpdir(), "package-out-"));
    dirs.push(out);
    writeFileSync(join(out, "tss-enclave-dev"), "left by npm run build");
    // Without the image's flags eif/build.sh refuses at once: nothing is built, the stale file is gone.
    const r = spawnSync("bash", [join(ROOT, "build/package.sh"), "--out", out], {
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--aws-root PATH .* is required/);
    expect(r.stderr).toMatch(/removing .*tss-enclave-dev \(the development enclave/);
    expect(existsSync(join(out, "tss-enclave-dev"))).toBe(false);
  });

  it("the enclave executable is byte-reproducible: a second build of this tree is identical", () => {
    const out = mkdtempSync(join(tmpdir(), "exe-rebuild-"));
    dirs.push(out);
    const r = spawnSync(
      "bash",
      [join(ROOT, "build/build-executables.sh"), "--out", out, "--only", "tss-enclave"],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    const sha = (p: string) => new Bun.CryptoHasher("sha384").update(readFileSync(p)).digest("hex");
    expect(sha(join(out, "tss-enclave"))).toBe(sha(x.enclave));
  });
});

describe("a 2-of-3 cluster of compiled hosts and enclaves", () => {
  let cluster: LocalCluster;
  let client: TssClient;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "compiled-cluster-"));
    dirs.push(dataDir);
    cluster = await startCluster({
      nodes: 3,
      maxNodes: 3,
      dataDir,
      phaseTimeoutMs: 60_000,
      executables: { host: x.host, enclaveDev: x.enclaveDev },
    });
    client = await TssClient.connect({ ...cluster.clients[1]! });
  }, 300_000);

  afterAll(async () => {
    await client?.close().catch(() => {});
    await cluster?.stop();
  });

  it("runs the executables, makes a wallet and signs through the compiled CLI", async () => {
    for (const n of cluster.nodes) {
      expect(n.host.proc.spawnfile).toBe(x.host);
      expect(n.enclave.proc.spawnargs).toContain(x.enclaveDev);
      expect(n.enclave.proc.spawnargs).not.toContain(process.execPath);
    }
    // The compiled host found its broker password in env TSS_MQTT_PASSWORD, not in its file.
    expect(readFileSync(cluster.nodes[0]!.config, "utf8")).not.toContain("password");
    const wallet = await client.createWallet({ threshold: 2, parties: 3 });
    const digest = new Uint8Array(randomBytes(32));
    const r = run(
      x.cli,
      [
        "sign",
        "--wallet",
        wallet.walletId,
        "--digest",
        toHex(digest),
        "--json",
        "--timeout",
        "120",
      ],
      { TSS_CLIENT_CONFIG: join(dataDir, "client.json") },
    );
    expect(r.status, r.stderr).toBe(0);
    const signed = JSON.parse(r.stdout) as {
      publicKey: string;
      signers: string[];
      signature: { r: string; s: string; recoveryId: number };
    };
    expect(signed.publicKey).toBe(wallet.publicKey);
    expect(signed.signers).toHaveLength(2);
    const ok = verifySignature(fromHex(signed.publicKey), digest, {
      r: fromHex(signed.signature.r),
      s: fromHex(signed.signature.s),
      recoveryId: signed.signature.recoveryId,
    });
    expect(ok).toBe(true);
    // A signature over another digest does not verify: the check can fail.
    expect(
      verifySignature(fromHex(signed.publicKey), new Uint8Array(32).fill(1), {
        r: fromHex(signed.signature.r),
        s: fromHex(signed.signature.s),
        recoveryId: signed.signature.recoveryId,
      }),
    ).toBe(false);
  });
});
