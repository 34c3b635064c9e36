/**
 * tss: the command line over the client SDK (src/client). Arguments are
 * checked before connecting, so a usage error never reaches the cluster.
 * Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
 * error, 130 interrupted.
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_TIMEOUT_MS,
  ID_PATTERN,
  TssClient,
  TssError,
  checkPath,
  newRequestId,
  normalizeDigest,
  type ConnectOptions,
  type NodeInfo,
  type Progress,
  type SignResult,
  type WalletInfo,
} from "../client/index.ts";

// ---------------------------------------------------------------- help texts

const GLOBAL_HELP = `Global options:
  --url URL            the MQTT broker: mqtt://host:port, mqtts://host:port, ws://… or wss://…
                       (default: env TSS_MQTT_URL, else the "url" of the local
                       cluster's data/cluster/client.json, if that file exists)
  --username NAME      (default: env TSS_MQTT_USERNAME, else client.json when the URL came from it)
  --password PASSWORD  (default: env TSS_MQTT_PASSWORD, else client.json when the URL came from it)
  --ca FILE            CA certificate (PEM) for mqtts:// and wss:// (default: env TSS_MQTT_CA)
  --request-id ID      1-128 characters of [A-Za-z0-9._:-]; default a fresh random id.
                       Repeating a request with the same id returns its stored
                       result instead of running the ceremony again.
  --timeout SECONDS    give up waiting after this long (default ${DEFAULT_TIMEOUT_MS / 1000})
  --json               print exactly one JSON document on stdout: the result, or
                       {"error": {code, message, node, requestId}}; no progress lines
  -h, --help           show help (also: tss help COMMAND)

The client file (another path via env TSS_CLIENT_CONFIG) is JSON
{"url": …, "username": …, "password": …}; it is used only when neither --url
nor TSS_MQTT_URL is given, so its credentials never go to another broker.`;

const MAIN_HELP = `Usage: tss [options] COMMAND

Threshold-ECDSA (secp256k1) wallets on the TSS signing cluster, over MQTT.

Commands:
  wallet create [--threshold T] [--parties N]  create a wallet by distributed key generation
  wallet show ID                               show a wallet: public key, address, threshold, nodes
  wallet list                                  list the wallets the online nodes hold
  wallet refresh ID                            re-randomise every share of a wallet (same key)
  sign --wallet ID --digest HEX [--path P]     sign a 32-byte digest
  nodes                                        list the online signing nodes

Run tss COMMAND --help for a command's details.

${GLOBAL_HELP}

Exit status: 0 success, 1 the operation failed, 2 usage or configuration error.
`;

type Command = "wallet create" | "wallet show" | "wallet list" | "wallet refresh" | "sign" | "nodes";

interface CommandSpec {
  /** Names of the positional arguments, in order. */
  args: string[];
  /** Options that take a value, besides the global ones. */
  options: string[];
  help: string;
}

