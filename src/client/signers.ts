/**
 * Approver signers for the SDK: the interface any approver key implements
 * (an in-process key here; a cloud KMS key, an HSM or another device
 * elsewhere), the in-process Ed25519 and P-256 keys with their key files,
 * and `approve`, which encodes a request once and collects one approval per
 * signer. Formats: src/shared/wire/approval.ts.
 *
 * An external P-256 signer must return ECDSA over SHA-256 of the encoding as
 * compact r || s with low S; KMS and WebAuthn produce DER, which
 * `p256SignatureFromDer` converts. WebAuthn assertions themselves
 * (authenticatorData || SHA-256(clientDataJSON)) are not yet accepted by the
 * enclaves; see the note in approval.ts.
 *
 * Key file (JSON, written with mode 0600 and never over an existing file;
 * read only when no group or other permission bit is set, as ssh does):
 *
 *   {"format": "tss-approver-key", "version": 1, "algorithm": "ed25519" | "p256",
 *    "keyId": hex, "publicKey": hex, "secretKey": hex}
 *
 * keyId and publicKey are derived from secretKey and checked on reading, so a
 * damaged file is refused rather than signing as some other key.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { fromHex, toHex } from "../shared/hex.ts";
import {
  ALGORITHMS,
  APPROVAL_SIGNATURE_BYTES,
  approverKeyId,
  checkApproverKey,
  encodeRequest,
  isApprovalAlgorithm,
  MAX_APPROVALS,
  MAX_VALIDITY_SECONDS,
  type ApprovableRequest,
  type Approval,
  type ApprovalAlgorithm,
  type ApproverKey,
} from "../shared/wire/approval.ts";
import { TssError } from "./errors.ts";

export type { ApprovableRequest, Approval, ApprovalAlgorithm, ApproverKey };

/** Anything that can approve: it names its public key and signs a request encoding. */
export interface ApprovalSigner {
  readonly algorithm: ApprovalAlgorithm;
  /** Ed25519: 32 bytes; P-256: 33-byte compressed SEC1. */
  readonly publicKey: Uint8Array;
  /** Ed25519 over `encoding`, or ECDSA P-256 over SHA-256(encoding) as compact low-S r || s. */
  sign(encoding: Uint8Array): Promise<Uint8Array>;
}

const bad = (message: string) => new TssError("bad_request", message);

