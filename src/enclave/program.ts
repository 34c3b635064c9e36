/**
 * What the production entry (main.ts) and the development entry
 * (src/dev/enclave-main.ts) share: argument parsing, building the service,
 * serving it over the RPC channel, and shutdown. An entry supplies only the
 * platform (NSM, trusted roots) and the listener forms it serves, so a
 * development stand-in can never be reached from the production build. PCR0
 * and PCR4 come from the enclave's own attestation document, in both.
 *
 * The process touches nothing but its listener and its host's KMS relay (a
 * TLS session to KMS that ends here): no other connection, no file besides
 * its own code, wasm and (in production) the AWS Nitro and Amazon Trust
 * Services roots.
 */
import { decodeAttestationDocument } from "../attestation/cose.ts";
import type { Nsm } from "../attestation/nsm.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import type { PublicError } from "../shared/channel/rpc-errors.ts";
import { RpcServer, type Handler, type HandlerMap } from "../shared/channel/rpc-server.ts";
import type { ChannelListener } from "../shared/channel/transport.ts";
import { fromHex } from "../shared/hex.ts";
import { jsonLogger, type Logger } from "../shared/log.ts";
import type { BodyMap } from "../shared/wire/body.ts";
import { fromBody, toBody } from "../shared/wire/enclave-codec.ts";
import type * as Api from "../shared/wire/enclave-ops.ts";
import { FrameType } from "../shared/wire/frame.ts";
import { DklsError } from "./dkls23/binding.ts";
import { onCoreTrap } from "./dkls23/core.ts";
import { EnclaveError } from "./errors.ts";
import { EnclaveKms } from "./kms/kms-client.ts";
import { parseRelayAddress, type RelayAddress } from "./kms/relay-socket.ts";
import { ADMIN_POLICY_HEX } from "./admin-policy.ts";
import { builtInApprovalSettings, type ApprovalSettings } from "./approval-gate.ts";
import { DEFAULT_MAX_OPEN_SESSIONS } from "./ceremony-registry.ts";
import { EnclaveService } from "./service.ts";
import { DEFAULT_SHARE_BUDGET_BYTES, MAX_SHARE_BUDGET_BYTES } from "./share-cache.ts";

/** What attests this enclave, whom it admits as a peer, and which TLS roots its KMS endpoint must chain to. */
export interface EnclavePlatform {
  nsm: Nsm;
  /** Roots that peers' attestation documents must chain to. */
  peerRoots: TrustedRoot[];
  /** Accept peers attested by a development root: only the development entry sets it. */
  allowDevelopment?: boolean;
  /** PEM certificates the KMS endpoint's TLS chain must reach; absent: KMS cannot be configured. */
  kmsTrustedCaPem?: string[];
  /**
   * Development only (honoured only with allowDevelopment): approval settings in place of the
   * administrators' policy built into the bundle (admin-policy.ts).
   */
  developmentApprovals?: ApprovalSettings;
}

export interface EnclaveEntry {
  /** The whole --help text. */
  help: string;
  /** --listen forms this entry serves, and the sentence naming them. */
  listen: { pattern: RegExp; usage: string; open(address: string): ChannelListener };
  /** Production: the --kms-* flags are required (a node that cannot seal is no node). */
  kmsRequired: boolean;
  /** The DKLs23 wasm bytes (wasm-asset.ts; passed in so this module loads without Bun's asset imports). */
  wasm(): Promise<Uint8Array>;
  /** The platform, given the wasm bytes (a development PCR0 measures them). */
  platform(wasm: Uint8Array): Promise<EnclavePlatform>;
}

/** Where and how this enclave reaches KMS: its own flags (measured into PCR0 in production), never the host's. */
export interface KmsArgs {
  relay: RelayAddress;
  endpoint: string;
  region: string;
  keyId: string;
}

export interface EnclaveArgs {
  listen: string;
  phaseTimeoutMs: number;
  /** Open ceremony sessions at once; one more start is refused with too_many_sessions. */
  maxSessions: number;
  /** Memory budget of the loaded shares in bytes (share-cache.ts); past it the least recently used is evicted. */
  shareBudgetBytes: number;
  /** Other images (PCR0) whose enclaves may be peers; this image's own is always allowed. */
  peerImages: Uint8Array[];
  kms?: KmsArgs;
}

