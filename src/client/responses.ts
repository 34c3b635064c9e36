/**
 * Bounded, strict parsing of what arrives on the responses topic. Every
 * result is rebuilt field by field, so callers get exactly the documented
 * shape and nothing a node added; anything else is a `ShapeError`, which the
 * client reports as `bad_response`.
 */
import { ERROR_CODE, ID_PATTERN, NODE_ID_PATTERN, PATH_PATTERN } from "../shared/wire/patterns.ts";
import { isKeyType, KEY_TYPES_RULE, type KeyType } from "../shared/wire/key-type.ts";
import type {
  CreateWalletResult,
  ImportKeyResult,
  NodeInfo,
  NodesResult,
  Progress,
  RefreshResult,
  RepairShareResult,
  ReshareWalletResult,
  RetireWalletResult,
  SignResult,
  Stage,
  WalletInfo,
  WalletsResult,
} from "./types.ts";

/** Far above any real reply (a wallets list of thousands); the broker is told not to send more. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
const MAX_LIST = 10_000;
const MAX_PARTIES = 255;
const MAX_MESSAGE_CHARS = 500;

export class ShapeError extends Error {}

export type Envelope =
  | { kind: "progress"; progress: Progress | null; coordinator: string | null }
  | { kind: "ok"; result: unknown }
  | { kind: "error"; code: string; message: string; node: string | null; reason?: string };

type Obj = Record<string, unknown>;

function record(v: unknown, at: string): Obj {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new ShapeError(`${at} must be a JSON object`);
  return v as Obj;
}

function text(o: Obj, key: string, at: string, pattern: RegExp, what: string): string {
  const v = o[key];
  if (typeof v !== "string" || v.length > 1024 || !pattern.test(v))
    throw new ShapeError(`${at}.${key} must be ${what}`);
  return v;
}

function integer(o: Obj, key: string, at: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new ShapeError(`${at}.${key} must be a whole number from ${min} to ${max}`);
  return v;
}

function list<T>(
  o: Obj,
  key: string,
  at: string,
  max: number,
  item: (v: unknown, at: string) => T,
): T[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > max)
    throw new ShapeError(`${at}.${key} must be a list of at most ${max} items`);
  return v.map((x, i) => item(x, `${at}.${key}[${i}]`));
}

function hexOf(bytes: number[]): RegExp {
  return new RegExp(`^(${bytes.map((b) => `[0-9a-f]{${b * 2}}`).join("|")})$`);
}

/**
 * Required in every wallet and signature answer: a key type this SDK does not know (a curve
 * added after it) is refused, never read as secp256k1.
 */
function keyType(o: Obj, at: string): KeyType {
  const v = o.keyType;
  if (v === undefined)
    throw new ShapeError(`${at}.keyType is missing: it must be ${KEY_TYPES_RULE}`);
  if (!isKeyType(v))
    throw new ShapeError(
      `${at}.keyType ${typeof v === "string" ? JSON.stringify(v.slice(0, 64)) : typeof v} is not a key type this SDK knows (${KEY_TYPES_RULE}); a newer SDK may`,
    );
  return v;
}

const PUBLIC_KEY = hexOf([33, 65]);
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const STAGES: readonly Stage[] = ["dkg", "sign", "refresh", "prepare", "persist"];

function nodeId(v: unknown, at: string): string {
  if (typeof v !== "string" || !NODE_ID_PATTERN.test(v))
    throw new ShapeError(`${at} must be a node id`);
  return v;
}

/** Drops control characters (a node's message ends up on terminals) and caps the length. */
function cleanMessage(s: string): string {
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return flat.length > MAX_MESSAGE_CHARS ? `${flat.slice(0, MAX_MESSAGE_CHARS)}…` : flat;
}

/**
 * Progress that does not match the contract parses to `progress: null`
 * rather than failing the request: it is advisory, and only the final
 * answer decides the outcome.
 */
function parseProgress(v: unknown): Progress | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const p = v as Obj;
  const { stage, phase, of } = p;
  if (typeof stage !== "string" || !(STAGES as readonly string[]).includes(stage)) return null;
  if (typeof of !== "number" || !Number.isInteger(of) || of < 1 || of > 16) return null;
  if (typeof phase !== "number" || !Number.isInteger(phase) || phase < 1 || phase > of) return null;
  return { stage: stage as Stage, phase, of };
}

