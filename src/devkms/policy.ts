/**
 * Key policies: the subset of the IAM policy language KMS key policies need for attested
 * enclaves. Evaluation follows IAM: an explicit Deny wins, otherwise some Allow must match,
 * otherwise the request is denied.
 *
 * Deliberate limits (each refused at PutKeyPolicy with MalformedPolicyDocumentException, never
 * silently ignored): NotAction / NotResource / NotPrincipal, ForAnyValue / ForAllValues, and
 * condition keys this service cannot supply. `Principal` is accepted but not evaluated: the
 * stand-in has one tenant, so every authenticated caller is "the principal".
 */
import { KmsError } from "./errors.ts";

export const ATTESTATION_KEY_PREFIX = "kms:recipientattestation:";
export const IMAGE_SHA384_KEY = `${ATTESTATION_KEY_PREFIX}imagesha384`;
export const pcrKey = (index: number) => `${ATTESTATION_KEY_PREFIX}pcr${index}`;
/**
 * `kms:EncryptionContext:<context-key>`: AWS matches the prefix case-insensitively (like every
 * condition key name) but the context key after it case-sensitively, which is what makes it the
 * way to require a case-sensitive context. Stored as the lower-cased prefix + the key as written.
 */
export const ENCRYPTION_CONTEXT_KEY_PREFIX = "kms:encryptioncontext:";
export const encryptionContextKey = (contextKey: string) =>
  `${ENCRYPTION_CONTEXT_KEY_PREFIX}${contextKey}`;
/** Longest context key a condition may name (KMS context keys are short; this bounds the policy). */
const MAX_CONTEXT_KEY_CHARS = 256;

const MAX_STATEMENTS = 64;
const MAX_VALUES = 64;
const SUPPORTED_KEY = /^kms:recipientattestation:(imagesha384|pcr([0-9]|[12][0-9]|3[01]))$/;

type Operator =
  | "stringequals"
  | "stringnotequals"
  | "stringequalsignorecase"
  | "stringnotequalsignorecase"
  | "stringlike"
  | "stringnotlike"
  | "null";
const OPERATORS: readonly Operator[] = [
  "stringequals",
  "stringnotequals",
  "stringequalsignorecase",
  "stringnotequalsignorecase",
  "stringlike",
  "stringnotlike",
  "null",
];

interface Condition {
  operator: Operator;
  ifExists: boolean;
  /** Lower-cased (condition key names are case-insensitive), except an encryption context key's suffix. */
  key: string;
  values: string[];
}

interface Statement {
  effect: "Allow" | "Deny";
  actions: string[];
  resources: string[];
  conditions: Condition[];
}

export interface KeyPolicy {
  statements: Statement[];
}

export interface RequestContext {
  /** e.g. "kms:Decrypt" */
  action: string;
  /** the key ARN */
  resource: string;
  /** Condition key (canonical form, as conditionKeyName makes it) -> value; absent keys are simply missing. */
  keys: ReadonlyMap<string, string>;
}

export type Decision = "allow" | "explicit-deny" | "implicit-deny";

const malformed = (m: string) => new KmsError("MalformedPolicyDocumentException", m);

function stringList(v: unknown, what: string): string[] {
  const list = typeof v === "string" ? [v] : v;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > MAX_VALUES ||
    !list.every((x) => typeof x === "string")
  ) {
    throw malformed(
      `${what} must be a string or a non-empty list of at most ${MAX_VALUES} strings`,
    );
  }
  return list as string[];
}

function parseConditions(v: unknown, sid: string): Condition[] {
  if (v === undefined) return [];
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw malformed(`${sid}: Condition must be an object`);
  const out: Condition[] = [];
  for (const [rawOp, block] of Object.entries(v)) {
    let op = rawOp.toLowerCase();
    if (op.startsWith("foranyvalue:") || op.startsWith("forallvalues:"))
      throw malformed(`${sid}: set operators (${rawOp}) are not supported`);
    const ifExists = op.endsWith("ifexists");
    if (ifExists) op = op.slice(0, -"ifexists".length);
    if (!(OPERATORS as readonly string[]).includes(op))
      throw malformed(`${sid}: condition operator ${rawOp} is not supported`);
    if (typeof block !== "object" || block === null || Array.isArray(block))
      throw malformed(`${sid}: ${rawOp} must map condition keys to values`);
    for (const [rawKey, values] of Object.entries(block)) {
      const key = conditionKeyName(rawKey, sid);
      const list =
        typeof values === "boolean"
          ? [String(values)]
          : stringList(values, `${sid}: ${rawOp} ${rawKey}`);
      if (op === "null" && !list.every((x) => x === "true" || x === "false"))
        throw malformed(`${sid}: Null takes "true" or "false"`);
      out.push({ operator: op as Operator, ifExists, key, values: list });
    }
  }
  return out;
}

