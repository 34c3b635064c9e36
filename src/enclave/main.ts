/**
 * The enclave program. Listens on VSOCK (production) or a Unix socket
 * (development), answers its host's requests, and touches nothing else: no
 * network connection, no file besides its own code and wasm.
 *
 * Development mode stands in for the Nitro hardware: the simulated NSM's
 * signing PKI arrives as one line on stdin, and PCR0 is the SHA-384 of this
 * program's code and its wasm, so a changed enclave gets a different PCR0.
 */
// `type: "file"` makes Bun embed the wasm in a bundle or compiled binary and
// give its path; TypeScript sees wasm-bindgen's .d.ts instead, hence the cast.
import wasmAsset from "./dkls23/wasm/dkls23_bg.wasm" with { type: "file" };
// In a bundle the path is relative to the bundle's own folder.
const wasmPath = isAbsolute(wasmAsset as unknown as string) ? (wasmAsset as unknown as string) : join(import.meta.dir, wasmAsset as unknown as string);
import { isAbsolute, join } from "node:path";
import { FrameType } from "../shared/wire/frame.ts";
import { RpcServer, type Handler } from "../shared/channel/rpc.ts";
import { listenUnix } from "../shared/channel/unix-transport.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import { fromBody, toBody } from "../shared/wire/enclave-codec.ts";
import type * as Api from "../shared/wire/enclave-ops.ts";
import { restoreDevelopmentPki } from "../dev/dev-pki.ts";
import { SimulatedNsm, pcr0ForCode } from "../dev/simulated-nsm.ts";
import { requestNsmAttestation } from "../attestation/nsm-device.ts";
import { loadAwsNitroRoot } from "../attestation/aws-root.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import { EnclaveService, type Nsm } from "./service.ts";
import { EnclaveError } from "./errors.ts";
import { DklsError } from "./dkls23/binding.ts";
import type { BodyMap } from "../shared/wire/body.ts";

const HELP = `usage: enclave --listen unix:PATH | vsock:PORT [--dev] [--phase-timeout-ms N]

  --listen unix:PATH   development: serve the host on a Unix socket
  --listen vsock:PORT  production: serve the host on AF_VSOCK (any CID), PORT
  --dev                simulated NSM: reads the development PKI (one line of
                       JSON from dev-pki.ts) on stdin; PCR0 = SHA-384(code || wasm)
  --phase-timeout-ms   deadline for each ceremony phase (default 120000)

Without --dev, attestation documents come from /dev/nsm.`;

function log(event: string, fields: Record<string, unknown> = {}): void {
  // stderr is the enclave console (visible only for debug-mode enclaves).
  console.error(JSON.stringify({ at: new Date().toISOString(), src: "enclave", event, ...fields }));
}

async function readStdinLine(): Promise<string> {
  const reader = Bun.stdin.stream().getReader();
  let text = "";
  const dec = new TextDecoder();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.length > 1 << 20) throw new Error("development PKI on stdin exceeds 1 MiB");
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    console.log(HELP);
    return;
  }
  const listen = arg("--listen");
  if (!listen || !/^(unix:.+|vsock:\d+)$/.test(listen)) throw new Error("--listen unix:PATH or vsock:PORT is required (see --help)");
  const dev = process.argv.includes("--dev");
  const timeout = Number(arg("--phase-timeout-ms") ?? 120_000);
  if (!Number.isInteger(timeout) || timeout < 100) throw new Error("--phase-timeout-ms must be an integer >= 100");

  const wasm = await Bun.file(wasmPath).bytes();
  const code = await Bun.file(Bun.main).bytes();
  let nsm: Nsm;
  let pcr0: Uint8Array;
  let peerRoots: TrustedRoot[];
  if (dev) {
    const pki = restoreDevelopmentPki(await readStdinLine());
    pcr0 = pcr0ForCode([code, wasm]);
    const pcrs: Record<number, Uint8Array> = {};
    for (let i = 0; i < 16; i++) pcrs[i] = new Uint8Array(48);
    pcrs[0] = pcr0;
    pcrs[1] = pcr0ForCode([new TextEncoder().encode("development kernel")]);
    pcrs[2] = pcr0ForCode([new TextEncoder().encode("development application")]);
    nsm = new SimulatedNsm({ pki, pcrs });
    peerRoots = [{ der: pki.root.der, development: true }];
    log("development_nsm", { warning: "SIMULATED NSM: attestation documents are signed by a development PKI" });
  } else {
    nsm = { attest: (req) => requestNsmAttestation(req) };
    // The EIF carries the AWS root beside the binary (measured into PCR0); it is
    // still refused unless its SHA-256 fingerprint is the pinned one.
    peerRoots = [loadAwsNitroRoot(join(import.meta.dir, "aws-nitro-root.pem"))];
    pcr0 = new Uint8Array(48); // reported from the document itself in production
  }

  const service = new EnclaveService({ nsm, pcr0, phaseTimeoutMs: timeout, wasm, log, peerRoots, allowDevelopment: dev });
  const h = <Req, Rep>(f: (r: Req) => Rep): Handler => (body: BodyMap) => toBody(f(fromBody<Req>(body)) as object);
  const server = new RpcServer(
    {
      [FrameType.HEALTH]: h<object, Api.HealthReply>(() => service.health()),
      [FrameType.ATTEST]: h<Api.AttestRequest, Api.AttestReply>((r) => service.attest(r)),
      [FrameType.LOAD_SHARE]: h<Api.LoadShareRequest, Api.LoadShareReply>((r) => service.loadShare(r)),
      [FrameType.CEREMONY_START]: h<Api.CeremonyStartRequest, Api.CeremonyReply>((r) => service.startCeremony(r)),
      [FrameType.CEREMONY_STEP]: h<Api.CeremonyStepRequest, Api.CeremonyReply>((r) => service.stepCeremony(r)),
      [FrameType.CEREMONY_ABORT]: h<Api.CeremonyAbortRequest, { dropped: boolean }>((r) => service.abortCeremony(r)),
      [FrameType.SEAL_SHARE]: h<Api.SealShareRequest, Api.SealShareReply>((r) => service.sealShare(r)),
      [FrameType.ACTIVATE_SHARE]: h<Api.ActivateShareRequest, Api.LoadShareReply>((r) => service.activateShare(r)),
    },
    {
      // One host connection carries every concurrent session's steps; the
      // per-session work is short, so allow many in flight.
      maxConcurrent: 256,
      // Only the enclave's own error sentences, written to be public, reach the host.
      exposeError: (e) => {
        if (e instanceof EnclaveError) return { code: e.code, message: e.party ? `${e.message} [party ${e.party}]` : e.message };
        if (e instanceof DklsError) return { code: e.code, message: e.message };
        if (e instanceof Error && (e.name === "BodyError" || e.name === "MessageFormatError")) return { code: "bad_request", message: e.message };
        return null;
      },
      log: (ev) => log(ev.kind, { connection: ev.connection, error: "error" in ev ? String((ev.error as Error)?.message ?? ev.error) : undefined }),
    },
  );
  const listener = listen.startsWith("unix:") ? listenUnix(listen.slice(5)) : listenVsock(Number(listen.slice(6)));
  server.serve(listener);
  log("listening", { listen, pcr0: service.health().pcr0 });
  // The launcher waits for this line before connecting.
  console.log(JSON.stringify({ event: "listening", listen, pcr0: service.health().pcr0 }));

  const stop = () => {
    service.shutdown();
    server.close();
    listener.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  log("fatal", { error: (e as Error).message });
  process.exit(1);
});