export function parseEnvelope(payload: Uint8Array): Envelope {
  if (payload.length > MAX_RESPONSE_BYTES)
    throw new ShapeError(`the reply is larger than ${MAX_RESPONSE_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new ShapeError("the reply is not UTF-8 JSON");
  }
  const o = record(v, "the reply");
  if ("progress" in o) {
    // Read apart from the rest of the progress: the SDK watches this node's presence while it waits.
    const c = (o.progress as Obj | null)?.coordinator;
    const coordinator = typeof c === "string" && NODE_ID_PATTERN.test(c) ? c : null;
    const progress = parseProgress(o.progress);
    return {
      kind: "progress",
      progress: progress && coordinator ? { ...progress, coordinator } : progress,
      coordinator,
    };
  }
  if (o.ok === true && "result" in o) return { kind: "ok", result: o.result };
  if (o.ok === false) {
    const e = record(o.error, "error");
    const code = text(e, "code", "error", ERROR_CODE, "a lowercase error code");
    if (typeof e.message !== "string") throw new ShapeError("error.message must be a string");
    const node = e.node === null || e.node === undefined ? null : nodeId(e.node, "error.node");
    // An approval refusal names its reason (approval.ts APPROVAL_REFUSALS) as a field.
    const reason =
      typeof e.reason === "string" && ERROR_CODE.test(e.reason) ? { reason: e.reason } : {};
    return {
      kind: "error",
      code,
      message: cleanMessage(e.message) || "(no message)",
      node,
      ...reason,
    };
  }
  throw new ShapeError(
    'the reply must have "progress", "ok": true with "result", or "ok": false with "error"',
  );
}

export function parseWalletInfo(v: unknown, at = "result"): WalletInfo {
  const o = record(v, at);
  return {
    walletId: text(o, "walletId", at, ID_PATTERN, "a wallet id"),
    keyType: keyType(o, at),
    publicKey: text(o, "publicKey", at, PUBLIC_KEY, "a 33- or 65-byte public key in lowercase hex"),
    address: text(o, "address", at, ADDRESS, "an Ethereum address"),
    threshold: integer(o, "threshold", at, 1, MAX_PARTIES),
    parties: integer(o, "parties", at, 1, MAX_PARTIES),
    generation: integer(o, "generation", at, 0, 2 ** 31 - 1),
    nodes: list(o, "nodes", at, MAX_PARTIES, nodeId),
    ...(o.policyHash === null || typeof o.policyHash === "string"
      ? {
          policyHash:
            o.policyHash === null
              ? null
              : text(o, "policyHash", at, hexOf([32]), "32 bytes of lowercase hex"),
        }
      : {}),
  };
}

export function parseCreateWallet(v: unknown): CreateWalletResult {
  const w = parseWalletInfo(v);
  if (w.generation !== 0) throw new ShapeError("result.generation of a new wallet must be 0");
  return { ...w, generation: 0 };
}

export function parseSign(v: unknown): SignResult {
  const o = record(v, "result");
  const s = record(o.signature, "result.signature");
  const at = "result.signature";
  return {
    walletId: text(o, "walletId", "result", ID_PATTERN, "a wallet id"),
    keyType: keyType(o, "result"),
    digest: text(o, "digest", "result", hexOf([32]), "32 bytes of lowercase hex"),
    path:
      o.path === null || o.path === undefined
        ? null
        : text(o, "path", "result", PATH_PATTERN, "a path like m/0/7 or null"),
    ...keyAndAddress(o),
    signature: {
      r: text(s, "r", at, hexOf([32]), "32 bytes of lowercase hex"),
      s: text(s, "s", at, hexOf([32]), "32 bytes of lowercase hex"),
      recoveryId: integer(s, "recoveryId", at, 0, 1),
      ethereum: text(s, "ethereum", at, hexOf([65]), "65 bytes of lowercase hex"),
      der: text(s, "der", at, /^([0-9a-f]{2}){8,72}$/, "DER of at most 72 bytes in lowercase hex"),
    },
    signers: list(o, "signers", "result", MAX_PARTIES, nodeId),
    coordinator: nodeId(o.coordinator, "result.coordinator"),
  };
}

/** The public key and its address, as every sign and refresh result carries them. */
function keyAndAddress(o: Obj): { publicKey: string; address: string } {
  return {
    publicKey: text(
      o,
      "publicKey",
      "result",
      PUBLIC_KEY,
      "a 33- or 65-byte public key in lowercase hex",
    ),
    address: text(o, "address", "result", ADDRESS, "an Ethereum address"),
  };
}

export function parseRefresh(v: unknown): RefreshResult {
  const o = record(v, "result");
  return {
    walletId: text(o, "walletId", "result", ID_PATTERN, "a wallet id"),
    keyType: keyType(o, "result"),
    generation: integer(o, "generation", "result", 0, 2 ** 31 - 1),
    ...keyAndAddress(o),
    ...(o.policyHash === undefined
      ? {}
      : { policyHash: text(o, "policyHash", "result", hexOf([32]), "32 bytes of lowercase hex") }),
  };
}

/** The node's answer; `targetPcr4` is the client's own (what it approved), added by repairShare. */
export function parseRepair(v: unknown): Omit<RepairShareResult, "targetPcr4"> {
  const o = record(v, "result");
  const w = parseWalletInfo(v);
  return {
    ...w,
    partyIndex: integer(o, "partyIndex", "result", 1, MAX_PARTIES),
    fromNode: o.fromNode === null ? null : nodeId(o.fromNode, "result.fromNode"),
    toNode: nodeId(o.toNode, "result.toNode"),
    helpers: list(o, "helpers", "result", MAX_PARTIES, nodeId),
  };
}

export function parseReshare(v: unknown): Omit<ReshareWalletResult, "committeePcr4"> {
  const o = record(v, "result");
  const w = parseWalletInfo(v);
  return {
    ...w,
    fromThreshold: integer(o, "fromThreshold", "result", 2, MAX_PARTIES),
    fromParties: integer(o, "fromParties", "result", 2, MAX_PARTIES),
    dealers: list(o, "dealers", "result", MAX_PARTIES, nodeId),
    added: list(o, "added", "result", MAX_PARTIES, nodeId),
    // Absent from a node from before leavers were reported: none listed.
    leaving:
      o.leaving === undefined
        ? []
        : list(o, "leaving", "result", MAX_PARTIES, (x, at) => {
            const l = record(x, at);
            if (typeof l.online !== "boolean" || typeof l.replaced !== "boolean")
              throw new ShapeError(`${at}.online and ${at}.replaced must be true or false`);
            return {
              partyIndex: integer(l, "partyIndex", at, 1, MAX_PARTIES),
              ...(l.nodeId === undefined ? {} : { nodeId: nodeId(l.nodeId, `${at}.nodeId`) }),
              online: l.online,
              replaced: l.replaced,
            };
          }),
  };
}

export function parseRetire(v: unknown): RetireWalletResult {
  const o = record(v, "result");
  return {
    walletId: text(o, "walletId", "result", ID_PATTERN, "a wallet id"),
    keyType: keyType(o, "result"),
    ...keyAndAddress(o),
    retired: list(o, "retired", "result", MAX_PARTIES, (x, at) => {
      const r = record(x, at);
      if (r.earlier !== undefined && r.earlier !== true)
        throw new ShapeError(`${at}.earlier must be true or absent`);
      return {
        nodeId: nodeId(r.nodeId, `${at}.nodeId`),
        partyIndex: integer(r, "partyIndex", at, 1, MAX_PARTIES),
        ...(r.earlier === true ? { earlier: true as const } : {}),
      };
    }),
    remaining: list(o, "remaining", "result", MAX_PARTIES, (x, at) =>
      integer({ x }, "x", at, 1, MAX_PARTIES),
    ),
    approverKeyIds: list(o, "approverKeyIds", "result", MAX_LIST, (x, at) =>
      text({ x }, "x", at, hexOf([32]), "32 bytes of lowercase hex"),
    ),
  };
}

export function parseWallets(v: unknown): WalletsResult {
  return { wallets: list(record(v, "result"), "wallets", "result", MAX_LIST, parseWalletInfo) };
}

function parseNode(v: unknown, at: string): NodeInfo {
  const o = record(v, at);
  const status = o.status;
  if (status !== "online" && status !== "degraded" && status !== "offline")
    throw new ShapeError(`${at}.status must be "online", "degraded" or "offline"`);
  return {
    nodeId: nodeId(o.nodeId, `${at}.nodeId`),
    status,
    since: integer(o, "since", at, 0, Number.MAX_SAFE_INTEGER),
    pcr0:
      o.pcr0 === null || o.pcr0 === undefined
        ? null
        : text(o, "pcr0", at, /^[0-9a-f]{1,256}$/, "lowercase hex or null"),
  };
}

export function parseNodes(v: unknown): NodesResult {
  return { nodes: list(record(v, "result"), "nodes", "result", MAX_LIST, parseNode) };
}

/** importTarget: the node a key is sealed to and its enclave's attestation document (hex, at most 16 KiB). */
export function parseImportTarget(v: unknown): { nodeId: string; attestation: string } {
  const o = record(v, "result");
  const doc = o.attestation;
  // Longer than text() allows: checked here, length first.
  if (typeof doc !== "string" || doc.length > 2 * 16384 || !/^([0-9a-f]{2})+$/.test(doc))
    throw new ShapeError(
      "result.attestation must be an attestation document of at most 16 KiB in lowercase hex",
    );
  return { nodeId: nodeId(o.nodeId, "result.nodeId"), attestation: doc };
}

export function parseImport(v: unknown): ImportKeyResult {
  const o = record(v, "result");
  const w = parseWalletInfo(v);
  if (o.imported !== true) throw new ShapeError("result.imported must be true");
  if (w.generation < 1)
    throw new ShapeError("result.generation of an imported wallet must be at least 1 (refreshed)");
  return { ...w, imported: true, dealerNode: nodeId(o.dealerNode, "result.dealerNode") };
}