export const DEFAULT_PHASE_TIMEOUT_MS = 120_000;
const MIN_PHASE_TIMEOUT_MS = 100;
const KMS_FLAGS = ["--kms-relay", "--kms-endpoint", "--kms-region", "--kms-key-id"] as const;
const FLAGS = [
  "--listen",
  "--phase-timeout-ms",
  "--max-sessions",
  "--share-budget-bytes",
  "--peer-image-sha384",
  ...KMS_FLAGS,
];
/** Above this the sessions' keep-state could outgrow the enclave's memory before any cap bites. */
export const MAX_SESSIONS_LIMIT = 1024;
/** Below one 2-of-2 share (52,660 bytes) no wallet could ever load; a typo such as "256" is refused. */
export const MIN_SHARE_BUDGET_BYTES = 64 * 1024;
/** A region name, and a key id, alias or ARN as KMS accepts them. */
const REGION = /^[a-z]{2}(-[a-z0-9]+){1,4}$/;
const KEY_ID = /^[A-Za-z0-9:/_.+=,@-]{1,2048}$/;
const IMAGE_SHA384 = /^[0-9a-f]{96}$/i;

/** The option lines both entries' `--help` share (each adds its own listen and KMS lines). */
export const COMMON_OPTIONS_HELP = `  --phase-timeout-ms   deadline for each ceremony phase (default ${DEFAULT_PHASE_TIMEOUT_MS})
  --max-sessions N     open ceremony sessions at once, beyond which a start is refused with
                       too_many_sessions (default ${DEFAULT_MAX_OPEN_SESSIONS}, at most ${MAX_SESSIONS_LIMIT})
  --share-budget-bytes N  memory for loaded shares; past it the least recently used is
                       evicted and reloaded on demand (default ${DEFAULT_SHARE_BUDGET_BYTES},
                       from ${MIN_SHARE_BUDGET_BYTES} to ${MAX_SHARE_BUDGET_BYTES})`;

/**
 * Parses `--listen ADDRESS [--phase-timeout-ms N] [--max-sessions N] [--share-budget-bytes N]
 * [--peer-image-sha384 HEX]...
 * [--kms-relay A --kms-endpoint URL --kms-region R --kms-key-id ID]`; null for
 * --help. Anything else is refused, so a flag never silently means nothing.
 */
export function parseEnclaveArgs(
  argv: readonly string[],
  listen: EnclaveEntry["listen"],
  kmsRequired = false,
): EnclaveArgs | null {
  if (argv.includes("--help") || argv.includes("-h")) return null;
  const one = new Map<string, string>();
  const peerImages: Uint8Array[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (!FLAGS.includes(flag)) throw new Error(`unknown option ${flag} (see --help)`);
    if (value === undefined) throw new Error(`${flag} needs a value (see --help)`);
    if (flag === "--peer-image-sha384") {
      if (!IMAGE_SHA384.test(value) || /^0+$/.test(value))
        throw new Error("--peer-image-sha384 must be 96 hex digits, not all zero");
      peerImages.push(fromHex(value.toLowerCase(), 48));
    } else if (one.has(flag)) throw new Error(`${flag} given twice`);
    else one.set(flag, value);
  }
  const address = one.get("--listen");
  if (!address || !listen.pattern.test(address))
    throw new Error(`--listen ${listen.usage} is required (see --help)`);
  const phaseTimeoutMs = Number(one.get("--phase-timeout-ms") ?? DEFAULT_PHASE_TIMEOUT_MS);
  if (!Number.isInteger(phaseTimeoutMs) || phaseTimeoutMs < MIN_PHASE_TIMEOUT_MS)
    throw new Error(`--phase-timeout-ms must be an integer >= ${MIN_PHASE_TIMEOUT_MS}`);
  const maxSessions = Number(one.get("--max-sessions") ?? DEFAULT_MAX_OPEN_SESSIONS);
  if (!Number.isInteger(maxSessions) || maxSessions < 1 || maxSessions > MAX_SESSIONS_LIMIT)
    throw new Error(`--max-sessions must be an integer from 1 to ${MAX_SESSIONS_LIMIT}`);
  const shareBudgetBytes = Number(one.get("--share-budget-bytes") ?? DEFAULT_SHARE_BUDGET_BYTES);
  if (
    !Number.isSafeInteger(shareBudgetBytes) ||
    shareBudgetBytes < MIN_SHARE_BUDGET_BYTES ||
    shareBudgetBytes > MAX_SHARE_BUDGET_BYTES
  )
    throw new Error(
      `--share-budget-bytes must be an integer from ${MIN_SHARE_BUDGET_BYTES} to ${MAX_SHARE_BUDGET_BYTES}`,
    );
  const args: EnclaveArgs = {
    listen: address,
    phaseTimeoutMs,
    maxSessions,
    shareBudgetBytes,
    peerImages,
  };
  const given = KMS_FLAGS.filter((f) => one.has(f));
  if (given.length === 0 && !kmsRequired) return args;
  if (given.length !== KMS_FLAGS.length)
    throw new Error(`${KMS_FLAGS.join(", ")} are required together (see --help)`);
  const region = one.get("--kms-region")!;
  const keyId = one.get("--kms-key-id")!;
  if (!REGION.test(region)) throw new Error("--kms-region must be an AWS region name");
  if (!KEY_ID.test(keyId)) throw new Error("--kms-key-id must be a KMS key id, alias or ARN");
  const endpoint = one.get("--kms-endpoint")!;
  if (
    !/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/?$/.test(endpoint) &&
    !/^https:\/\/\[[0-9a-f:]+\](:\d{1,5})?\/?$/i.test(endpoint)
  )
    throw new Error("--kms-endpoint must be https://HOST[:PORT]");
  args.kms = { relay: parseRelayAddress(one.get("--kms-relay")!), endpoint, region, keyId };
  return args;
}