const COMMANDS: Record<Command, CommandSpec> = {
  "wallet create": {
    args: [],
    options: ["threshold", "parties"],
    help: `Usage: tss wallet create [--threshold T] [--parties N] [options]

Creates a T-of-N wallet by distributed key generation among N online nodes;
no machine ever holds the whole private key. Prints the wallet id, the
public key and its Ethereum address, and the nodes by party index.
Progress goes to stderr, a line per phase.

  --threshold T   signers needed for a signature (the nodes default to 3)
  --parties N     nodes holding a share (the nodes default to 5)
`,
  },
  "wallet show": {
    args: ["ID"],
    options: [],
    help: `Usage: tss wallet show ID [options]

Shows a wallet: its public key and Ethereum address, threshold, parties,
share generation and the nodes holding its shares, by party index.
`,
  },
  "wallet list": {
    args: [],
    options: [],
    help: `Usage: tss wallet list [options]

Lists the wallets held by the nodes that are online now.
`,
  },
  "wallet refresh": {
    args: ["ID"],
    options: [],
    help: `Usage: tss wallet refresh ID [options]

Re-randomises every share of the wallet (all of its nodes must be online).
The public key and address stay the same; the share generation goes up by
one, and shares of older generations can no longer sign.
Progress goes to stderr, a line per phase.
`,
  },
  sign: {
    args: [],
    options: ["wallet", "digest", "path"],
    help: `Usage: tss sign --wallet ID --digest HEX [--path m/0/7] [options]

Signs a 32-byte digest with a wallet's key, or with a child key derived from
it along a non-hardened BIP-32 path. The digest is the hash you computed
(for Ethereum, the keccak-256 of what you sign); it is not hashed again.
The signature is verified here against the returned public key before it is
printed: r, s, recovery id, the 65-byte Ethereum form (r || s || v,
v = 27 + recovery id) and DER. Progress goes to stderr, a line per phase.

  --wallet ID     the wallet
  --digest HEX    64 hex characters (0x optional)
  --path P        derive the signing key along P, e.g. m/0/7
`,
  },
  nodes: {
    args: [],
    options: [],
    help: `Usage: tss nodes [options]

Lists the signing nodes that are online: node id, status, since when, and
the PCR0 measurement of the enclave image each one reports.
`,
  },
};

function commandHelp(c: Command): string {
  return `${COMMANDS[c].help}\n${GLOBAL_HELP}\n`;
}

const WALLET_HELP = `Usage: tss wallet SUBCOMMAND [options]

Subcommands:
  create [--threshold T] [--parties N]   create a wallet by distributed key generation
  show ID                                show a wallet
  list                                   list the wallets
  refresh ID                             re-randomise every share of a wallet

Run tss wallet SUBCOMMAND --help for details.
`;

// ---------------------------------------------------------------- arguments

/** A mistake in the command line or configuration: exit status 2. */
class UsageError extends Error {}

const GLOBAL_OPTIONS = ["url", "username", "password", "ca", "request-id", "timeout"];
const VALUE_OPTIONS = new Set([...GLOBAL_OPTIONS, ...Object.values(COMMANDS).flatMap((c) => c.options)]);

interface Invocation {
  /** null: no command (main help), "wallet": the wallet group's help. */
  command: Command | "wallet" | null;
  args: string[];
  values: Map<string, string>;
  json: boolean;
  help: boolean;
}

function parseArgv(argv: string[]): Invocation {
  const words: string[] = [];
  const values = new Map<string, string>();
  let json = false;
  let help = false;
  // Problems wait until we know whether --help was asked for, which wins.
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-h" || a === "--help") help = true;
    else if (a === "--json") json = true;
    else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (!VALUE_OPTIONS.has(name)) {
        problems.push(`Unknown option --${name}; run tss --help for the options.`);
        continue;
      }
      const value = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined || (eq < 0 && value.startsWith("--"))) problems.push(`Option --${name} needs a value.`);
      else if (values.has(name)) problems.push(`Option --${name} is given twice.`);
      else values.set(name, value);
    } else if (a.startsWith("-") && a !== "-") problems.push(`Unknown option ${a}; run tss --help for the options.`);
    else words.push(a);
  }
  if (words[0] === "help") {
    words.shift();
    help = true;
  }
  const { command, args } = resolveCommand(words, help);
  if (help) return { command, args, values, json, help };
  if (problems.length > 0) throw new UsageError(problems[0]!);
  if (command === null) throw new UsageError("No command given; run tss --help for the commands.");
  if (command === "wallet") throw new UsageError("tss wallet needs a subcommand: create, show, list or refresh.");
  const spec = COMMANDS[command];
  if (args.length < spec.args.length) throw new UsageError(`tss ${command} needs a wallet id, as in tss ${command} w_0123abcd.`);
  if (args.length > spec.args.length) throw new UsageError(`Unexpected argument ${JSON.stringify(args[spec.args.length])} for tss ${command}.`);
  for (const name of values.keys()) {
    if (!GLOBAL_OPTIONS.includes(name) && !spec.options.includes(name)) throw new UsageError(`Option --${name} does not apply to tss ${command}.`);
  }
  return { command, args, values, json, help };
}

