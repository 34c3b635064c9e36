/**
 * npm run demo — a real local cluster: Mosquitto, the KMS stand-in (HTTPS,
 * development CA) and five nodes (separate enclave and host processes; each
 * enclave calls KMS itself over TLS through its host's relay, and the key
 * policy binds each node's data keys to its enclave's PCR4). It makes a
 * cluster administrator key (the enclaves' development administrators'
 * policy) and an approver key (the wallet's policy, 1 of 1), written to
 * data/cluster/admin.key and approver.key. Through the client SDK over MQTT
 * it creates a 3-of-5 wallet approved by the administrator, shows that the
 * enclaves refuse a sign without approval, signs a digest approved by the
 * approver, refreshes the wallet (approved) and signs again, verifying each
 * signature with @noble/curves; then stops everything (or keeps it running
 * with --keep).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { startCluster, type LocalCluster } from "../cluster/local-cluster.ts";
import { KeySigner, TssClient, TssError, approverKeyOf, writeKeyFile } from "../client/index.ts";
import { encodePolicy } from "../shared/wire/approval.ts";
import { verifySignature } from "../shared/signature.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { buildExecutables, type Executables } from "../harness/executables.ts";

const HELP = `usage: npm run demo [-- --keep] [--nodes N] [--digest HEX] [--compiled]

Starts a local cluster in data/cluster (Mosquitto on a free loopback port, the
KMS stand-in over HTTPS, N nodes (default 5) each as an enclave process and a
host process; each enclave reaches KMS over TLS that ends inside it, through
its host's byte relay), with a fresh administrator key whose policy the
enclaves take as their (development) administrators' policy; then over MQTT
with the client SDK: creates a 3-of-5 wallet whose policy is one fresh
approver key (approved by the administrator), shows a sign without approval
refused, signs DIGEST (default: 32 random bytes) with the approver's
approval, refreshes the wallet (approved), signs again, and verifies both
signatures independently. Exits 0 and leaves no process behind.

  --keep    keep the cluster running afterwards; use the CLI against it
            (bin/tss reads data/cluster/client.json; approve with
            --key data/cluster/approver.key), stop with Ctrl-C.
  --compiled  first build the executables into dist/ (npm run build) and run
            the nodes from them: dist/tss-host and dist/tss-enclave-dev (the
            development enclave, simulated NSM) instead of the TypeScript.`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const t0 = performance.now();
const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s]`;
const say = (s: string) => console.log(`${stamp()} ${s}`);

async function main(): Promise<number> {
  if (process.argv.includes("--help")) {
    console.log(HELP);
    return 0;
  }
  const keep = process.argv.includes("--keep");
  const n = Number(arg("--nodes") ?? 5);
  if (!Number.isInteger(n) || n < 3 || n > 16)
    throw new Error("--nodes must be an integer from 3 to 16");
  const digest = arg("--digest") ? fromHex(arg("--digest")!, 32) : new Uint8Array(randomBytes(32));
  const root = new URL("../..", import.meta.url).pathname;
  const dataDir = join(root, "data", "cluster");
  rmSync(dataDir, { recursive: true, force: true });
  let compiled: Executables | undefined;
  if (process.argv.includes("--compiled")) {
    say("building the executables into dist/ (build/build-executables.sh)");
    const b = buildExecutables(join(root, "dist"));
    say(
      `built in ${(b.buildMs / 1000).toFixed(1)} s; nodes run dist/tss-host and dist/tss-enclave-dev`,
    );
    compiled = b;
  }
  const tssCmd = compiled ? "dist/tss" : "bin/tss";

  let cluster: LocalCluster | undefined;
  let client: TssClient | undefined;
  const shutdown = async () => {
    await client?.close().catch(() => {});
    await cluster?.stop();
  };
  process.on("SIGINT", () => void shutdown().then(() => process.exit(130)));
  // The administrator approves creating wallets; the approver, each wallet operation.
  const admin = KeySigner.generate("ed25519");
  const approver = KeySigner.generate("ed25519");
  const adminPolicyHex = toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] }));
  try {
    cluster = await startCluster({
      nodes: n,
      dataDir,
      adminPolicyHex,
      progress: (l) => say(l),
      ...(compiled
        ? { executables: { host: compiled.host, enclaveDev: compiled.enclaveDev } }
        : {}),
    });
    writeKeyFile(join(dataDir, "admin.key"), admin);
    writeKeyFile(join(dataDir, "approver.key"), approver);
    say(
      `administrator key ${admin.keyId.slice(0, 16)}…, approver key ${approver.keyId.slice(0, 16)}…`,
    );
    say(`cluster up: broker ${cluster.client.url}, ${n} nodes`);
    // Its own client user (one connection per user): client.json's stays free for bin/tss.
    client = await TssClient.connect({ ...cluster.clients[1]! });
    const progress = (p: { stage: string; phase?: number; of?: number }) =>
      say(`  … ${p.stage}${p.phase ? ` phase ${p.phase}/${p.of ?? 4}` : ""}`);

    say(
      "creating a 3-of-5 wallet approved by the administrator; its policy: the approver key, 1 of 1",
    );
    const wallet = await client.createWallet({
      threshold: 3,
      parties: 5,
      policy: { quorum: 1, approvers: [approverKeyOf(approver)] },
      admins: [admin],
      onProgress: progress,
    });
    say(`wallet ${wallet.walletId}`);
    console.log(
      `    public key ${wallet.publicKey}\n    address    ${wallet.address}\n    nodes      ${wallet.nodes.join(", ")}`,
    );

    const refusal = await client.sign({ walletId: wallet.walletId, digest }).then(
      () => null,
      (e: unknown) => e,
    );
    if (!(refusal instanceof TssError) || refusal.code !== "unauthorised")
      throw new Error("a sign without approval was not refused");
    say(`a sign without approval: refused by the enclaves (${refusal.code}, ${refusal.reason})`);

    const show = async (label: string) => {
      const r = await client!.sign({
        walletId: wallet.walletId,
        digest,
        signers: [approver],
        onProgress: progress,
      });
      const ok = verifySignature(fromHex(r.publicKey), digest, {
        r: fromHex(r.signature.r),
        s: fromHex(r.signature.s),
        recoveryId: r.signature.recoveryId,
      });
      say(`${label}: coordinated by ${r.coordinator}, signers ${r.signers.join(", ")}`);
      console.log(
        `    digest      ${r.digest}\n    r           ${r.signature.r}\n    s           ${r.signature.s}\n    recovery id ${r.signature.recoveryId}\n    ethereum    0x${r.signature.ethereum}\n    der         ${r.signature.der}\n    verified    ${ok ? "yes (@noble/curves: valid, low-S, recovers the public key)" : "NO"}`,
      );
      if (!ok) throw new Error("signature did not verify");
    };
    await show("signature 1");
    say("refreshing every share (same public key, new shares; old shares deleted after commit)");
    const refreshed = await client.refresh({
      walletId: wallet.walletId,
      signers: [approver],
      onProgress: progress,
    });
    say(
      `refreshed to generation ${refreshed.generation}; public key unchanged: ${refreshed.publicKey === wallet.publicKey}`,
    );
    await show("signature 2 (after refresh)");
    say("demo complete: both signatures verified");
    if (keep) {
      say(
        `cluster kept running. Try:  ${tssCmd} nodes   ${tssCmd} wallet list   ${tssCmd} sign --wallet ${wallet.walletId} --digest <64 hex> --key ${join(dataDir, "approver.key")}`,
      );
      say("Ctrl-C stops it.");
      await client.close();
      client = undefined;
      await new Promise(() => {});
    }
    return 0;
  } finally {
    if (!keep) await shutdown();
  }
}

main().then(
  (code) => process.exit(code),
  async (e) => {
    console.error(`demo failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
