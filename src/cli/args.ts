/**
 * The tss command line: which commands exist, which options each takes, and
 * the checks of every argument, all before anything connects. A mistake is a
 * UsageError (exit status 2) whose message is one sentence.
 *
 * Parsed with node:util parseArgs: the standard parser, no dependency; its
 * tokens (non-strict mode) let --help win over mistakes and keep our own
 * one-sentence messages.
 */
import { parseArgs } from "node:util";
import { DEFAULT_TIMEOUT_MS } from "../client/index.ts";
import { ID_PATTERN, ID_RULE } from "../shared/wire/patterns.ts";
import { KEY_TYPES_RULE, requestedKeyType, type KeyType } from "../shared/wire/key-type.ts";

/** A mistake in the command line or configuration: exit status 2. */
export class UsageError extends Error {}

export type Command =
  | "wallet create"
  | "wallet show"
  | "wallet list"
  | "wallet refresh"
  | "wallet policy"
  | "wallet retire"
  | "wallet import"
  | "wallet repair"
  | "wallet reshare"
  | "sign"
  | "nodes"
  | "audit"
  | "key new"
  | "key show"
  | "policy";

interface CommandSpec {
  /** Names of the positional arguments, in order. */
  args: string[];
  /** Options that take a value, besides the global ones. */
  options: string[];
  /** Runs on this machine without the broker, so the global (connection) options do not apply. */
  local?: true;
}

export const COMMANDS: Record<Command, CommandSpec> = {
  "wallet create": {
    args: [],
    options: ["threshold", "parties", "approver", "quorum", "admin-key", "wallet-id", "key-type"],
  },
  "wallet show": { args: ["ID"], options: [] },
  "wallet list": { args: [], options: [] },
  "wallet refresh": { args: ["ID"], options: ["key"] },
  "wallet policy": { args: [], options: ["wallet", "approver", "quorum", "key"] },
  "wallet retire": { args: [], options: ["wallet", "key"] },
  "wallet import": {
    args: [],
    options: [
      "secret-key-file",
      "threshold",
      "parties",
      "approver",
      "quorum",
      "admin-key",
      "key",
      "wallet-id",
      "node",
      "key-type",
    ],
  },
  "wallet repair": { args: [], options: ["wallet", "party", "to", "target-pcr4", "key"] },
  "wallet reshare": {
    args: [],
    options: ["wallet", "threshold", "nodes", "target-pcr4", "key"],
  },
  sign: { args: [], options: ["wallet", "digest", "path", "key"] },
  nodes: { args: [], options: [] },
  audit: { args: [], options: ["db", "wallet", "since"], local: true },
  "key new": { args: [], options: ["algorithm", "out"], local: true },
  "key show": { args: ["FILE"], options: [], local: true },
  policy: {
    args: [],
    options: ["pcr0", "node-pcr", "admin-role", "enclave-role"],
    local: true,
  },
};

/** "create, show, …, repair" from COMMANDS, so a usage message never misses a subcommand. */
const WALLET_SUBCOMMANDS = ((names: string[]) =>
  `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`)(
  Object.keys(COMMANDS)
    .filter((c) => c.startsWith("wallet "))
    .map((c) => c.slice("wallet ".length)),
);

export const GLOBAL_OPTIONS = [
  "url",
  "username",
  "password",
  "ca",
  "request-id",
  "timeout",
  // Wallet trust (trust.ts).
  "aws-root",
  "dev-root",
  "image",
];
const VALUE_OPTIONS = new Set([
  ...GLOBAL_OPTIONS,
  ...Object.values(COMMANDS).flatMap((c) => c.options),
]);
const FLAGS = new Set([
  "help",
  "json",
  "allow-development",
  "any-node",
  "allow-leavers-quorum",
  "allow-offline-leavers",
]);
/** Options that may be given more than once (approver keys and key files); their values are in `lists`. */
export const REPEATABLE = new Set([
  "key",
  "approver",
  "admin-key",
  "image",
  "pcr0",
  "node-pcr",
  // wallet reshare: one NODE=HEX per member; wallet repair takes exactly one HEX.
  "target-pcr4",
]);