function resolveCommand(words: string[], lenient: boolean): { command: Invocation["command"]; args: string[] } {
  const [first, second] = words;
  if (first === undefined) return { command: null, args: [] };
  if (first === "sign" || first === "nodes") return { command: first, args: words.slice(1) };
  if (first === "wallet") {
    if (second === undefined) return { command: "wallet", args: [] };
    const c = `wallet ${second}`;
    if (c in COMMANDS) return { command: c as Command, args: words.slice(2) };
    if (lenient) return { command: "wallet", args: [] };
    throw new UsageError(`Unknown subcommand ${JSON.stringify(second)}; tss wallet takes create, show, list or refresh.`);
  }
  if (lenient) return { command: null, args: [] };
  throw new UsageError(`Unknown command ${JSON.stringify(first)}; run tss --help for the commands.`);
}

function wholeNumber(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,3}$/.test(v)) throw new UsageError(`--${name} must be a whole number, such as 3.`);
  return Number(v);
}

function walletIdArg(v: string | undefined, what: string): string {
  if (v === undefined) throw new UsageError(`tss sign needs ${what}, as in --wallet w_0123abcd.`);
  if (!ID_PATTERN.test(v)) throw new UsageError(`The wallet id ${JSON.stringify(v.slice(0, 40))} is not 1-128 characters of [A-Za-z0-9._:-].`);
  return v;
}

function timeoutMs(v: string | undefined): number {
  if (v === undefined) return DEFAULT_TIMEOUT_MS;
  const s = /^\d{1,6}(\.\d{1,3})?$/.test(v) ? Number(v) : NaN;
  if (!(s > 0 && s <= 86_400)) throw new UsageError("--timeout must be a number of seconds, more than 0 and at most 86400.");
  return s * 1000;
}

// ---------------------------------------------------------------- connection settings

const DEFAULT_CLIENT_FILE = fileURLToPath(new URL("../../data/cluster/client.json", import.meta.url));
const MAX_FILE_BYTES = 1024 * 1024;

type Env = Record<string, string | undefined>;

function readSmallFile(path: string, what: string): string | null {
  try {
    if (statSync(path).size > MAX_FILE_BYTES) throw new UsageError(`The ${what} ${path} is larger than 1 MiB.`);
    return readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw new UsageError(`Cannot read the ${what} ${path}.`);
  }
}

/** The cluster's client file, or null when there is none. */
function clientFile(path: string): { url: string; username?: string; password?: string } | null {
  const text = readSmallFile(path, "client file");
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  const o = v as Record<string, unknown> | null;
  const optional = (x: unknown) => x === undefined || typeof x === "string";
  if (!o || typeof o !== "object" || typeof o.url !== "string" || !optional(o.username) || !optional(o.password)) {
    throw new UsageError(`The client file ${path} is not JSON of the form {"url": …, "username": …, "password": …}.`);
  }
  return { url: o.url, username: o.username as string | undefined, password: o.password as string | undefined };
}

function connectionSettings(values: Map<string, string>, env: Env): Omit<ConnectOptions, "timeoutMs"> {
  const set = (x: string | undefined) => (x === undefined || x === "" ? undefined : x);
  let url = set(values.get("url")) ?? set(env.TSS_MQTT_URL);
  let username = set(values.get("username")) ?? set(env.TSS_MQTT_USERNAME);
  let password = set(values.get("password")) ?? set(env.TSS_MQTT_PASSWORD);
  if (url === undefined) {
    const file = clientFile(set(env.TSS_CLIENT_CONFIG) ?? DEFAULT_CLIENT_FILE);
    if (!file) throw new UsageError("No broker URL: pass --url mqtt://host:port, set TSS_MQTT_URL, or start the local cluster, which writes data/cluster/client.json.");
    url = file.url;
    username ??= file.username;
    password ??= file.password;
  }
  const caFile = set(values.get("ca")) ?? set(env.TSS_MQTT_CA);
  const ca = caFile === undefined ? undefined : readSmallFile(caFile, "CA file");
  if (ca === null) throw new UsageError(`The CA file ${caFile} does not exist.`);
  return { url, username, password, ...(ca === undefined ? {} : { tls: { ca } }) };
}

