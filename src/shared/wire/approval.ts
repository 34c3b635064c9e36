/**
 * Approvals, format version 1: the canonical encodings of an approval policy
 * (who may approve a wallet's operations, and how many must), of an
 * approvable request (what exactly they approve) and of one approval (a
 * signature by one approver key over the request's encoding). The client
 * builds and signs these (src/client/signers.ts); every participating enclave
 * checks them against its sealed policy before phase 1
 * (src/enclave/approvals.ts). Pure encode/parse: no signature is checked here.
 *
 * Integers are big-endian; `lp(x)` is a u32 length, then x. Every field is
 * either fixed-width or length-prefixed, so two different values never share
 * an encoding, and each starts with its own domain label, so bytes signed or
 * hashed for one purpose are never valid for another (nor for the peer
 * envelope's "tss-p2p-v1" or the sealed share's label).
 *
 * Approver key id (KEY_ID_BYTES): SHA-256 of
 *
 *   lp("tss-approver-key-v1")   domain label
 *   u8  algorithm               1 ed25519, 2 p256
 *   lp(public key)              ed25519: 32 bytes (RFC 8032); p256: 33-byte compressed SEC1
 *
 * Policy (its hash, POLICY_HASH_BYTES = SHA-256 of this encoding, is what an
 * enclave seals beside a share and what the wallet statement carries):
 *
 *   lp("tss-approval-policy-v1")   domain label
 *   u8  quorum m                   1 <= m <= k
 *   u8  approver count k           1 <= k <= MAX_APPROVERS
 *   k x { u8 algorithm, lp(public key) }
 *                                  in strictly ascending byte order of these
 *                                  entries, so one set of keys has one
 *                                  encoding (and one hash) and no key twice
 *
 * Approvable request (the bytes every approver signs):
 *
 *   lp("tss-approval-v1")   domain label
 *   u8  operation           1 sign, 2 refresh, 3 policy_change, 4 dkg, 5 retire (the
 *                           wallet's shares deleted on every holder: src/enclave/lifecycle-retire.ts),
 *                           6 import (an existing key brought in as a new wallet:
 *                           src/enclave/lifecycle-import.ts), 7 repair (party K of the
 *                           wallet rebuilt on a new node: src/shared/wire/repair.ts), 8 reshare
 *                           (the wallet's key reshared to a new committee: src/shared/wire/reshare.ts)
 *   lp(wallet id)           ASCII, patterns.ts ID_PATTERN (1..MAX_ID_LEN bytes)
 *   lp(client request id)   ASCII, patterns.ts ID_PATTERN
 *   u64 issued at           unix seconds, at most MAX_UNIX_SECONDS
 *   u64 expires at          unix seconds, issued at < expires at <= issued at + MAX_VALIDITY_SECONDS
 *   lp(digest)              sign: DIGEST_BYTES; import: SHA-256 of the key import
 *                           envelope (key-import.ts), so the approval is of that one
 *                           sealed key; repair: repair.ts repairTargetDigest (party K
 *                           and the target node's PCR4); reshare: reshare.ts
 *                           reshareCommitteeDigest (t_new and every new member's node id
 *                           and PCR4); others: empty
 *   lp(derivation path)     sign: ASCII non-hardened path, "m" for the wallet key itself,
 *                           indices in decimal without leading zeros ("m/7", never
 *                           "m/007": one derivation, one encoding); at most
 *                           MAX_PATH_BYTES; others: empty
 *   lp(policy hash)         policy_change: the NEW policy's hash; dkg, import: the policy the
 *                           new wallet is created with; others: empty
 *   lp(current policy hash) policy_change: the hash of the policy being replaced, so an
 *                           approval of P1 -> P2 cannot be replayed to undo a later
 *                           P2 -> P3 while it is still valid; others: empty
 *   u8  threshold           dkg, import: t, 2 <= t <= n; others: 0
 *   u8  parties             dkg, import: n, t <= n <= MAX_PARTIES; others: 0
 *
 * Every operation has the same fields in the same places; a field an
 * operation does not use must be empty (or 0), so a request cannot carry a
 * digest that nobody checks.
 *
 * Approval (APPROVAL_BYTES, fixed):
 *
 *   0   1  algorithm (1 ed25519, 2 p256)
 *   1  32  approver key id
 *  33  64  signature over the request encoding:
 *          ed25519: RFC 8032 Ed25519 of the encoding itself (strict: no ZIP-215 leniency);
 *          p256:    ECDSA P-256 over SHA-256(encoding), compact r || s (32 + 32 bytes),
 *                   s <= n/2 (low-S)
 *
 * P-256 signatures are compact low-S rather than DER because then each
 * signature has exactly one encoding, of one length: DER's variable lengths
 * and, in any form, the high-S twin (r, n - s) give one signature several
 * encodings that verify, so a relay could present a different-looking
 * approval of the same key. Cloud KMS (ECDSA_SHA_256) and WebAuthn authenticators
 * return DER, which the SDK converts and normalises before sending
 * (signers.ts p256SignatureFromDer).
 *
 * WebAuthn assertions are not yet supported: an authenticator signs
 * authenticatorData || SHA-256(clientDataJSON), never our encoding, so a
 * passkey approval would have to carry both, with the challenge in
 * clientDataJSON = base64url(SHA-256(request encoding)), and the verifier
 * would check type, challenge, rpIdHash and the user-presence flag. Until
 * then a P-256 approver key must sign the request's SHA-256 directly (a KMS
 * key, an HSM, a software key).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CodedError } from "./errors.ts";
import { DIGEST_BYTES, isId, isNonHardenedPath, MAX_ID_LEN, MAX_PATH_DEPTH } from "./patterns.ts";
import { MAX_PARTIES } from "./protocol-message.ts";

const utf8 = new TextEncoder();

export const APPROVAL_REQUEST_LABEL = utf8.encode("tss-approval-v1");
export const APPROVAL_POLICY_LABEL = utf8.encode("tss-approval-policy-v1");
export const APPROVER_KEY_ID_LABEL = utf8.encode("tss-approver-key-v1");

export const OPERATIONS = [
  "sign",
  "refresh",
  "policy_change",
  "dkg",
  "retire",
  "import",
  "repair",
  "reshare",
] as const;
export type ApprovalOperation = (typeof OPERATIONS)[number];
/** The operation's byte is its position here plus one. */
const operationCode = (o: ApprovalOperation): number => OPERATIONS.indexOf(o) + 1;