/** The curve operations per algorithm; both produce and expect the approval format's 64-byte signatures. */
const CURVES: Record<
  ApprovalAlgorithm,
  {
    randomSecretKey(): Uint8Array;
    isValidSecretKey(sk: Uint8Array): boolean;
    publicKeyOf(sk: Uint8Array): Uint8Array;
    sign(msg: Uint8Array, sk: Uint8Array): Uint8Array;
    verify(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean;
  }
> = {
  ed25519: {
    randomSecretKey: () => ed25519.utils.randomSecretKey(),
    isValidSecretKey: (sk) => sk.length === 32,
    publicKeyOf: (sk) => ed25519.getPublicKey(sk),
    sign: (msg, sk) => ed25519.sign(msg, sk),
    verify: (sig, msg, pk) => ed25519.verify(sig, msg, pk, { zip215: false }),
  },
  p256: {
    randomSecretKey: () => p256.utils.randomSecretKey(),
    isValidSecretKey: (sk) => p256.utils.isValidSecretKey(sk),
    publicKeyOf: (sk) => p256.getPublicKey(sk, true),
    // noble: SHA-256 prehash, RFC 6979 nonces, low-S, compact: exactly the approval format.
    sign: (msg, sk) => p256.sign(msg, sk, { prehash: true, lowS: true, format: "compact" }),
    verify: (sig, msg, pk) =>
      p256.verify(sig, msg, pk, { prehash: true, lowS: true, format: "compact" }),
  },
};

/** An approver key held in this process. */
export class KeySigner implements ApprovalSigner {
  readonly publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;

  private constructor(
    readonly algorithm: ApprovalAlgorithm,
    secretKey: Uint8Array,
  ) {
    if (!isApprovalAlgorithm(algorithm))
      throw bad(`algorithm must be one of ${ALGORITHMS.join(", ")}.`);
    if (!(secretKey instanceof Uint8Array) || !CURVES[algorithm].isValidSecretKey(secretKey))
      throw bad(`not a valid ${algorithm} secret key.`);
    this.#secretKey = secretKey.slice();
    this.publicKey = CURVES[algorithm].publicKeyOf(this.#secretKey);
  }

  static generate(algorithm: ApprovalAlgorithm = "ed25519"): KeySigner {
    if (!isApprovalAlgorithm(algorithm))
      throw bad(`algorithm must be one of ${ALGORITHMS.join(", ")}.`);
    return new KeySigner(algorithm, CURVES[algorithm].randomSecretKey());
  }

  static fromSecretKey(algorithm: ApprovalAlgorithm, secretKey: Uint8Array): KeySigner {
    return new KeySigner(algorithm, secretKey);
  }

  /** Hex of the approver key id (the policy's and the approval's name for this key). */
  get keyId(): string {
    return keyIdOf(this);
  }

  async sign(encoding: Uint8Array): Promise<Uint8Array> {
    return CURVES[this.algorithm].sign(encoding, this.#secretKey);
  }

  /** The key file's JSON text; it holds the secret key. */
  toKeyFile(): string {
    const file = {
      format: KEY_FILE_FORMAT,
      version: KEY_FILE_VERSION,
      algorithm: this.algorithm,
      keyId: this.keyId,
      publicKey: toHex(this.publicKey),
      secretKey: toHex(this.#secretKey),
    };
    return `${JSON.stringify(file, null, 2)}\n`;
  }
}

/** The approver key a signer stands for (what goes into a policy). */
export function approverKeyOf(
  signer: Pick<ApprovalSigner, "algorithm" | "publicKey">,
): ApproverKey {
  try {
    return checkApproverKey({ algorithm: signer.algorithm, publicKey: signer.publicKey });
  } catch (e) {
    throw bad(`approver key refused: ${(e as Error).message}.`);
  }
}

export function keyIdOf(signer: Pick<ApprovalSigner, "algorithm" | "publicKey">): string {
  return toHex(approverKeyId(approverKeyOf(signer)));
}

/** issuedAt = now and expiresAt = now + seconds (default 5 minutes, at most MAX_VALIDITY_SECONDS). */
export function validity(
  seconds = 300,
  nowSeconds = Math.floor(Date.now() / 1000),
): { issuedAt: number; expiresAt: number } {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_VALIDITY_SECONDS)
    throw bad(`an approval is valid for 1..${MAX_VALIDITY_SECONDS} seconds.`);
  return { issuedAt: nowSeconds, expiresAt: nowSeconds + seconds };
}

/**
 * Encodes `request` and has every signer approve it. Each returned signature
 * is checked here, so a misconfigured external signer (wrong key, DER, high
 * S) fails now with its key id named, not later as an enclave's refusal.
 */
export async function approve(
  request: ApprovableRequest,
  signers: readonly ApprovalSigner[],
): Promise<{ request: Uint8Array; approvals: Approval[] }> {
  if (!Array.isArray(signers) || signers.length === 0 || signers.length > MAX_APPROVALS)
    throw bad(`approve takes 1..${MAX_APPROVALS} signers.`);
  let encoding: Uint8Array;
  try {
    encoding = encodeRequest(request);
  } catch (e) {
    throw bad(`the request cannot be approved: ${(e as Error).message}.`);
  }
  const ids = signers.map(keyIdOf);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw bad(`approver ${twice} is given twice.`);
  const approvals = await Promise.all(
    signers.map(async (s, i): Promise<Approval> => {
      const signature = await s.sign(encoding.slice());
      const ok =
        signature instanceof Uint8Array &&
        signature.length === APPROVAL_SIGNATURE_BYTES &&
        verifies(s.algorithm, signature, encoding, s.publicKey);
      if (!ok)
        throw bad(
          `approver ${ids[i]} returned a signature that does not verify as ${s.algorithm} (${APPROVAL_SIGNATURE_BYTES} bytes${s.algorithm === "p256" ? ", compact, low S" : ""}).`,
        );
      return { algorithm: s.algorithm, keyId: fromHex(ids[i]!), signature };
    }),
  );
  return { request: encoding, approvals };
}

function verifies(a: ApprovalAlgorithm, sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  try {
    return CURVES[a].verify(sig, msg, pk);
  } catch {
    return false;
  }
}

/** A DER ECDSA P-256 signature (as KMS or WebAuthn return it) in the approval form: compact r || s, low S. */
export function p256SignatureFromDer(der: Uint8Array): Uint8Array {
  try {
    const sig = p256.Signature.fromBytes(der, "der");
    const n = p256.Point.CURVE().n;
    const low = sig.s > n >> 1n ? new p256.Signature(sig.r, n - sig.s) : sig;
    return low.toBytes("compact");
  } catch {
    throw bad("not a DER-encoded P-256 ECDSA signature.");
  }
}

// ------------------------------------------------------------------ key files

export const KEY_FILE_FORMAT = "tss-approver-key";
export const KEY_FILE_VERSION = 1;
/** A key file is a few hundred bytes; anything much larger is not one. */
export const MAX_KEY_FILE_BYTES = 4096;

/** Reads key-file JSON text; refuses a file whose derived key id or public key differ from the recorded ones. */
export function parseKeyFile(text: string): KeySigner {
  if (typeof text !== "string" || text.length > MAX_KEY_FILE_BYTES)
    throw bad(`a key file is JSON of at most ${MAX_KEY_FILE_BYTES} bytes.`);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad("the key file is not JSON.");
  }
  if (typeof j !== "object" || j === null || j.format !== KEY_FILE_FORMAT)
    throw bad(`not a key file: "format" must be "${KEY_FILE_FORMAT}".`);
  if (j.version !== KEY_FILE_VERSION)
    throw bad(`unsupported key file version ${JSON.stringify(j.version)}.`);
  if (!isApprovalAlgorithm(j.algorithm))
    throw bad(`the key file's algorithm must be one of ${ALGORITHMS.join(", ")}.`);
  const hex = (name: string): Uint8Array => {
    try {
      return fromHex(String(j[name]));
    } catch {
      throw bad(`the key file's ${name} is not hex.`);
    }
  };
  const signer = KeySigner.fromSecretKey(j.algorithm, hex("secretKey"));
  if (toHex(signer.publicKey) !== toHex(hex("publicKey")) || signer.keyId !== j.keyId)
    throw bad("the key file's publicKey or keyId does not match its secretKey.");
  return signer;
}

/** Writes a new key file with mode 0600; never replaces an existing file. */
export function writeKeyFile(path: string, signer: KeySigner): void {
  try {
    writeFileSync(path, signer.toKeyFile(), { mode: 0o600, flag: "wx" });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(
      code === "EEXIST"
        ? `${path} exists; a key file is never overwritten.`
        : `cannot write ${path}: ${(e as Error).message}.`,
    );
  }
}

/** Reads a key file, refusing one that group or others may read or write. */
export function readKeyFile(path: string): KeySigner {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw bad(`${path} is not a file.`);
    if ((st.mode & 0o077) !== 0)
      throw bad(
        `${path} is accessible by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it.`,
      );
    if (st.size > MAX_KEY_FILE_BYTES) throw bad(`${path} is too large to be a key file.`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof TssError) throw e;
    throw bad(`cannot read ${path}: ${(e as Error).message}.`);
  }
  return parseKeyFile(text);
}
