/**
 * The production enclave program, compiled into the EIF by eif/build.sh.
 * Attestation comes only from the Nitro Security Module (/dev/nsm); peers
 * must chain to the AWS Nitro root and run this very image (or one the
 * measured flags allow); KMS must present a certificate chaining to the
 * Amazon Trust Services roots; the host is served only on AF_VSOCK. The development stand-ins (simulated NSM,
 * development PKI, Unix socket) live in src/dev/enclave-main.ts and are not
 * part of this program's bundle (test/enclave/production-bundle.test.ts).
 */
import { dirname } from "node:path";
import { requestNsmAttestation } from "../attestation/nsm-device.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import { productionPlatform } from "./production-platform.ts";
import { COMMON_OPTIONS_HELP, runEnclaveProgram } from "./program.ts";
import { readEnclaveWasm } from "./wasm-asset.ts";
import { versionLine } from "../shared/version.ts";

const HELP = `usage: tss-enclave --listen vsock:PORT [--phase-timeout-ms N] [--max-sessions N] [--share-budget-bytes N]
         [--peer-image-sha384 HEX]...
         --kms-relay vsock:CID:PORT --kms-endpoint https://HOST[:PORT] --kms-region R --kms-key-id ARN
       tss-enclave --version | --help

  --listen vsock:PORT  serve the host on AF_VSOCK (any CID), PORT
${COMMON_OPTIONS_HELP}
  --peer-image-sha384  another image (PCR0, hex) whose enclaves may be peers, e.g. during an upgrade
  --kms-relay          the parent's KMS relay (vsock:3:PORT); TLS to KMS runs through it
  --kms-endpoint       https://kms.REGION.amazonaws.com; its host name is the TLS name verified
  --kms-region         the KMS region (SigV4)
  --kms-key-id         the cluster's share-wrapping key ARN (never taken from the host)

The EIF's ENTRYPOINT fixes these flags, so they are measured into PCR0.
Attestation documents come from /dev/nsm; without it (outside a Nitro
Enclave) the program refuses to start. PCR0 and PCR4 (the node identity)
are the ones its own attestation document reports. Peers are admitted only
with documents chaining to the AWS Nitro root in aws-nitro-root.pem beside
this executable (its SHA-256 fingerprint is pinned) and with this image's
PCR0 or an allowed one (never all zero). KMS's TLS certificate must chain to
the Amazon Trust Services roots in amazon-trust-roots.pem beside this
executable (fingerprints pinned).`;

/** The EIF ships the roots beside the executable; a compiled binary's own import.meta.dir is its embedded file system. */
function programDir(): string {
  return Bun.main.startsWith("/$bunfs/") ? dirname(process.execPath) : import.meta.dir;
}

// Answered before anything else runs: no device, no roots, no listener.
if (process.argv.slice(2).includes("--version")) {
  console.log(versionLine("tss-enclave"));
  process.exit(0);
}

runEnclaveProgram({
  help: HELP,
  wasm: readEnclaveWasm,
  kmsRequired: true,
  listen: {
    pattern: /^vsock:\d+$/,
    usage: "vsock:PORT",
    open: (address) => listenVsock(Number(address.slice("vsock:".length))),
  },
  platform: async () => productionPlatform(programDir(), (req) => requestNsmAttestation(req)),
});