export const ALGORITHMS = ["ed25519", "p256"] as const;
export type ApprovalAlgorithm = (typeof ALGORITHMS)[number];
const algorithmCode = (a: ApprovalAlgorithm): number => ALGORITHMS.indexOf(a) + 1;
const algorithmOf = (code: number): ApprovalAlgorithm | undefined => ALGORITHMS[code - 1];
export const isApprovalAlgorithm = (a: unknown): a is ApprovalAlgorithm =>
  typeof a === "string" && (ALGORITHMS as readonly string[]).includes(a);

/** Public-key length per algorithm: Ed25519 32 bytes, P-256 compressed SEC1 33 bytes. */
export const PUBLIC_KEY_BYTES: Readonly<Record<ApprovalAlgorithm, number>> = {
  ed25519: 32,
  p256: 33,
};
export const APPROVAL_SIGNATURE_BYTES = 64;
export const KEY_ID_BYTES = 32;
export const POLICY_HASH_BYTES = 32;
export const APPROVAL_BYTES = 1 + KEY_ID_BYTES + APPROVAL_SIGNATURE_BYTES;

/** Approver keys per policy; a quorum needs at most this many approvals. */
export const MAX_APPROVERS = 16;
/** Approvals one request may carry: one per approver at most. */
export const MAX_APPROVALS = MAX_APPROVERS;
/** Longest validity an approval may state (expires at - issued at): long enough for m people to approve, short enough that a leaked one soon dies. */
export const MAX_VALIDITY_SECONDS = 60 * 60;
/** How far an approval's issue time may be ahead of the verifier's clock. */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;
/** Times are u64 on the wire but stay exact JavaScript integers. */
export const MAX_UNIX_SECONDS = Number.MAX_SAFE_INTEGER;
/** "m" and MAX_PATH_DEPTH indices of up to 10 digits, each with its "/". */
export const MAX_PATH_BYTES = 1 + MAX_PATH_DEPTH * 11;
/** Policy: label, quorum, count, and MAX_APPROVERS of the longest key entry. */
export const MAX_POLICY_BYTES =
  4 + APPROVAL_POLICY_LABEL.length + 2 + MAX_APPROVERS * (1 + 4 + PUBLIC_KEY_BYTES.p256);
