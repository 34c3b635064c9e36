/**
 * npm run demo:core — in one process, no nodes: a 3-of-5 DKG, a
 * signature by one quorum, a refresh, a signature by another quorum, each
 * verified independently with @noble/curves.
 */
import { randomBytes } from "node:crypto";
import { dkgInProcess, refreshInProcess, signInProcess } from "../dev/in-process.ts";
import { ethAddress, loadDkls, type KeyShare } from "../enclave/dkls23/binding.ts";
import { signatureForms, verifySignature } from "../shared/signature.ts";
import { toHex, fromHex } from "../shared/hex.ts";

const HELP = `usage: npm run demo:core [-- --threshold T --parties N --digest HEX]

Runs, in one process with the real DKLs23 wasm core:
  1. a T-of-N distributed key generation (default 3-of-5),
  2. a signature over DIGEST (default: 32 random bytes) by parties 1..T,
  3. a refresh of every share (public key unchanged),
  4. a signature by parties N-T+1..N with the refreshed shares,
and verifies each signature with @noble/curves. Exits non-zero on any failure.`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function step(label: string): () => void {
  const t = performance.now();
  process.stdout.write(`${label} ... `);
  return () => console.log(`done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

function printSignature(
  title: string,
  pk: Uint8Array,
  digest: Uint8Array,
  sigs: ReturnType<typeof signInProcess>,
) {
  const sig = sigs[0]!;
  const f = signatureForms(sig);
  const ok = verifySignature(pk, digest, sig);
  console.log(`  ${title}`);
  console.log(`    r           ${f.r}`);
  console.log(`    s           ${f.s}`);
  console.log(`    recovery id ${f.recoveryId}`);
  console.log(`    ethereum    0x${f.ethereum}`);
  console.log(`    der         ${f.der}`);
  console.log(`    verified    ${ok ? "yes (secp256k1, low-S, recovers the public key)" : "NO"}`);
  if (!ok) throw new Error("signature did not verify");
}

function main() {
  if (process.argv.includes("--help")) return console.log(HELP);
  const t = Number(arg("--threshold") ?? 3);
  const n = Number(arg("--parties") ?? 5);
  if (!Number.isInteger(t) || !Number.isInteger(n) || t < 2 || t > n || n > 16) {
    throw new Error(`need integers 2 <= threshold <= parties <= 16 (got ${t}, ${n})`);
  }
  const digestHex = arg("--digest");
  const digest = digestHex ? fromHex(digestHex, 32) : new Uint8Array(randomBytes(32));
  loadDkls();

  let done = step(
    `DKG ${t}-of-${n} (every party's compute in this one process; seconds per party)`,
  );
  const shares: KeyShare[] = dkgInProcess(t, n);
  done();
  const pk = shares[0]!.publicKey;
  console.log(`  public key  ${toHex(pk)}`);
  console.log(`  address     ${ethAddress(pk)}`);
  console.log(`  digest      ${toHex(digest)}`);

  const first = Array.from({ length: t }, (_, i) => i + 1);
  done = step(`sign with parties ${first.join(",")}`);
  const sigs1 = signInProcess(shares, first, digest);
  done();
  printSignature("signature (generation 0)", pk, digest, sigs1);

  done = step(`refresh all ${n} shares`);
  const fresh = refreshInProcess(shares);
  done();
  if (toHex(fresh[0]!.publicKey) !== toHex(pk)) throw new Error("refresh changed the public key");
  console.log(`  public key unchanged, shares now at generation ${fresh[0]!.generation}`);

  const last = Array.from({ length: t }, (_, i) => n - t + 1 + i);
  done = step(`sign with parties ${last.join(",")} (refreshed shares)`);
  const sigs2 = signInProcess(fresh, last, digest);
  done();
  printSignature("signature (generation 1)", pk, digest, sigs2);
  for (const s of [...shares, ...fresh]) s.free();
  console.log("demo complete: both signatures verified");
}

try {
  main();
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exit(1);
}
