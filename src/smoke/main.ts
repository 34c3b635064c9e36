/**
 * npm run smoke — what a CI pipeline runs against the executables that ship:
 * builds them (build/build-executables.sh, into dist/ or --out DIR), starts
 * a 3-node cluster FROM them (compiled tss-host processes, compiled
 * development enclaves tss-enclave-dev with the simulated NSM, plus Mosquitto
 * and the KMS stand-in as the demo has them), and through the compiled `tss`
 * CLI: makes two key files, lists the nodes, creates a 2-of-3 wallet approved
 * by the administrator, signs a digest approved by the approver, and checks
 * the signature with @noble/curves here. Exits 0 when all of it worked;
 * otherwise 1 with the step that failed. Everything it started is stopped
 * and its data folder removed either way.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster, type LocalCluster } from "../cluster/local-cluster.ts";
import { approverKeyOf, readKeyFile } from "../client/index.ts";
import {
  buildExecutables,
  EXECUTABLE_NAMES,
  executablesIn,
  type Executables,
} from "../harness/executables.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { verifySignature } from "../shared/signature.ts";
import { encodePolicy } from "../shared/wire/approval.ts";

const HELP = `usage: npm run smoke [-- --out DIR] [--no-build] [--keep-data]

Builds the executables into DIR (default dist/), starts Mosquitto, the KMS
stand-in and 3 nodes from the compiled tss-host and tss-enclave-dev (the
development enclave: a simulated NSM, since no Nitro hardware is here), then
with the compiled tss CLI creates a 2-of-3 wallet (approved by a fresh
administrator key) and signs a random digest (approved by a fresh approver
key), and verifies the signature. Exit 0: all good; 1: a step failed (named
on stderr); 2: usage. Stops everything it started.

  --out DIR    where to build (and find) the executables (default dist/)
  --no-build   use the executables already in DIR
  --keep-data  leave the cluster's data folder (logs, configs) for inspection`;

const ROOT = new URL("../..", import.meta.url).pathname;
const t0 = performance.now();
const say = (s: string) =>
  console.log(`[smoke ${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${s}`);

class StepFailed extends Error {}

/** Runs the compiled CLI; its JSON result, or StepFailed with what it said. */
function tss(x: Executables, dataDir: string, step: string, args: string[]): unknown {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TSS_")),
  ) as Record<string, string>;
  const r = spawnSync(x.cli, [...args, "--json"], {
    encoding: "utf8",
    env: { ...env, TSS_CLIENT_CONFIG: join(dataDir, "client.json") },
    timeout: 300_000,
  });
  if (r.status !== 0)
    throw new StepFailed(
      `${step}: tss ${args[0]} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-1000)}`,
    );
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new StepFailed(`${step}: tss ${args[0]} printed no JSON: ${r.stdout.slice(0, 300)}`);
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(HELP);
    return 0;
  }
  const outAt = argv.indexOf("--out");
  const known = new Set(["--out", "--no-build", "--keep-data"]);
  for (const [i, a] of argv.entries())
    if (!known.has(a) && !(i === outAt + 1 && outAt >= 0)) {
      console.error(`smoke: unknown argument ${a} (see --help)`);
      return 2;
    }
  const out = outAt >= 0 ? argv[outAt + 1] : join(ROOT, "dist");
  if (!out) {
    console.error("smoke: --out needs a folder");
    return 2;
  }
  let x: Executables;
  if (argv.includes("--no-build")) {
    x = executablesIn(out);
    say(`using the executables in ${out}`);
  } else {
    say(`building ${EXECUTABLE_NAMES.join(", ")} into ${out}`);
    try {
      const b = buildExecutables(out);
      x = b;
      say(`built in ${(b.buildMs / 1000).toFixed(1)} s`);
    } catch (e) {
      throw new StepFailed(`build: ${(e as Error).message}`);
    }
  }
  for (const name of EXECUTABLE_NAMES) {
    const r = spawnSync(join(out, name), ["--version"], { encoding: "utf8", timeout: 30_000 });
    if (r.error)
      throw new StepFailed(`${name} --version: cannot run ${join(out, name)}: ${r.error.message}`);
    if (r.status !== 0) throw new StepFailed(`${name} --version exited ${r.status}: ${r.stderr}`);
    say(r.stdout.trim());
  }

  const dataDir = mkdtempSync(join(tmpdir(), "tss-smoke-"));
  let cluster: LocalCluster | undefined;
  let stopping: Promise<void> | undefined;
  const cleanup = () =>
    (stopping ??= (async () => {
      await cluster?.stop();
      if (!argv.includes("--keep-data")) rmSync(dataDir, { recursive: true, force: true });
      else say(`data kept in ${dataDir}`);
    })());
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      console.error(`smoke: ${sig}; stopping the cluster`);
      void cleanup().then(() => process.exit(130));
    });
  try {
    tss(x, dataDir, "administrator key", ["key", "new", "--out", join(dataDir, "admin.key")]);
    tss(x, dataDir, "approver key", ["key", "new", "--out", join(dataDir, "approver.key")]);
    const admin = readKeyFile(join(dataDir, "admin.key"));
    const approver = readKeyFile(join(dataDir, "approver.key"));
    say("starting Mosquitto, the KMS stand-in and 3 nodes from the compiled executables");
    try {
      cluster = await startCluster({
        nodes: 3,
        maxNodes: 3,
        dataDir,
        phaseTimeoutMs: 60_000,
        adminPolicyHex: toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
        executables: { host: x.host, enclaveDev: x.enclaveDev },
        progress: (l) => say(`  ${l}`),
      });
    } catch (e) {
      throw new StepFailed(`cluster start: ${(e as Error).message}`);
    }
    const { nodes } = tss(x, dataDir, "list nodes", ["nodes"]) as { nodes?: { nodeId: string }[] };
    if (!Array.isArray(nodes) || nodes.length !== 3)
      throw new StepFailed(`list nodes: expected 3 online nodes, got ${JSON.stringify(nodes)}`);
    say(`tss nodes: ${nodes.map((n) => n.nodeId).join(", ")}`);

    const wallet = tss(x, dataDir, "create wallet", [
      "wallet",
      "create",
      "--threshold",
      "2",
      "--parties",
      "3",
      "--approver",
      `${approver.algorithm}:${toHex(approver.publicKey)}`,
      "--admin-key",
      join(dataDir, "admin.key"),
      "--timeout",
      "300",
    ]) as { walletId: string; publicKey: string };
    say(`wallet ${wallet.walletId} (2 of 3), public key ${wallet.publicKey.slice(0, 20)}…`);

    const digest = new Uint8Array(randomBytes(32));
    const signed = tss(x, dataDir, "sign", [
      "sign",
      "--wallet",
      wallet.walletId,
      "--digest",
      toHex(digest),
      "--key",
      join(dataDir, "approver.key"),
      "--timeout",
      "300",
    ]) as {
      publicKey: string;
      signers: string[];
      signature: { r: string; s: string; recoveryId: number };
    };
    if (signed.publicKey !== wallet.publicKey)
      throw new StepFailed("verify: the signature names another public key than the wallet's");
    const ok = verifySignature(fromHex(wallet.publicKey), digest, {
      r: fromHex(signed.signature.r),
      s: fromHex(signed.signature.s),
      recoveryId: signed.signature.recoveryId,
    });
    if (!ok) throw new StepFailed("verify: the signature does not verify under the wallet's key");
    say(`signed by ${signed.signers.join(", ")}; signature verified (@noble/curves)`);
    say("smoke passed");
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    const msg = e instanceof StepFailed ? e.message : `unexpected: ${(e as Error).stack ?? e}`;
    console.error(`smoke FAILED: ${msg}`);
    process.exit(1);
  },
);