/** PCR0 and PCR4 as this enclave's own attestation document reports them. */
export function ownMeasurements(nsm: Nsm): { pcr0: Uint8Array; pcr4: Uint8Array } {
  const pcrs = decodeAttestationDocument(nsm.attest({})).document.pcrs;
  const pcr0 = pcrs.get(0);
  const pcr4 = pcrs.get(4);
  if (!pcr0 || !pcr4) throw new Error("the NSM's attestation document lacks PCR0 or PCR4");
  // Without a node identity every node's shares would be bound alike.
  if (pcr4.every((b) => b === 0))
    throw new Error("PCR4 (the node identity) is all zero: refusing to run without one");
  return { pcr0, pcr4 };
}

/** Only the enclave's own error sentences, written to be public, reach the host; blame is a field, never text. */
export function exposeEnclaveError(e: unknown): PublicError | null {
  if (e instanceof EnclaveError || e instanceof DklsError) {
    const party = e.blame.party;
    const reason = e instanceof EnclaveError ? e.reason : undefined;
    return {
      code: e.code,
      message: e.message,
      ...(party === undefined ? {} : { party }),
      ...(reason === undefined ? {} : { reason }),
    };
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
  // LOAD_SHARE and SEAL_SHARE wait for the enclave's own KMS call.
  const later =
    <Req, Rep>(f: (r: Req) => Promise<Rep>): Handler =>
    async (body: BodyMap) =>
      toBody((await f(fromBody<Req>(body))) as object);
  return {
    [FrameType.HEALTH]: h<object, Api.HealthReply>(() => service.health()),
    [FrameType.ATTEST]: h<Api.AttestRequest, Api.AttestReply>((r) => service.attest(r)),
    [FrameType.LOAD_SHARE]: later<Api.LoadShareRequest, Api.LoadShareReply>((r) =>
      service.loadShare(r),
    ),
    // A key import's start waits for its envelope to be opened (HPKE on WebCrypto).
    [FrameType.CEREMONY_START]: later<Api.CeremonyStartRequest, Api.CeremonyReply>(async (r) =>
      r.importEnvelope === undefined ? service.startCeremony(r) : service.startImport(r),
    ),
    [FrameType.CEREMONY_STEP]: h<Api.CeremonyStepRequest, Api.CeremonyReply>((r) =>
      service.stepCeremony(r),
    ),
    [FrameType.CEREMONY_ABORT]: h<Api.CeremonyAbortRequest, { dropped: boolean }>((r) =>
      service.abortCeremony(r),
    ),
    [FrameType.SEAL_SHARE]: later<Api.SealShareRequest, Api.SealShareReply>((r) =>
      service.sealShare(r),
    ),
    [FrameType.ACTIVATE_SHARE]: h<Api.ActivateShareRequest, Api.LoadShareReply>((r) =>
      service.activateShare(r),
    ),
    [FrameType.RETIRE_WALLET]: h<Api.RetireWalletRequest, Api.RetireWalletReply>((r) =>
      service.retireWallet(r),
    ),
    [FrameType.SUPERSEDED_SHARE]: h<Api.SupersededShareRequest, Api.SupersededShareReply>((r) =>
      service.supersededShare(r),
    ),
    [FrameType.SUPERSESSION_NONCE]: h<Api.SupersessionNonceRequest, Api.SupersessionNonceReply>(
      (r) => service.supersessionNonce(r),
    ),
    [FrameType.PROVE_ACTIVE]: h<Api.ProveActiveRequest, Api.ProveActiveReply>((r) =>
      service.proveActive(r),
    ),
  };
}

/**
 * Production: the administrators' policy measured into the bundle, approvals
 * required; a platform replaces it only if it is the development one.
 */
export function approvalSettingsFor(platform: EnclavePlatform): ApprovalSettings {
  return platform.allowDevelopment && platform.developmentApprovals
    ? platform.developmentApprovals
    : builtInApprovalSettings(ADMIN_POLICY_HEX);
}

async function serve(entry: EnclaveEntry): Promise<void> {
  const args = parseEnclaveArgs(process.argv.slice(2), entry.listen, entry.kmsRequired);
  if (!args) {
    console.log(entry.help);
    return;
  }
  const wasm = await entry.wasm();
  const platform = await entry.platform(wasm);
  // One document at boot: it proves the NSM answers and tells this image's PCR0 (which peers
  // must match unless --peer-image-sha384 allows others) and this node's identity, PCR4.
  const { pcr0, pcr4 } = ownMeasurements(platform.nsm);
  let kms: EnclaveKms | undefined;
  if (args.kms) {
    if (!platform.kmsTrustedCaPem) throw new Error("no trusted CA for the KMS endpoint");
    kms = new EnclaveKms({ ...args.kms, trustedCaPem: platform.kmsTrustedCaPem });
  }
  const service = new EnclaveService({
    nsm: platform.nsm,
    peerRoots: platform.peerRoots,
    allowDevelopment: platform.allowDevelopment,
    pcr0,
    pcr4,
    allowedPeerPcr0: args.peerImages,
    kms,
    phaseTimeoutMs: args.phaseTimeoutMs,
    maxOpenSessions: args.maxSessions,
    shareBudgetBytes: args.shareBudgetBytes,
    wasm,
    log,
    approvals: approvalSettingsFor(platform),
  });
  // Trapped means dead: the core's instance can no longer be trusted, so wipe what can be
  // wiped and exit; the host sees the channel drop.
  onCoreTrap(() => {
    log("fatal", { error: "the DKLs23 core trapped or failed unexpectedly; exiting" });
    try {
      service.shutdown();
    } finally {
      process.exit(70);
    }
  });
  const server = new RpcServer(handlers(service), {
    // One host connection carries every concurrent session's steps; the
    // per-session work is short, so allow many in flight.
    maxConcurrent: 256,
    exposeError: exposeEnclaveError,
    // The enclave console is readable by whoever runs the enclave: log what the
    // host is told anyway (a public code and sentence), and of any other failure
    // only its class, never its message (it could quote internal state).
    log: (ev) =>
      log(ev.kind, { connection: ev.connection, ...("error" in ev ? loggedError(ev.error) : {}) }),
  });
  const listener = entry.listen.open(args.listen);
  server.serve(listener);
  const { pcr0: pcr0Hex, pcr4: pcr4Hex } = service.health();
  log("listening", { listen: args.listen, pcr0: pcr0Hex, pcr4: pcr4Hex, kms: args.kms?.endpoint });
  // The launcher waits for this line before connecting.
  console.log(
    JSON.stringify({ event: "listening", listen: args.listen, pcr0: pcr0Hex, pcr4: pcr4Hex }),
  );

  const stop = () => {
    service.shutdown();
    server.close();
    listener.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

function loggedError(e: unknown): { code: string; error: string } | { errorClass: string } {
  const pub = exposeEnclaveError(e);
  if (pub) return { code: pub.code, error: pub.message };
  return { errorClass: e instanceof Error ? e.name : typeof e };
}

/** Runs an entry; any failure before serving is logged and exits 1. */
export function runEnclaveProgram(entry: EnclaveEntry): void {
  serve(entry).catch((e) => {
    log("fatal", { error: (e as Error).message });
    process.exit(1);
  });
}
