/**
 * The production enclave program, compiled into the EIF by build/package.sh.
 * Attestation comes only from the Nitro Security Module (/dev/nsm); peers
 * must chain to the AWS Nitro root and run this very image; the host is
 * served only on AF_VSOCK. The development stand-ins (simulated NSM,
 * development PKI, Unix socket) live in src/dev/enclave-main.ts and are not
 * part of this program's bundle (test/enclave/production-bundle.test.ts).
 */
import { dirname, join } from "node:path";
import { loadAwsNitroRoot } from "../attestation/aws-root.ts";
import { decodeAttestationDocument } from "../attestation/cose.ts";
import type { Nsm } from "../attestation/nsm.ts";
import { requestNsmAttestation } from "../attestation/nsm-device.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import { DEFAULT_PHASE_TIMEOUT_MS, runEnclaveProgram } from "./program.ts";
import { readEnclaveWasm } from "./wasm-asset.ts";

const HELP = `usage: enclave --listen vsock:PORT [--phase-timeout-ms N]

  --listen vsock:PORT  serve the host on AF_VSOCK (any CID), PORT
  --phase-timeout-ms   deadline for each ceremony phase (default ${DEFAULT_PHASE_TIMEOUT_MS})

Attestation documents come from /dev/nsm; without it (outside a Nitro
Enclave) the program refuses to start. PCR0 is the one the NSM reports.
Peers are admitted only with documents chaining to the AWS Nitro root in
aws-nitro-root.pem beside this executable (its SHA-256 fingerprint is
pinned) and with this image's PCR0.`;

/** The EIF ships the AWS root beside the executable; a compiled binary's own import.meta.dir is its embedded file system. */
function programDir(): string {
  return Bun.main.startsWith("/$bunfs/") ? dirname(process.execPath) : import.meta.dir;
}

runEnclaveProgram({
  help: HELP,
  wasm: readEnclaveWasm,
  listen: {
    pattern: /^vsock:\d+$/,
    usage: "vsock:PORT",
    open: (address) => listenVsock(Number(address.slice("vsock:".length))),
  },
  platform: async () => {
    const nsm: Nsm = { attest: (req) => requestNsmAttestation(req) };
    // One document at boot: it proves /dev/nsm answers and tells this image's
    // PCR0, which peers must match (the default peer policy).
    const pcr0 = decodeAttestationDocument(nsm.attest({})).document.pcrs.get(0);
    if (!pcr0) throw new Error("the NSM's attestation document carries no PCR0");
    // Measured into PCR0 with the image, and still refused unless its SHA-256 fingerprint is the pinned one.
    const peerRoots = [loadAwsNitroRoot(join(programDir(), "aws-nitro-root.pem"))];
    return { nsm, peerRoots, pcr0 };
  },
});