// ---------------------------------------------------------------- running a command

type Run = (client: TssClient, requestId: string, onProgress: ((p: Progress) => void) | undefined) => Promise<unknown>;

/** Checks the command's own arguments and returns what to run; throws UsageError before anything connects. */
function prepare(inv: Invocation & { command: Command }): { run: Run; show: (r: unknown) => string } {
  const v = inv.values;
  switch (inv.command) {
    case "wallet create": {
      const threshold = wholeNumber(v.get("threshold"), "threshold");
      const parties = wholeNumber(v.get("parties"), "parties");
      return {
        run: (c, requestId, onProgress) => c.createWallet({ threshold, parties, requestId, onProgress }),
        show: (r) => showWallet("Created wallet", r as WalletInfo),
      };
    }
    case "wallet show": {
      const id = walletIdArg(inv.args[0], "a wallet id");
      return { run: (c, requestId) => c.wallet(id, { requestId }), show: (r) => showWallet("Wallet", r as WalletInfo) };
    }
    case "wallet list":
      return { run: (c, requestId) => c.wallets({ requestId }), show: (r) => showWallets((r as { wallets: WalletInfo[] }).wallets) };
    case "wallet refresh": {
      const walletId = walletIdArg(inv.args[0], "a wallet id");
      return {
        run: (c, requestId, onProgress) => c.refresh({ walletId, requestId, onProgress }),
        show: (r) => showRefresh(r as { walletId: string; generation: number; publicKey: string; address: string }),
      };
    }
    case "sign": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const hex = v.get("digest");
      if (hex === undefined) throw new UsageError("tss sign needs --digest HEX, the 32-byte hash to sign in hex.");
      let digest: string;
      let path: string | undefined;
      try {
        digest = normalizeDigest(hex);
      } catch {
        throw new UsageError("--digest must be 64 hex characters (32 bytes; 0x optional).");
      }
      try {
        path = v.has("path") ? checkPath(v.get("path")) : undefined;
      } catch {
        throw new UsageError("--path must look like m/0/7: at most 32 non-hardened indices below 2^31.");
      }
      return {
        run: (c, requestId, onProgress) => c.sign({ walletId, digest, path, requestId, onProgress }),
        show: (r) => showSignature(r as SignResult),
      };
    }
    case "nodes":
      return { run: (c, requestId) => c.nodes({ requestId }), show: (r) => showNodes((r as { nodes: NodeInfo[] }).nodes) };
  }
}

// ---------------------------------------------------------------- human output