/** Request: label, operation, two ids, two times, digest, path, two policy hashes, t, n. */
export const MAX_REQUEST_BYTES =
  4 +
  APPROVAL_REQUEST_LABEL.length +
  1 +
  2 * (4 + MAX_ID_LEN) +
  16 +
  4 +
  DIGEST_BYTES +
  4 +
  MAX_PATH_BYTES +
  2 * (4 + POLICY_HASH_BYTES) +
  2;

export interface ApproverKey {
  algorithm: ApprovalAlgorithm;
  /** Ed25519: 32 bytes; P-256: 33-byte compressed SEC1. */
  publicKey: Uint8Array;
}

export interface ApprovalPolicy {
  /** m: how many distinct approvers must sign. */
  quorum: number;
  /** In canonical order after parsePolicy; any order for encodePolicy. */
  approvers: readonly ApproverKey[];
}

export interface ApprovableRequest {
  operation: ApprovalOperation;
  walletId: string;
  requestId: string;
  /** Unix seconds. */
  issuedAt: number;
  /** Unix seconds; the approval is refused from this second on. */
  expiresAt: number;
  /** sign: the 32-byte digest; import: SHA-256 of the key import envelope; repair: repair.ts repairTargetDigest; reshare: reshare.ts reshareCommitteeDigest. */
  digest?: Uint8Array;
  /** sign only: the derivation path; absent means "m" (the wallet key). */
  path?: string;
  /** policy_change: the new policy's hash; dkg, import: the new wallet's policy hash. */
  policyHash?: Uint8Array;
  /** policy_change only: the hash of the policy it replaces. */
  currentPolicyHash?: Uint8Array;
  /** dkg, import. */
  threshold?: number;
  /** dkg, import. */
  parties?: number;
}

export interface Approval {
  algorithm: ApprovalAlgorithm;
  keyId: Uint8Array;
  signature: Uint8Array;
}

// ------------------------------------------------------------------ refusals

/**
 * Why an approval set was refused. `code` is the contract code a client sees
 * (malformed: bad_request; expired: approval_expired; replayed:
 * approval_replayed; the rest: unauthorised); `reason` says which check failed.
 * `replayed` is the enclave's own memory (src/enclave/approval-replay.ts):
 * the same approved request already started a session in this enclave.
 */
export const APPROVAL_REFUSALS = [
  "malformed",
  "missing",
  "below_quorum",
  "expired",
  "not_yet_valid",
  "duplicate_signer",
  "unknown_signer",
  "bad_signature",
  "wrong_operation",
  "wrong_wallet",
  "wrong_request_id",
  "wrong_digest",
  "wrong_path",
  "wrong_policy",
  "wrong_parameters",
  "policy_mismatch",
  "replayed",
] as const;
export type ApprovalRefusal = (typeof APPROVAL_REFUSALS)[number];

export type ApprovalErrorCode =
  | "bad_request"
  | "approval_expired"
  | "approval_replayed"
  | "unauthorised";
const codeOf = (r: ApprovalRefusal): ApprovalErrorCode =>
  r === "malformed"
    ? "bad_request"
    : r === "expired"
      ? "approval_expired"
      : r === "replayed"
        ? "approval_replayed"
        : "unauthorised";

export class ApprovalError extends CodedError {
  override name = "ApprovalError";
  declare readonly code: ApprovalErrorCode;
  constructor(
    readonly reason: ApprovalRefusal,
    message: string,
  ) {
    super(codeOf(reason), message);
  }
}

const malformed = (msg: string) => new ApprovalError("malformed", msg);

// ------------------------------------------------------------------ writing