export interface Invocation {
  /** null: no command (main help), "wallet" / "key": that group's help. */
  command: Command | "wallet" | "key" | null;
  args: string[];
  values: Map<string, string>;
  /** Every value of each REPEATABLE option, in the order given. */
  lists: Map<string, string[]>;
  json: boolean;
  help: boolean;
  /** --allow-development: trust a development attestation root (trust.ts). */
  allowDevelopment?: boolean;
  /** --any-node (tss policy only): a key policy bound to no node's PCR4 (key-policy.ts). */
  anyNode?: boolean;
  /** --allow-leavers-quorum / --allow-offline-leavers (wallet reshare only): client.ts ReshareWalletOptions. */
  allowLeaversQuorum?: boolean;
  allowOfflineLeavers?: boolean;
}

export function parseArgv(argv: string[]): Invocation {
  const { tokens } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries([...VALUE_OPTIONS].map((name) => [name, { type: "string" as const }])),
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const words: string[] = [];
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  let json = false;
  let help = false;
  let allowDevelopment = false;
  let anyNode = false;
  let allowLeaversQuorum = false;
  let allowOfflineLeavers = false;
  // Problems wait until we know whether --help was asked for, which wins.
  const problems: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") words.push(t.value);
    if (t.kind !== "option") continue; // "--" ends the options; what follows is positional
    if (FLAGS.has(t.name)) {
      if (t.value !== undefined) problems.push(`Option ${t.rawName} takes no value.`);
      else if (t.name === "help") help = true;
      else if (t.name === "allow-development") allowDevelopment = true;
      else if (t.name === "any-node") anyNode = true;
      else if (t.name === "allow-leavers-quorum") allowLeaversQuorum = true;
      else if (t.name === "allow-offline-leavers") allowOfflineLeavers = true;
      else json = true;
    } else if (!VALUE_OPTIONS.has(t.name)) {
      problems.push(`Unknown option ${t.rawName}; run tss --help for the options.`);
    } else if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--"))) {
      problems.push(`Option --${t.name} needs a value.`);
    } else if (REPEATABLE.has(t.name)) {
      lists.set(t.name, [...(lists.get(t.name) ?? []), t.value]);
    } else if (values.has(t.name)) {
      problems.push(`Option --${t.name} is given twice.`);
    } else {
      values.set(t.name, t.value);
    }
  }
  if (words[0] === "help") {
    words.shift();
    help = true;
  }
  const { command, args } = resolveCommand(words, help);
  if (help) return { command, args, values, lists, json, help };
  if (problems.length > 0) throw new UsageError(problems[0]!);
  if (command === null) throw new UsageError("No command given; run tss --help for the commands.");
  if (command === "wallet")
    throw new UsageError(`tss wallet needs a subcommand: ${WALLET_SUBCOMMANDS}.`);
  if (command === "key") throw new UsageError("tss key needs a subcommand: new or show.");
  const spec = COMMANDS[command];
  if (args.length < spec.args.length)
    throw new UsageError(
      command === "key show"
        ? "tss key show needs a key file, as in tss key show approver.key."
        : `tss ${command} needs a wallet id, as in tss ${command} w_0123abcd.`,
    );
  if (args.length > spec.args.length)
    throw new UsageError(
      `Unexpected argument ${JSON.stringify(args[spec.args.length])} for tss ${command}.`,
    );
  for (const name of [...values.keys(), ...lists.keys()]) {
    if ((spec.local || !GLOBAL_OPTIONS.includes(name)) && !spec.options.includes(name))
      throw new UsageError(`Option --${name} does not apply to tss ${command}.`);
  }
  if (anyNode && command !== "policy")
    throw new UsageError(`Option --any-node does not apply to tss ${command}.`);
  for (const [flag, on] of [
    ["allow-leavers-quorum", allowLeaversQuorum],
    ["allow-offline-leavers", allowOfflineLeavers],
  ] as const)
    if (on && command !== "wallet reshare")
      throw new UsageError(`Option --${flag} does not apply to tss ${command}.`);
  return {
    command,
    args,
    values,
    lists,
    json,
    help,
    ...(allowDevelopment ? { allowDevelopment } : {}),
    ...(allowLeaversQuorum ? { allowLeaversQuorum } : {}),
    ...(allowOfflineLeavers ? { allowOfflineLeavers } : {}),
    ...(anyNode ? { anyNode } : {}),
  };
}