function fields(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n");
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

function showWallet(title: string, w: WalletInfo): string {
  return `${title} ${w.walletId} (${w.threshold}-of-${w.parties}, share generation ${w.generation})
${fields([
  ["public key", w.publicKey],
  ["address", w.address],
  ["nodes", `${w.nodes.join(", ")} (by party index)`],
])}`;
}

function showWallets(ws: WalletInfo[]): string {
  if (ws.length === 0) return "No wallets.";
  return table(
    ["WALLET", "T-OF-N", "GENERATION", "ADDRESS"],
    ws.map((w) => [w.walletId, `${w.threshold}-of-${w.parties}`, String(w.generation), w.address]),
  );
}

function showRefresh(r: { walletId: string; generation: number; publicKey: string; address: string }): string {
  return `Refreshed wallet ${r.walletId}: every share is new (generation ${r.generation}); the key and address are unchanged.
${fields([
  ["public key", r.publicKey],
  ["address", r.address],
])}`;
}

function showSignature(r: SignResult): string {
  const s = r.signature;
  return `Signature by wallet ${r.walletId}${r.path ? ` (key derived along ${r.path})` : ""}, verified here against the public key
${fields([
  ["digest", r.digest],
  ["public key", r.publicKey],
  ["address", r.address],
  ["r", s.r],
  ["s", s.s],
  ["recovery id", String(s.recoveryId)],
  ["ethereum", `0x${s.ethereum} (r || s || v, v = ${27 + s.recoveryId})`],
  ["der", s.der],
  ["signers", r.signers.join(", ")],
  ["coordinator", r.coordinator],
])}`;
}

function showNodes(ns: NodeInfo[]): string {
  if (ns.length === 0) return "No nodes are online.";
  return table(
    ["NODE", "STATUS", "SINCE", "PCR0"],
    ns.map((n) => [n.nodeId, n.status, new Date(n.since).toISOString(), n.pcr0 === null ? "-" : `${n.pcr0.slice(0, 16)}…`]),
  );
}

// ---------------------------------------------------------------- errors

function asSentence(message: string): string {
  const m = message.trim().replace(/[.\s]+$/, "");
  return m.charAt(0).toUpperCase() + m.slice(1);
}

/** One sentence for a failed operation, ending with its code and the node blamed. */
function describeFailure(e: TssError, requestId: string, timeoutS: number): string {
  // The SDK's own deadline (no node named): the request may still finish, and its id fetches the result.
  if (e.code === "deadline_exceeded" && e.node === null) {
    return `No final answer within ${timeoutS} s (deadline_exceeded); the request may still complete, so run the same command with --request-id ${requestId} to get its result without running it twice.`;
  }
  return `${asSentence(e.message)} (${e.code}${e.node ? `, node ${e.node}` : ""}).`;
}

// ---------------------------------------------------------------- main

async function main(argv: string[], env: Env): Promise<number> {
  const json = argv.includes("--json");
  const fail = (status: number, code: string, sentence: string, node: string | null = null, requestId: string | null = null) => {
    process.stderr.write(`tss: ${sentence}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ error: { code, message: sentence, node, requestId } }, null, 2)}\n`);
    return status;
  };
  let client: TssClient | null = null;
  let requestId = "";
  let timeout = DEFAULT_TIMEOUT_MS;
  try {
    const inv = parseArgv(argv);
    if (inv.help || inv.command === null || inv.command === "wallet") {
      process.stdout.write(inv.command === null ? MAIN_HELP : inv.command === "wallet" ? WALLET_HELP : commandHelp(inv.command));
      return 0;
    }
    const { run, show } = prepare(inv as Invocation & { command: Command });
    timeout = timeoutMs(inv.values.get("timeout"));
    const given = inv.values.get("request-id");
    if (given !== undefined && !ID_PATTERN.test(given)) throw new UsageError("--request-id must be 1-128 characters of [A-Za-z0-9._:-].");
    requestId = given ?? newRequestId();
    const settings = connectionSettings(inv.values, env);
    client = await TssClient.connect({ ...settings, timeoutMs: timeout });
    const started = Date.now();
    const onProgress = json
      ? undefined
      : (p: Progress) => process.stderr.write(`${p.stage} phase ${p.phase} of ${p.of} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    process.once("SIGINT", () => {
      process.stderr.write(`\ntss: Interrupted; the request may still complete, so run the same command with --request-id ${requestId} to get its result.\n`);
      process.exit(130);
    });
    const result = await run(client, requestId, onProgress);
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${show(result)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(2, "usage", e.message);
    // Refused by the SDK before anything was sent (no request id yet): a mistake in the arguments, such as the URL.
    if (e instanceof TssError && e.code === "bad_request" && e.requestId === null) return fail(2, "usage", asSentence(e.message) + ".");
    if (e instanceof TssError) return fail(1, e.code, describeFailure(e, requestId, timeout / 1000), e.node, e.requestId);
    return fail(1, "internal", `Unexpected failure: ${asSentence((e as Error).message ?? String(e))}.`);
  } finally {
    await client?.close();
  }
}

process.exitCode = await main(process.argv.slice(2), process.env);