/** Appends u8, u32, u64 and length-prefixed fields into one buffer. */
class Writer {
  private readonly parts: Uint8Array[] = [];
  u8(n: number): this {
    this.parts.push(Uint8Array.of(n));
    return this;
  }
  u64(n: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    this.parts.push(b);
    return this;
  }
  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    return this;
  }
  lp(bytes: Uint8Array): this {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, bytes.length);
    this.parts.push(len, bytes);
    return this;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Reads what Writer wrote, refusing reads past the end or past a field's bound. */
class Reader {
  private at = 0;
  private readonly view: DataView;
  /** A reader of at most `max` bytes, past the domain label it must start with. */
  static labelled(b: unknown, what: string, max: number, label: Uint8Array): Reader {
    if (!(b instanceof Uint8Array) || b.length > max)
      throw malformed(`a ${what} must be a Uint8Array of at most ${max} bytes`);
    const r = new Reader(b, what);
    r.label(label);
    return r;
  }
  private constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private need(n: number, field: string): void {
    if (this.b.length - this.at < n) throw malformed(`${this.what} is truncated in ${field}`);
  }
  u8(field: string): number {
    this.need(1, field);
    return this.b[this.at++]!;
  }
  u64(field: string): number {
    this.need(8, field);
    const n = this.view.getBigUint64(this.at);
    this.at += 8;
    if (n > BigInt(MAX_UNIX_SECONDS)) throw malformed(`${this.what} ${field} is out of range`);
    return Number(n);
  }
  lp(field: string, max: number): Uint8Array {
    this.need(4, `${field} length`);
    const n = this.view.getUint32(this.at);
    this.at += 4;
    if (n > max) throw malformed(`${this.what} ${field} of ${n} bytes is longer than ${max}`);
    this.need(n, field);
    this.at += n;
    return this.b.subarray(this.at - n, this.at);
  }
  label(expected: Uint8Array): void {
    if (!equalBytes(this.lp("label", expected.length), expected))
      throw malformed(`${this.what} does not start with its domain label`);
  }
  end(): void {
    if (this.at !== this.b.length)
      throw malformed(`${this.b.length - this.at} trailing bytes after the ${this.what}`);
  }
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const ascii = (b: Uint8Array): string => String.fromCharCode(...b);

function bytesOf(value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length)
    throw malformed(`${what} must be ${length} bytes`);
  return value;
}