function resolveCommand(
  words: string[],
  lenient: boolean,
): { command: Invocation["command"]; args: string[] } {
  const [first, second] = words;
  if (first === undefined) return { command: null, args: [] };
  if (first === "sign" || first === "nodes" || first === "audit" || first === "policy")
    return { command: first, args: words.slice(1) };
  if (first === "key") {
    if (second === "new" || second === "show")
      return { command: `key ${second}`, args: words.slice(2) };
    if (second === undefined || lenient) return { command: "key", args: [] };
    throw new UsageError(
      `Unknown subcommand ${JSON.stringify(second)}; tss key takes new or show.`,
    );
  }
  if (first === "wallet") {
    if (second === undefined) return { command: "wallet", args: [] };
    const c = `wallet ${second}`;
    if (c in COMMANDS) return { command: c as Command, args: words.slice(2) };
    if (lenient) return { command: "wallet", args: [] };
    throw new UsageError(
      `Unknown subcommand ${JSON.stringify(second)}; tss wallet takes ${WALLET_SUBCOMMANDS}.`,
    );
  }
  if (lenient) return { command: null, args: [] };
  throw new UsageError(
    `Unknown command ${JSON.stringify(first)}; run tss --help for the commands.`,
  );
}

export function wholeNumber(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,3}$/.test(v)) throw new UsageError(`--${name} must be a whole number, such as 3.`);
  return Number(v);
}

/** --key-type: undefined when not given (the SDK's default); a key type not supported is a usage error. */
export function keyTypeArg(v: string | undefined): KeyType | undefined {
  if (v === undefined) return undefined;
  const k = requestedKeyType(v);
  if (k instanceof Error)
    throw new UsageError(
      `--key-type ${JSON.stringify(v.slice(0, 40))} is not supported: it must be ${KEY_TYPES_RULE}.`,
    );
  return k;
}

export function walletIdArg(v: string | undefined, what: string): string {
  if (v === undefined) throw new UsageError(`tss sign needs ${what}, as in --wallet w_0123abcd.`);
  if (!ID_PATTERN.test(v))
    throw new UsageError(`The wallet id ${JSON.stringify(v.slice(0, 40))} is not ${ID_RULE}.`);
  return v;
}

/** The --request-id, checked; undefined when none was given. */
export function requestIdArg(v: string | undefined): string | undefined {
  if (v !== undefined && !ID_PATTERN.test(v))
    throw new UsageError(`--request-id must be ${ID_RULE}.`);
  return v;
}

export function timeoutMs(v: string | undefined): number {
  if (v === undefined) return DEFAULT_TIMEOUT_MS;
  const s = /^\d{1,6}(\.\d{1,3})?$/.test(v) ? Number(v) : NaN;
  if (!(s > 0 && s <= 86_400))
    throw new UsageError("--timeout must be a number of seconds, more than 0 and at most 86400.");
  return s * 1000;
}

const TIME_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * --since: an ISO 8601 date (midnight UTC), a date-time with Z or an offset (a time without a
 * zone would depend on the machine's), or a duration before `now` such as 90m, 12h or 7d.
 * Returns Unix milliseconds, or undefined when no --since was given.
 */
export function sinceArg(v: string | undefined, now: number = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const ago = /^(\d{1,6})([smhd])$/.exec(v);
  if (ago) return Math.max(0, now - Number(ago[1]) * TIME_UNITS_MS[ago[2]!]!);
  const iso =
    /^\d{4}-\d{2}-\d{2}$/.test(v) ||
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(v);
  const ms = iso ? Date.parse(v) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new UsageError(
      "--since must be a date (2026-12-01), a date-time with a zone (2026-12-01T08:00Z), or a duration ago (90m, 12h, 7d).",
    );
  return ms;
}