/** The canonical form of a condition key, or MalformedPolicyDocumentException for one this service cannot supply. */
function conditionKeyName(rawKey: string, sid: string): string {
  const prefix = ENCRYPTION_CONTEXT_KEY_PREFIX.length;
  if (rawKey.slice(0, prefix).toLowerCase() === ENCRYPTION_CONTEXT_KEY_PREFIX) {
    const contextKey = rawKey.slice(prefix);
    if (contextKey.length === 0 || contextKey.length > MAX_CONTEXT_KEY_CHARS)
      throw malformed(
        `${sid}: ${rawKey} needs an encryption context key of 1..${MAX_CONTEXT_KEY_CHARS} characters`,
      );
    return encryptionContextKey(contextKey);
  }
  const key = rawKey.toLowerCase();
  if (!SUPPORTED_KEY.test(key)) {
    throw malformed(
      `${sid}: condition key ${rawKey} is not supported (use kms:RecipientAttestation:ImageSha384, kms:RecipientAttestation:PCR0..PCR31 or kms:EncryptionContext:<key>)`,
    );
  }
  return key;
}

function parseStatement(v: unknown, index: number): Statement {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw malformed(`Statement ${index} must be an object`);
  const s = v as Record<string, unknown>;
  const sid = typeof s.Sid === "string" ? `Statement '${s.Sid}'` : `Statement ${index}`;
  for (const unsupported of ["NotAction", "NotResource", "NotPrincipal"]) {
    if (unsupported in s) throw malformed(`${sid}: ${unsupported} is not supported`);
  }
  if (s.Effect !== "Allow" && s.Effect !== "Deny")
    throw malformed(`${sid}: Effect must be "Allow" or "Deny"`);
  const actions = stringList(s.Action, `${sid}: Action`);
  for (const a of actions)
    if (a !== "*" && !/^kms:[A-Za-z*?]+$/i.test(a))
      throw malformed(`${sid}: Action ${a} is not a kms action`);
  const resources = s.Resource === undefined ? ["*"] : stringList(s.Resource, `${sid}: Resource`);
  return { effect: s.Effect, actions, resources, conditions: parseConditions(s.Condition, sid) };
}

export function parsePolicy(text: string): KeyPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw malformed("The policy is not valid JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw malformed("The policy must be a JSON object");
  const raw = (doc as Record<string, unknown>).Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0 || list.length > MAX_STATEMENTS)
    throw malformed(`The policy needs 1..${MAX_STATEMENTS} statements`);
  return { statements: list.map(parseStatement) };
}

/**
 * IAM wildcards: `*` any run, `?` one character. The classic two-pointer match (back up to the
 * last `*`), O(pattern x value), so a pattern full of stars cannot blow up like a regex would.
 */
export function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  let pi = 0;
  let vi = 0;
  let star = -1;
  let resume = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === "?" || p[pi] === v[vi])) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === "*") {
      star = pi++;
      resume = vi;
    } else if (star >= 0) {
      pi = star + 1;
      vi = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === "*") pi++;
  return pi === p.length;
}

function conditionHolds(c: Condition, keys: ReadonlyMap<string, string>): boolean {
  const actual = keys.get(c.key);
  if (c.operator === "null") return c.values.some((v) => (v === "true") === (actual === undefined));
  if (actual === undefined) {
    // IAM: a missing key satisfies ...IfExists, and the negated operators; never the positive ones.
    return c.ifExists || c.operator.includes("not");
  }
  switch (c.operator) {
    case "stringequals":
      return c.values.some((v) => v === actual);
    case "stringnotequals":
      return c.values.every((v) => v !== actual);
    case "stringequalsignorecase":
      return c.values.some((v) => v.toLowerCase() === actual.toLowerCase());
    case "stringnotequalsignorecase":
      return c.values.every((v) => v.toLowerCase() !== actual.toLowerCase());
    case "stringlike":
      return c.values.some((v) => wildcard(v, actual, false));
    case "stringnotlike":
      return c.values.every((v) => !wildcard(v, actual, false));
  }
}

function statementApplies(s: Statement, ctx: RequestContext): boolean {
  return (
    s.actions.some((a) => wildcard(a, ctx.action, true)) &&
    s.resources.some((r) => wildcard(r, ctx.resource, false)) &&
    s.conditions.every((c) => conditionHolds(c, ctx.keys))
  );
}

export function evaluatePolicy(policy: KeyPolicy, ctx: RequestContext): Decision {
  let allowed = false;
  for (const s of policy.statements) {
    if (!statementApplies(s, ctx)) continue;
    if (s.effect === "Deny") return "explicit-deny";
    allowed = true;
  }
  return allowed ? "allow" : "implicit-deny";
}

/** What KMS installs when CreateKey has no Policy: the account (here: every caller) may do anything. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify(
    {
      Version: "2012-10-17",
      Id: "key-default-1",
      Statement: [
        {
          Sid: "Enable IAM User Permissions",
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${accountId}:root` },
          Action: "kms:*",
          Resource: "*",
        },
      ],
    },
    null,
    2,
  );
}