function intIn(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw malformed(`${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  return value;
}

// ------------------------------------------------------------------ keys and policies

/** Checks an approver key's algorithm and length (and the P-256 compressed prefix); the point itself is checked where curves are. */
export function checkApproverKey(key: ApproverKey): ApproverKey {
  if (typeof key !== "object" || key === null) throw malformed("an approver key must be an object");
  if (!isApprovalAlgorithm(key.algorithm))
    throw malformed(`approver key algorithm must be one of ${ALGORITHMS.join(", ")}`);
  const pk = bytesOf(key.publicKey, PUBLIC_KEY_BYTES[key.algorithm], `${key.algorithm} public key`);
  if (key.algorithm === "p256" && pk[0] !== 0x02 && pk[0] !== 0x03)
    throw malformed("a p256 public key must be compressed SEC1 (02 or 03, then 32 bytes)");
  return { algorithm: key.algorithm, publicKey: pk };
}

const keyEntry = (k: ApproverKey): Uint8Array =>
  new Writer().u8(algorithmCode(k.algorithm)).lp(k.publicKey).bytes();

/** SHA-256 of the key-id encoding (layout above). */
export function approverKeyId(key: ApproverKey): Uint8Array {
  const k = checkApproverKey(key);
  return sha256(
    new Writer().lp(APPROVER_KEY_ID_LABEL).u8(algorithmCode(k.algorithm)).lp(k.publicKey).bytes(),
  );
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The canonical policy encoding: approvers sorted, duplicates refused. */
export function encodePolicy(policy: ApprovalPolicy): Uint8Array {
  if (typeof policy !== "object" || policy === null || !Array.isArray(policy.approvers))
    throw malformed("a policy must be {quorum, approvers}");
  const k = intIn(policy.approvers.length, 1, MAX_APPROVERS, "the number of approver keys");
  const m = intIn(policy.quorum, 1, k, "the quorum");
  const entries = policy.approvers.map((a) => keyEntry(checkApproverKey(a))).sort(compareBytes);
  if (entries.some((e, i) => i > 0 && compareBytes(entries[i - 1]!, e) === 0))
    throw malformed("a policy lists the same approver key twice");
  const w = new Writer().lp(APPROVAL_POLICY_LABEL).u8(m).u8(k);
  for (const e of entries) w.raw(e);
  return w.bytes();
}

/** Reads a policy encoding; refuses anything but the canonical encoding of a valid policy. */
export function parsePolicy(encoding: Uint8Array): ApprovalPolicy {
  const r = Reader.labelled(encoding, "policy", MAX_POLICY_BYTES, APPROVAL_POLICY_LABEL);
  const quorum = r.u8("quorum");
  const count = r.u8("approver count");
  if (count > MAX_APPROVERS) throw malformed(`a policy has at most ${MAX_APPROVERS} approvers`);
  const approvers: ApproverKey[] = [];
  for (let i = 0; i < count; i++) {
    const code = r.u8("approver algorithm");
    const algorithm = algorithmOf(code);
    if (algorithm === undefined) throw malformed(`unknown approver algorithm ${code}`);
    const publicKey = r.lp("approver public key", PUBLIC_KEY_BYTES[algorithm]).slice();
    approvers.push({ algorithm, publicKey });
  }
  r.end();
  const policy = { quorum, approvers };
  // Re-encoding catches everything else: quorum range, key shapes, order, duplicates.
  if (!equalBytes(encodePolicy(policy), encoding))
    throw malformed("policy approvers are not in canonical (ascending, distinct) order");
  return policy;
}

/** SHA-256 of the canonical policy encoding (domain-separated by its label). */
export function policyHash(policy: ApprovalPolicy | Uint8Array): Uint8Array {
  if (!(policy instanceof Uint8Array)) return sha256(encodePolicy(policy));
  parsePolicy(policy); // only a canonical encoding has a hash
  return sha256(policy);
}

// ------------------------------------------------------------------ requests

const idField = (v: unknown, what: string): Uint8Array => {
  if (!isId(v)) throw malformed(`${what} must be 1-${MAX_ID_LEN} characters of [A-Za-z0-9._:-]`);
  return utf8.encode(v);
};

const EMPTY: Uint8Array = new Uint8Array();

/** The canonical request encoding (layout above); throws ApprovalError(malformed) on a request that breaks it. */
export function encodeRequest(req: ApprovableRequest): Uint8Array {
  if (typeof req !== "object" || req === null) throw malformed("a request must be an object");
  if (!(OPERATIONS as readonly string[]).includes(req.operation))
    throw malformed(`operation must be one of ${OPERATIONS.join(", ")}`);
  const op = req.operation;
  const walletId = idField(req.walletId, "walletId");
  const requestId = idField(req.requestId, "requestId");
  const issuedAt = intIn(req.issuedAt, 0, MAX_UNIX_SECONDS, "issuedAt");
  const expiresAt = intIn(
    req.expiresAt,
    issuedAt + 1,
    Math.min(issuedAt + MAX_VALIDITY_SECONDS, MAX_UNIX_SECONDS),
    `expiresAt (after issuedAt, at most ${MAX_VALIDITY_SECONDS} s later)`,
  );
  const unused = (v: unknown, name: string) => {
    if (v !== undefined) throw malformed(`${name} does not apply to ${op}`);
  };
  let digest = EMPTY;
  let path = EMPTY;
  if (op === "import" || op === "repair" || op === "reshare") {
    digest = bytesOf(req.digest, DIGEST_BYTES, "digest");
    unused(req.path, "path");
  } else if (op === "sign") {
    digest = bytesOf(req.digest, DIGEST_BYTES, "digest");
    const p = req.path ?? "m";
    if (!isNonHardenedPath(p) || /\/0\d/.test(p))
      throw malformed("path must be a non-hardened path such as m/0/7, without leading zeros");
    path = utf8.encode(p);
  } else {
    unused(req.digest, "digest");
    unused(req.path, "path");
  }
  let hash = EMPTY;
  if (op === "policy_change" || op === "dkg" || op === "import")
    hash = bytesOf(req.policyHash, POLICY_HASH_BYTES, "policyHash");
  else unused(req.policyHash, "policyHash");
  let current = EMPTY;
  if (op === "policy_change")
    current = bytesOf(req.currentPolicyHash, POLICY_HASH_BYTES, "currentPolicyHash");
  else unused(req.currentPolicyHash, "currentPolicyHash");
  let threshold = 0;
  let parties = 0;
  if (op === "dkg" || op === "import") {
    parties = intIn(req.parties, 2, MAX_PARTIES, "parties");
    threshold = intIn(req.threshold, 2, parties, "threshold");
  } else {
    unused(req.threshold, "threshold");
    unused(req.parties, "parties");
  }
  return new Writer()
    .lp(APPROVAL_REQUEST_LABEL)
    .u8(operationCode(op))
    .lp(walletId)
    .lp(requestId)
    .u64(issuedAt)
    .u64(expiresAt)
    .lp(digest)
    .lp(path)
    .lp(hash)
    .lp(current)
    .u8(threshold)
    .u8(parties)
    .bytes();
}

/** Reads a request encoding; refuses anything but the canonical encoding of a valid request. */
export function parseRequest(encoding: Uint8Array): ApprovableRequest {
  const r = Reader.labelled(encoding, "request", MAX_REQUEST_BYTES, APPROVAL_REQUEST_LABEL);
  const code = r.u8("operation");
  const operation = OPERATIONS[code - 1];
  if (operation === undefined) throw malformed(`unknown operation ${code}`);
  const walletId = ascii(r.lp("walletId", MAX_ID_LEN));
  const requestId = ascii(r.lp("requestId", MAX_ID_LEN));
  const issuedAt = r.u64("issuedAt");
  const expiresAt = r.u64("expiresAt");
  const digest = r.lp("digest", DIGEST_BYTES);
  const path = r.lp("path", MAX_PATH_BYTES);
  const hash = r.lp("policyHash", POLICY_HASH_BYTES);
  const current = r.lp("currentPolicyHash", POLICY_HASH_BYTES);
  const threshold = r.u8("threshold");
  const parties = r.u8("parties");
  r.end();
  const req: ApprovableRequest = { operation, walletId, requestId, issuedAt, expiresAt };
  // An empty field is absent; encodeRequest then refuses one the operation needs or must not have.
  if (digest.length > 0) req.digest = digest.slice();
  if (path.length > 0) req.path = ascii(path);
  if (hash.length > 0) req.policyHash = hash.slice();
  if (current.length > 0) req.currentPolicyHash = current.slice();
  if (threshold > 0) req.threshold = threshold;
  if (parties > 0) req.parties = parties;
  // A sign request always encodes its path, so an absent one is not canonical; the re-encoding says so.
  if (operation === "sign" && req.path === undefined)
    throw malformed('a sign request must encode its path ("m" for the wallet key)');
  if (!equalBytes(encodeRequest(req), encoding)) throw malformed("request is not canonical");
  return req;
}

// ------------------------------------------------------------------ approvals

export function encodeApproval(a: Approval): Uint8Array {
  if (typeof a !== "object" || a === null || !isApprovalAlgorithm(a.algorithm))
    throw malformed(`an approval needs an algorithm, one of ${ALGORITHMS.join(", ")}`);
  const out = new Uint8Array(APPROVAL_BYTES);
  out[0] = algorithmCode(a.algorithm);
  out.set(bytesOf(a.keyId, KEY_ID_BYTES, "approval keyId"), 1);
  out.set(bytesOf(a.signature, APPROVAL_SIGNATURE_BYTES, "approval signature"), 1 + KEY_ID_BYTES);
  return out;
}

/** Splits an approval into its fields. Unverified: only src/enclave/approvals.ts checks the signature. */
export function parseApprovalUnverified(b: Uint8Array): Approval {
  if (!(b instanceof Uint8Array) || b.length !== APPROVAL_BYTES)
    throw malformed(`an approval must be ${APPROVAL_BYTES} bytes`);
  const algorithm = algorithmOf(b[0]!);
  if (algorithm === undefined) throw malformed(`unknown approval algorithm ${b[0]}`);
  return {
    algorithm,
    keyId: b.slice(1, 1 + KEY_ID_BYTES),
    signature: b.slice(1 + KEY_ID_BYTES),
  };
}
