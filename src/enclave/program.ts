/**
 * What the production entry (main.ts) and the development entry
 * (src/dev/enclave-main.ts) share: argument parsing, building the service,
 * serving it over the RPC channel, and shutdown. An entry supplies only the
 * platform (NSM, trusted roots, PCR0) and the listener forms it serves, so a
 * development stand-in can never be reached from the production build.
 *
 * The process touches nothing but its listener: no network connection, no
 * file besides its own code, wasm and (in production) the AWS root.
 */
import type { Nsm } from "../attestation/nsm.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import type { PublicError } from "../shared/channel/rpc-errors.ts";
import { RpcServer, type Handler, type HandlerMap } from "../shared/channel/rpc-server.ts";
import type { ChannelListener } from "../shared/channel/transport.ts";
import { jsonLogger, type Logger } from "../shared/log.ts";
import type { BodyMap } from "../shared/wire/body.ts";
import { fromBody, toBody } from "../shared/wire/enclave-codec.ts";
import type * as Api from "../shared/wire/enclave-ops.ts";
import { FrameType } from "../shared/wire/frame.ts";
import { DklsError } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import { EnclaveService } from "./service.ts";

/** What attests this enclave and whom it admits as a peer. */
export interface EnclavePlatform {
  nsm: Nsm;
  /** Roots that peers' attestation documents must chain to. */
  peerRoots: TrustedRoot[];
  /** This image's PCR0: reported by health, and the one peers must run. */
  pcr0: Uint8Array;
  /** Accept peers attested by a development root: only the development entry sets it. */
  allowDevelopment?: boolean;
}

export interface EnclaveEntry {
  /** The whole --help text. */
  help: string;
  /** --listen forms this entry serves, and the sentence naming them. */
  listen: { pattern: RegExp; usage: string; open(address: string): ChannelListener };
  /** The DKLs23 wasm bytes (wasm-asset.ts; passed in so this module loads without Bun's asset imports). */
  wasm(): Promise<Uint8Array>;
  /** The platform, given the wasm bytes (a development PCR0 measures them). */
  platform(wasm: Uint8Array): Promise<EnclavePlatform>;
}

export interface EnclaveArgs {
  listen: string;
  phaseTimeoutMs: number;
}

export const DEFAULT_PHASE_TIMEOUT_MS = 120_000;
const MIN_PHASE_TIMEOUT_MS = 100;

/** Parses `--listen ADDRESS [--phase-timeout-ms N]`; null for --help. Anything else is refused, so a flag never silently means nothing. */
export function parseEnclaveArgs(
  argv: readonly string[],
  listen: EnclaveEntry["listen"],
): EnclaveArgs | null {
  if (argv.includes("--help") || argv.includes("-h")) return null;
  let address: string | undefined;
  let timeout = String(DEFAULT_PHASE_TIMEOUT_MS);
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (flag !== "--listen" && flag !== "--phase-timeout-ms")
      throw new Error(`unknown option ${flag} (see --help)`);
    if (value === undefined) throw new Error(`${flag} needs a value (see --help)`);
    if (flag === "--listen") address = value;
    else timeout = value;
  }
  if (!address || !listen.pattern.test(address))
    throw new Error(`--listen ${listen.usage} is required (see --help)`);
  const phaseTimeoutMs = Number(timeout);
  if (!Number.isInteger(phaseTimeoutMs) || phaseTimeoutMs < MIN_PHASE_TIMEOUT_MS)
    throw new Error(`--phase-timeout-ms must be an integer >= ${MIN_PHASE_TIMEOUT_MS}`);
  return { listen: address, phaseTimeoutMs };
}

/** Only the enclave's own error sentences, written to be public, reach the host; blame is a field, never text. */
export function exposeEnclaveError(e: unknown): PublicError | null {
  if (e instanceof EnclaveError || e instanceof DklsError) {
    const party = e.blame.party;
    return party === undefined
      ? { code: e.code, message: e.message }
      : { code: e.code, message: e.message, party };
  }
  if (e instanceof Error && (e.name === "BodyError" || e.name === "MessageFormatError"))
    return { code: "bad_request", message: e.message };
  return null;
}

// stderr is the enclave console (visible only for debug-mode enclaves).
export const log: Logger = jsonLogger("enclave");

function handlers(service: EnclaveService): HandlerMap {
  const h =
    <Req, Rep>(f: (r: Req) => Rep): Handler =>
    (body: BodyMap) =>
      toBody(f(fromBody<Req>(body)) as object);
  return {
    [FrameType.HEALTH]: h<object, Api.HealthReply>(() => service.health()),
    [FrameType.ATTEST]: h<Api.AttestRequest, Api.AttestReply>((r) => service.attest(r)),
    [FrameType.LOAD_SHARE]: h<Api.LoadShareRequest, Api.LoadShareReply>((r) =>
      service.loadShare(r),
    ),
    [FrameType.CEREMONY_START]: h<Api.CeremonyStartRequest, Api.CeremonyReply>((r) =>
      service.startCeremony(r),
    ),
    [FrameType.CEREMONY_STEP]: h<Api.CeremonyStepRequest, Api.CeremonyReply>((r) =>
      service.stepCeremony(r),
    ),
    [FrameType.CEREMONY_ABORT]: h<Api.CeremonyAbortRequest, { dropped: boolean }>((r) =>
      service.abortCeremony(r),
    ),
    [FrameType.SEAL_SHARE]: h<Api.SealShareRequest, Api.SealShareReply>((r) =>
      service.sealShare(r),
    ),
    [FrameType.ACTIVATE_SHARE]: h<Api.ActivateShareRequest, Api.LoadShareReply>((r) =>
      service.activateShare(r),
    ),
  };
}

async function serve(entry: EnclaveEntry): Promise<void> {
  const args = parseEnclaveArgs(process.argv.slice(2), entry.listen);
  if (!args) {
    console.log(entry.help);
    return;
  }
  const wasm = await entry.wasm();
  const platform = await entry.platform(wasm);
  const service = new EnclaveService({
    ...platform,
    phaseTimeoutMs: args.phaseTimeoutMs,
    wasm,
    log,
  });
  const server = new RpcServer(handlers(service), {
    // One host connection carries every concurrent session's steps; the
    // per-session work is short, so allow many in flight.
    maxConcurrent: 256,
    exposeError: exposeEnclaveError,
    log: (ev) =>
      log(ev.kind, {
        connection: ev.connection,
        error: "error" in ev ? String((ev.error as Error)?.message ?? ev.error) : undefined,
      }),
  });
  const listener = entry.listen.open(args.listen);
  server.serve(listener);
  const pcr0 = service.health().pcr0;
  log("listening", { listen: args.listen, pcr0 });
  // The launcher waits for this line before connecting.
  console.log(JSON.stringify({ event: "listening", listen: args.listen, pcr0 }));

  const stop = () => {
    service.shutdown();
    server.close();
    listener.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** Runs an entry; any failure before serving is logged and exits 1. */
export function runEnclaveProgram(entry: EnclaveEntry): void {
  serve(entry).catch((e) => {
    log("fatal", { error: (e as Error).message });
    process.exit(1);
  });
}
