/**
 * The development enclave program: the production program (src/enclave/
 * program.ts) with the Nitro hardware stood in for. For the harness, the
 * demo and tests only; build/package.sh never compiles it.
 *
 * The simulated NSM's signing PKI arrives as one line on stdin, and PCR0 is
 * SHA-384(this program's file || wasm), so a changed enclave gets a
 * different PCR0 (src/harness/enclave-image.ts computes the same).
 */
import { listenUnix } from "../shared/channel/unix-transport.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import { DEFAULT_PHASE_TIMEOUT_MS, log, runEnclaveProgram } from "../enclave/program.ts";
import { MAX_SERIALIZED_PKI_CHARS, restoreDevelopmentPki } from "./dev-pki.ts";
import { SimulatedNsm, pcr0ForCode } from "./simulated-nsm.ts";
import { readEnclaveWasm } from "../enclave/wasm-asset.ts";

const HELP = `usage: dev-enclave --listen unix:PATH | vsock:PORT [--phase-timeout-ms N]

DEVELOPMENT ONLY: attestation documents are signed by a simulated NSM, so
they prove nothing. The production program is src/enclave/main.ts.

  --listen unix:PATH   serve the host on a Unix socket (stands in for VSOCK)
  --listen vsock:PORT  serve the host on AF_VSOCK (any CID), PORT
  --phase-timeout-ms   deadline for each ceremony phase (default ${DEFAULT_PHASE_TIMEOUT_MS})

Before serving it reads the development PKI on stdin: one line of JSON, as
serializeDevelopmentPki (src/dev/dev-pki.ts) writes it. PCR0 is
SHA-384(this program's file || wasm). Peers are admitted only with
documents chaining to that PKI's root and with the same PCR0.`;

async function readStdinLine(): Promise<string> {
  const reader = Bun.stdin.stream().getReader();
  let text = "";
  const dec = new TextDecoder();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.length > MAX_SERIALIZED_PKI_CHARS)
      throw new Error(`development PKI on stdin exceeds ${MAX_SERIALIZED_PKI_CHARS} characters`);
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

runEnclaveProgram({
  help: HELP,
  wasm: readEnclaveWasm,
  listen: {
    pattern: /^(unix:.+|vsock:\d+)$/,
    usage: "unix:PATH or vsock:PORT",
    open: (address) =>
      address.startsWith("unix:")
        ? listenUnix(address.slice("unix:".length))
        : listenVsock(Number(address.slice("vsock:".length))),
  },
  platform: async (wasm) => {
    const pki = restoreDevelopmentPki(await readStdinLine());
    const pcr0 = pcr0ForCode([await Bun.file(Bun.main).bytes(), wasm]);
    const pcrs: Record<number, Uint8Array> = { 0: pcr0 };
    pcrs[1] = pcr0ForCode([new TextEncoder().encode("development kernel")]);
    pcrs[2] = pcr0ForCode([new TextEncoder().encode("development application")]);
    log("development_nsm", {
      warning: "SIMULATED NSM: attestation documents are signed by a development PKI",
    });
    return {
      nsm: new SimulatedNsm({ pki, pcrs }),
      peerRoots: [{ der: pki.root.der, development: true }],
      pcr0,
      allowDevelopment: true,
    };
  },
});
