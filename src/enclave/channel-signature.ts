/**
 * The one check of a signature made with an enclave's attested Ed25519
 * channel key (peer broadcasts, share-state statements, seal receipts,
 * commit certificates): strict RFC 8032 rules, no ZIP-215 leniency, so
 * encodings are canonical and small-order keys are refused. Malformed
 * input is an invalid signature, never an exception.
 *
 * Split for speed, not for leniency (a signature costs each signer four of
 * these; @noble/curves in JavaScript took ~2.5 ms each, BoringSSL ~0.1 ms):
 *   - here, in JavaScript: lengths; S < L; R's y below p (canonical; R's
 *     "x = 0 with sign bit" form is refused by the native comparison below);
 *     the public key strictly decoded (y < p, x = 0 only with sign bit 0, on
 *     the curve) and not of small order, by @noble/curves as before, the
 *     verdict cached per key (a session checks the same few peer keys).
 *   - natively (node:crypto, Bun's BoringSSL ED25519_verify): R ==
 *     encode([S]B - [k]A), the cofactorless equation RFC 8032 §5.1.7 allows
 *     in place of the cofactored one. It accepts a subset of what noble's
 *     strict mode accepts (equal bytes give R = [S]B - [k]A exactly, hence
 *     the cofactored equation too); the difference is only signatures whose
 *     R carries a small-order component, which no RFC 8032 signer produces.
 * test/enclave/channel-signature.test.ts proves both directions on the
 * vectors and on crafted edge cases. The administrators' approvals are
 * checked the same way (strictEd25519Valid, strictP256Valid below).
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { createPublicKey, verify, type KeyObject } from "node:crypto";

const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** SubjectPublicKeyInfo DER prefix of an Ed25519 key (RFC 8410). */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
/** p = 2^255 - 19 and L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const P_LE = littleEndian((1n << 255n) - 19n);
const L_LE = littleEndian((1n << 252n) + 27742317777372353535851937790883648493n);
/** SubjectPublicKeyInfo DER prefix of a P-256 key as 33-byte compressed SEC1 (RFC 5480). */
const P256_SPKI_PREFIX = Buffer.from("3039301306072a8648ce3d020106082a8648ce3d030107032200", "hex");
/** The P-256 group order n and n/2, big-endian. */
const P256_N = p256.Point.Fn.ORDER;
const P256_N_BE = bigEndian(P256_N);
const P256_HALF_N_BE = bigEndian(P256_N >> 1n);
/** Checked keys kept; beyond this the cache starts over (peers' keys change per boot). */
const MAX_CACHED_KEYS = 1024;
/** Algorithm and public key (hex) -> its KeyObject when strict decoding admitted it, null when refused. */
const checkedKeys = new Map<string, KeyObject | null>();

/**
 * Strict Ed25519 as above, for any key: the enclave's other Ed25519 checks
 * (administrators' approvals, approvals.ts) use it too.
 */
export function strictEd25519Valid(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  return channelSignatureValid(signature, message, publicKey);
}

export function channelSignatureValid(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  try {
    if (!shaped(signature, message, publicKey, KEY_BYTES)) return false;
    // R's y (its top bit is x's sign) below p; S below L: the encodings RFC 8032 decoding accepts.
    if (!lessThan(signature.subarray(0, 32), P_LE, 0x7f)) return false;
    if (!lessThan(signature.subarray(32, 64), L_LE, 0xff)) return false;
    const key = strictKey("ed25519", publicKey);
    return key !== null && verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * ECDSA P-256 over SHA-256(message), compact r || s, as @noble/curves verifies
 * with { prehash: true, lowS: true, format: "compact" } (administrators'
 * approvals, approvals.ts): 1 <= r, s < n and s <= n/2 (low S) checked here,
 * the key (33-byte compressed SEC1) decoded and checked on the curve by noble
 * (cached per key), the equation natively (~25x faster than noble's). ECDSA
 * verification has one outcome for given (r, s, key, digest), so the verdicts
 * are noble's (test/enclave/channel-signature.test.ts).
 */
export function strictP256Valid(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  try {
    if (!shaped(signature, message, publicKey, 33)) return false;
    const r = signature.subarray(0, 32);
    const s = signature.subarray(32, 64);
    if (isZero(r) || isZero(s) || !beLessThan(r, P256_N_BE) || !beAtMost(s, P256_HALF_N_BE))
      return false;
    const key = strictKey("p256", publicKey);
    return key !== null && verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

/** The KeyObject of a strictly decoded public key (Ed25519: of large order), or null. */
function strictKey(algorithm: "ed25519" | "p256", publicKey: Uint8Array): KeyObject | null {
  const id = `${algorithm}:${Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("hex")}`;
  const hit = checkedKeys.get(id);
  if (hit !== undefined) return hit;
  let key: KeyObject | null = null;
  try {
    let usable: boolean;
    if (algorithm === "ed25519") usable = !ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
    else {
      p256.Point.fromBytes(publicKey).assertValidity(); // throws for a point off the curve
      usable = true;
    }
    if (usable) {
      const prefix = algorithm === "ed25519" ? SPKI_PREFIX : P256_SPKI_PREFIX;
      const der = Buffer.alloc(prefix.length + publicKey.length);
      der.set(prefix, 0);
      der.set(publicKey, prefix.length);
      key = createPublicKey({ key: der, format: "der", type: "spki" });
    }
  } catch {
    key = null;
  }
  if (checkedKeys.size >= MAX_CACHED_KEYS) checkedKeys.clear();
  checkedKeys.set(id, key);
  return key;
}

/** Bytes of the right lengths (both signatures are 64 bytes). */
function shaped(
  signature: unknown,
  message: unknown,
  publicKey: unknown,
  keyBytes: number,
): signature is Uint8Array {
  return (
    signature instanceof Uint8Array &&
    message instanceof Uint8Array &&
    publicKey instanceof Uint8Array &&
    signature.length === SIGNATURE_BYTES &&
    publicKey.length === keyBytes
  );
}

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** Big-endian a < b (equal lengths, public values). */
function beLessThan(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

function beAtMost(a: Uint8Array, b: Uint8Array): boolean {
  return !beLessThan(b, a);
}

function bigEndian(n: bigint): Uint8Array {
  return littleEndian(n).reverse();
}

/** `le` (32 bytes, little-endian, top byte masked with `topMask`) < `bound`, in variable time (all public). */
function lessThan(le: Uint8Array, bound: Uint8Array, topMask: number): boolean {
  for (let i = 31; i >= 0; i--) {
    const b = i === 31 ? le[i]! & topMask : le[i]!;
    if (b !== bound[i]) return b < bound[i]!;
  }
  return false;
}

function littleEndian(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}
