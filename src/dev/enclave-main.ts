/**
 * The development enclave program: the production program (src/enclave/
 * program.ts) with the Nitro hardware and AWS's roots stood in for. For the
 * harness, the demo and tests only; build/build-executables.sh compiles it
 * as tss-enclave-dev for them, and nothing ships it (build/package.sh, eif/build.sh).
 *
 * One line of JSON on stdin (dev-enclave-input.ts) carries the simulated
 * NSM's signing PKI, this node's PCR4 and the development CA its KMS
 * endpoint's certificate must chain to. PCR0 is SHA-384(this program's file
 * || wasm), so a changed enclave gets a different PCR0
 * (src/harness/enclave-image.ts computes the same). The program then reads
 * PCR0 and PCR4 back from its own attestation document, as in production.
 */
import { listenUnix } from "../shared/channel/unix-transport.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import { adminPolicyOf, type ApprovalSettings } from "../enclave/approval-gate.ts";
import { COMMON_OPTIONS_HELP, log, runEnclaveProgram } from "../enclave/program.ts";
import { readEnclaveWasm } from "../enclave/wasm-asset.ts";
import { MAX_DEV_ENCLAVE_INPUT_CHARS, parseDevEnclaveInput } from "./dev-enclave-input.ts";
import { SimulatedNsm, pcr0ForCode } from "./simulated-nsm.ts";
import { versionLine } from "../shared/version.ts";

const HELP = `usage: tss-enclave-dev --listen unix:PATH | vsock:PORT [--phase-timeout-ms N] [--max-sessions N]
         [--share-budget-bytes N] [--peer-image-sha384 HEX]...
         [--kms-relay unix:PATH|vsock:CID:PORT --kms-endpoint https://HOST[:PORT]
          --kms-region R --kms-key-id ID]
       tss-enclave-dev --version | --help

DEVELOPMENT ONLY: attestation documents are signed by a simulated NSM, so
they prove nothing, and KMS's certificate is checked against a development
CA. The production program is tss-enclave (src/enclave/main.ts).

  --listen unix:PATH   serve the host on a Unix socket (stands in for VSOCK)
  --listen vsock:PORT  serve the host on AF_VSOCK (any CID), PORT
${COMMON_OPTIONS_HELP}
  --peer-image-sha384  another image (PCR0, hex) whose enclaves may be peers
  --kms-relay          where the host's KMS relay listens (TLS to KMS runs through it)
  --kms-endpoint       the KMS URL; its host name is the TLS name verified
  --kms-region         the KMS region (SigV4)
  --kms-key-id         the cluster's share-wrapping key (never taken from the host)
  Without the --kms-* flags the enclave cannot seal or load shares.

Before serving it reads one line of JSON on stdin:
{"pki": <serializeDevelopmentPki (src/dev/dev-pki.ts)>, "pcr4": "<96 hex>",
 "kmsCaPem": "<PEM>", "adminPolicy": "<hex>", "unapprovedWallets": true};
kmsCaPem is needed with --kms-relay. adminPolicy is the development
administrators' policy; without it the enclave creates no wallets unless
unapprovedWallets: true explicitly turns approvals off (never with
adminPolicy). PCR0 is
SHA-384(this program's file || wasm), the program's file being the
executable itself when compiled (tss-enclave-dev). Peers are admitted only with
documents chaining to that PKI's root and with the same PCR0.`;

async function readStdinLine(): Promise<string> {
  const reader = Bun.stdin.stream().getReader();
  let text = "";
  const dec = new TextDecoder();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.length > MAX_DEV_ENCLAVE_INPUT_CHARS)
      throw new Error(`stdin exceeds ${MAX_DEV_ENCLAVE_INPUT_CHARS} characters`);
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

/**
 * The administrators' policy from stdin (loudly); without one, no wallets at
 * all, unless stdin explicitly asks for approvals not to be required (more loudly).
 */
function developmentApprovals(
  adminPolicyHex: string | undefined,
  unapprovedWallets: boolean,
): ApprovalSettings {
  if (adminPolicyHex === undefined) {
    if (!unapprovedWallets) {
      log("development_no_admins", {
        warning:
          "NO ADMINISTRATORS: no administrators' policy on stdin, so this enclave creates no wallets (give adminPolicy, or unapprovedWallets: true for a cluster without approvals)",
      });
      return { adminPolicy: null, requireApprovals: true };
    }
    log("development_approvals_off", {
      warning:
        "APPROVALS NOT REQUIRED (unapprovedWallets on stdin): wallets may be created without approval, and wallets created without a policy signed without one",
    });
    return { adminPolicy: null, requireApprovals: false };
  }
  log("development_admin_policy", {
    warning:
      "DEVELOPMENT ADMINISTRATORS: the administrators' policy comes from stdin, not from the measured image",
    policy: adminPolicyHex.slice(0, 16),
  });
  return { adminPolicy: adminPolicyOf(adminPolicyHex), requireApprovals: true };
}

if (process.argv.slice(2).includes("--version")) {
  console.log(versionLine("tss-enclave-dev (DEVELOPMENT ONLY: simulated NSM)"));
  process.exit(0);
}

runEnclaveProgram({
  help: HELP,
  wasm: readEnclaveWasm,
  kmsRequired: false,
  listen: {
    pattern: /^(unix:.+|vsock:\d+)$/,
    usage: "unix:PATH or vsock:PORT",
    open: (address) =>
      address.startsWith("unix:")
        ? listenUnix(address.slice("unix:".length))
        : listenVsock(Number(address.slice("vsock:".length))),
  },
  platform: async (wasm) => {
    const input = parseDevEnclaveInput(await readStdinLine());
    // Compiled, Bun.main is the embedded script; the executable (runtime, code, wasm) is what is
    // measured, with Bun's native SHA-384 (pcr0ForCode's digest; 100 MB in JavaScript takes seconds).
    const self = Bun.main.startsWith("/$bunfs/") ? process.execPath : Bun.main;
    const pcr0 = new Uint8Array(
      new Bun.CryptoHasher("sha384")
        .update(await Bun.file(self).bytes())
        .update(wasm)
        .digest(),
    );
    const pcrs: Record<number, Uint8Array> = { 0: pcr0, 4: input.pcr4 };
    pcrs[1] = pcr0ForCode([new TextEncoder().encode("development kernel")]);
    pcrs[2] = pcr0ForCode([new TextEncoder().encode("development application")]);
    log("development_nsm", {
      warning: "SIMULATED NSM: attestation documents are signed by a development PKI",
    });
    if (input.kmsCaPem)
      log("development_kms_ca", {
        warning:
          "DEVELOPMENT KMS CA: the KMS endpoint is verified against a development CA from stdin, not the Amazon roots",
      });
    const approvals = developmentApprovals(input.adminPolicy, input.unapprovedWallets === true);
    return {
      nsm: new SimulatedNsm({ pki: input.pki, pcrs }),
      peerRoots: [{ der: input.pki.root.der, development: true }],
      allowDevelopment: true,
      developmentApprovals: approvals,
      ...(input.kmsCaPem ? { kmsTrustedCaPem: [input.kmsCaPem] } : {}),
    };
  },
});
