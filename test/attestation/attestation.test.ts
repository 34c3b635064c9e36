import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { p384 } from "@noble/curves/nist.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AWS_NITRO_ROOT_SHA256,
  fingerprintSha256,
  loadAwsNitroRoot,
  pemToDer,
  TrustedRootError,
  trustedRoots,
} from "../../src/attestation/aws-root.ts";
import {
  CborTag,
  decodeCbor,
  encodeCbor,
  encodeCoseSign1,
  sigStructure,
  ES384_PROTECTED_HEADER,
  MAX_DOCUMENT_BYTES,
  type Cbor,
} from "../../src/attestation/cose.ts";
import {
  createDevelopmentPki,
  derToPem,
  issueDevelopmentCertificate,
  restoreDevelopmentPki,
  serializeDevelopmentPki,
  ROOT_NAME,
  type CertificateSpec,
  type DevelopmentPki,
} from "../../src/dev/dev-pki.ts";
import { NsmUnavailableError, requestNsmAttestation } from "../../src/attestation/nsm-device.ts";
import { pcr0ForCode, SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import {
  AttestationError,
  KU_CRL_SIGN,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  parseCertificate,
  verifyAttestationDocument,
  type AttestationFailure,
  type TrustedRoot,
  type VerifyOptions,
} from "../../src/attestation/verifier.ts";

const FIXTURES = fileURLToPath(new URL("../../../shared/fixtures/nitro/", import.meta.url));
const haveFixtures = existsSync(FIXTURES);
if (!haveFixtures)
  console.warn(`SKIPPING real AWS Nitro fixture tests: ${FIXTURES} is absent (CI has it)`);
const fixtureSuite = haveFixtures
  ? "real AWS Nitro documents"
  : `real AWS Nitro documents (SKIPPED: ${FIXTURES} absent)`;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fixture = (name: string) => join(FIXTURES, name);
const loadDoc = (name: string) =>
  new Uint8Array(Buffer.from(readFileSync(fixture(name), "utf8").trim(), "base64"));

/** Runs the verifier and returns the rejection reason, failing the test if it is not an AttestationError. */
function rejection(doc: Uint8Array, opts: VerifyOptions): AttestationFailure | "accepted" {
  try {
    verifyAttestationDocument(doc, opts);
    return "accepted";
  } catch (e) {
    if (!(e instanceof AttestationError))
      throw new Error(`expected an AttestationError, got ${String(e)}`);
    expect(e.message.length).toBeGreaterThan(10);
    return e.reason;
  }
}

/** Deterministic mutation positions: `count` spread evenly over the document, plus each listed range in full. */
function flipPositions(
  length: number,
  count: number,
  fullRanges: Array<[number, number]>,
): number[] {
  const set = new Set<number>();
  for (let i = 0; i < count; i++) set.add(Math.floor((i * length) / count + (i % 5)) % length);
  for (const [from, to] of fullRanges) for (let p = from; p < to; p++) set.add(p);
  return [...set].sort((a, b) => a - b);
}

function flipped(doc: Uint8Array, pos: number): Uint8Array {
  const copy = doc.slice();
  copy[pos]! ^= 1 << (pos % 8); // a single bit, the smallest possible change
  return copy;
}

function decodePayload(doc: Uint8Array): { payload: Map<string, Cbor> } {
  return { payload: decodeCbor((decodeCbor(doc) as Cbor[])[2] as Uint8Array) as Map<string, Cbor> };
}

/** A type-level description of a CBOR value, for comparing document structures. */
function shape(v: Cbor): unknown {
  if (v === null) return "null";
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? "uint" : "int";
  if (typeof v === "string") return "text";
  if (typeof v === "boolean") return "bool";
  if (v instanceof Uint8Array) return "bstr";
  if (v instanceof CborTag) return { tag: v.tag, value: shape(v.value) };
  if (Array.isArray(v)) return { array: [...new Set(v.map((x) => JSON.stringify(shape(x))))] };
  return { map: [...v].map(([k, x]) => [typeof k === "string" ? k : "uint", shape(x)]) };
}

describe.skipIf(!haveFixtures)(fixtureSuite, () => {
  const TS = new Date("2024-09-07T14:37:39.545Z");
  const DEBUG_TS = new Date("2024-09-07T14:38:06.508Z");
  let aws: TrustedRoot;
  let doc: Uint8Array;

  beforeAll(() => {
    aws = loadAwsNitroRoot(fixture("aws-nitro-enclaves-root-g1.pem"));
    doc = loadDoc("attestation-2024-09-07.b64");
  });

  it("verifies at its own timestamp against the pinned AWS root", () => {
    const d = verifyAttestationDocument(doc, {
      roots: trustedRoots({
        awsRootPath: fixture("aws-nitro-enclaves-root-g1.pem"),
        allowDevelopment: false,
      }),
      now: TS,
      maxAgeMs: 60_000,
    });
    const pcr0 = hex(d.pcrs.get(0)!);
    expect(pcr0.startsWith("e72a46ca")).toBe(true);
    expect(pcr0.endsWith("e86a")).toBe(true);
    expect(d.timestamp).toBe(TS.getTime());
    expect(d.digest).toBe("SHA384");
    expect(d.moduleId).toMatch(/^i-[0-9a-f]+-enc[0-9a-f]+$/);
    expect([...d.pcrs.keys()]).toEqual([...Array(16).keys()]);
    for (const field of [d.publicKey, d.userData, d.nonce])
      expect(field).toEqual(new Uint8Array(1024).fill(1));
    // The nonce and PCR policy pass when they name the document's own values.
    const again = verifyAttestationDocument(doc, {
      roots: [aws],
      now: TS,
      expectedNonce: new Uint8Array(1024).fill(1),
      policy: { pcrs: { 0: d.pcrs.get(0)!, 3: new Uint8Array(48) } },
    });
    expect(hex(again.pcrs.get(0)!)).toBe(pcr0);
  });

  it("is rejected one day later (leaf expired) and before the leaf was issued", () => {
    expect(rejection(doc, { roots: [aws], now: new Date(TS.getTime() + 86_400_000) })).toBe(
      "expired",
    );
    expect(rejection(doc, { roots: [aws], now: new Date(TS.getTime() - 60_000) })).toBe(
      "not_yet_valid",
    );
  });

  it("rejects the debug-mode document, and only for that reason", () => {
    const debug = loadDoc("attestation-debug-2024-09-07.b64");
    expect(rejection(debug, { roots: [aws], now: DEBUG_TS })).toBe("debug_enclave");
    expect(
      verifyAttestationDocument(debug, { roots: [aws], now: DEBUG_TS, allowDebug: true }).pcrs.get(
        0,
      ),
    ).toEqual(new Uint8Array(48));
  });

  it("rejects a chain to a root that is not configured", () => {
    const other: TrustedRoot = { der: createDevelopmentPki().root.der, development: false };
    expect(rejection(doc, { roots: [other], now: TS })).toBe("untrusted_root");
  });

  it("rejects every single-bit change: 240 positions over the document plus every signature byte", () => {
    const opts = { roots: [aws], now: TS };
    expect(rejection(doc, opts)).toBe("accepted");
    const positions = flipPositions(doc.length, 240, [[doc.length - 96, doc.length]]);
    expect(positions.length).toBeGreaterThanOrEqual(200 + 96 - 5);
    const reasons = new Map<string, number>();
    for (const p of positions) {
      const r = rejection(flipped(doc, p), opts);
      if (r === "accepted") throw new Error(`flipping byte ${p} of ${doc.length} went undetected`);
      reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    expect(reasons.get("bad_signature")).toBeGreaterThan(96);
  });

  it("refuses a root PEM whose fingerprint differs from the pinned one", () => {
    const dir = mkdtempSync(join(tmpdir(), "nitro-root-"));
    try {
      const der = pemToDer(readFileSync(fixture("aws-nitro-enclaves-root-g1.pem"), "utf8"));
      expect(fingerprintSha256(der)).toBe(AWS_NITRO_ROOT_SHA256);
      const tampered = der.slice();
      tampered[tampered.length - 1]! ^= 1;
      writeFileSync(join(dir, "tampered.pem"), derToPem(tampered));
      expect(() => loadAwsNitroRoot(join(dir, "tampered.pem"))).toThrow(
        /fingerprint .* differs from the pinned/,
      );
      writeFileSync(join(dir, "dev.pem"), derToPem(createDevelopmentPki().root.der));
      expect(() => loadAwsNitroRoot(join(dir, "dev.pem"))).toThrow(TrustedRootError);
      expect(() =>
        trustedRoots({ awsRootPath: join(dir, "dev.pem"), allowDevelopment: true }),
      ).toThrow(TrustedRootError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the real chain as OpenSSL does (CA flags, validity, keys)", () => {
    const d = verifyAttestationDocument(doc, { roots: [aws], now: TS });
    for (const der of [...d.cabundle, d.certificate]) {
      const ours = parseCertificate(der);
      const theirs = new X509Certificate(der);
      expect(ours.ca).toBe(theirs.ca);
      expect(ours.notBefore).toBe(Date.parse(theirs.validFrom));
      expect(ours.notAfter).toBe(Date.parse(theirs.validTo));
      const jwk = theirs.publicKey.export({ format: "jwk" });
      expect(hex(ours.publicKey)).toBe(
        "04" +
          Buffer.from(jwk.x!, "base64url").toString("hex") +
          Buffer.from(jwk.y!, "base64url").toString("hex"),
      );
    }
  });

  it("simulated documents have the same CBOR structure as the real one", () => {
    const pki = createDevelopmentPki();
    const nsm = new SimulatedNsm({ pki, pcrs: { 0: pcr0ForCode([Uint8Array.of(1)]) } });
    const fields = {
      publicKey: new Uint8Array(1024).fill(1),
      userData: new Uint8Array(1024).fill(1),
      nonce: new Uint8Array(1024).fill(1),
    };
    const sim = nsm.attest(fields);
    const [realTop, simTop] = [decodeCbor(doc), decodeCbor(sim)] as [Cbor[], Cbor[]];
    expect(shape(simTop)).toEqual(shape(realTop));
    expect(sim[0]).toBe(doc[0]); // untagged 4-element array, as AWS emits
    expect(simTop[0]).toEqual(realTop[0]); // identical protected header
    const [realPayload, simPayload] = [
      decodeCbor(realTop[2] as Uint8Array),
      decodeCbor(simTop[2] as Uint8Array),
    ];
    expect(shape(simPayload)).toEqual(shape(realPayload)); // same keys, same order, same types
    const pcrLengths = (p: Cbor) =>
      [...((p as Map<string, Cbor>).get("pcrs") as Map<number, Uint8Array>)].map(([i, v]) => [
        i,
        v.length,
      ]);
    expect(pcrLengths(simPayload)).toEqual(pcrLengths(realPayload));
  });
});

describe("simulated NSM with the development PKI", () => {
  const CODE = [new TextEncoder().encode("enclave program v1"), Uint8Array.of(0, 1, 2, 3)];
  let pki: DevelopmentPki;
  let nsm: SimulatedNsm;
  let roots: TrustedRoot[];
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const pcrs = {
    0: pcr0ForCode(CODE),
    1: pcr0ForCode([Uint8Array.of(1)]),
    2: pcr0ForCode([Uint8Array.of(2)]),
  };
  const devOpts = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({
    roots,
    now: new Date(),
    allowDevelopment: true,
    ...extra,
  });
  /** A genuine simulated payload with its chain replaced, signed by `key`: what an attacker holding some key could send. */
  const forge = (certificate: Uint8Array, cabundle: Uint8Array[], key: Uint8Array) => {
    const { payload } = decodePayload(nsm.attest());
    payload.set("certificate", certificate);
    payload.set("cabundle", cabundle);
    const bytes = encodeCbor(payload);
    return encodeCoseSign1(
      ES384_PROTECTED_HEADER,
      bytes,
      p384.sign(sigStructure(ES384_PROTECTED_HEADER, bytes), key, { prehash: true, lowS: false }),
    );
  };

  beforeAll(() => {
    pki = createDevelopmentPki();
    nsm = new SimulatedNsm({ pki, pcrs });
  });

  afterAll(() => vi.restoreAllMocks());

  it("trustedRoots accepts a development root only when development is allowed, warning once", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(() => trustedRoots({ developmentRoot: pki.root.der, allowDevelopment: false })).toThrow(
      /development is not allowed/,
    );
    expect(() => trustedRoots({ allowDevelopment: false })).toThrow(TrustedRootError);
    roots = trustedRoots({ developmentRoot: pki.root.der, allowDevelopment: true });
    trustedRoots({ developmentRoot: pki.root.der, allowDevelopment: true });
    expect(roots).toEqual([{ der: pki.root.der, development: true }]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/DEVELOPMENT/);
    warn.mockRestore();
  });

  it("documents verify with the development root only when development is allowed", () => {
    const publicKey = p384.getPublicKey(p384.utils.randomSecretKey(), false);
    const userData = new TextEncoder().encode("session 42");
    const doc = nsm.attest({ nonce, userData, publicKey });
    const d = verifyAttestationDocument(
      doc,
      devOpts({ expectedNonce: nonce, maxAgeMs: 30_000, policy: { pcrs } }),
    );
    expect(d.nonce).toEqual(nonce);
    expect(d.userData).toEqual(userData);
    expect(d.publicKey).toEqual(publicKey);
    expect(d.moduleId).toBe(nsm.moduleId);
    expect(d.moduleId).toMatch(/^i-[0-9a-f]{17}-enc[0-9a-f]{16}$/);
    expect(d.cabundle).toEqual([pki.root.der, pki.intermediate.der]);
    expect([...d.pcrs.keys()]).toEqual([...Array(16).keys()]);
    expect(d.pcrs.get(3)).toEqual(new Uint8Array(48));

    expect(rejection(doc, devOpts({ allowDevelopment: false }))).toBe("development_root");
    expect(rejection(doc, devOpts({ allowDevelopment: undefined }))).toBe("development_root");
    expect(
      rejection(doc, { roots: [{ der: pki.root.der, development: false }], now: new Date() }),
    ).toBe("accepted");
    expect(
      rejection(
        doc,
        devOpts({ roots: [{ der: createDevelopmentPki().root.der, development: true }] }),
      ),
    ).toBe("untrusted_root");
  });

  it("absent fields are CBOR null and decode as null", () => {
    const doc = nsm.attest();
    const { payload } = decodePayload(doc);
    for (const k of ["public_key", "user_data", "nonce"]) expect(payload.get(k)).toBeNull();
    const d = verifyAttestationDocument(doc, devOpts());
    expect([d.publicKey, d.userData, d.nonce]).toEqual([null, null, null]);
  });

  it("rejects a wrong or missing nonce", () => {
    const doc = nsm.attest({ nonce });
    const wrong = nonce.slice();
    wrong[0]! ^= 0x80;
    expect(rejection(doc, devOpts({ expectedNonce: wrong }))).toBe("nonce_mismatch");
    expect(rejection(nsm.attest(), devOpts({ expectedNonce: nonce }))).toBe("nonce_mismatch");
  });

  it("rejects a stale document and one from the future", () => {
    const t0 = Date.now();
    const old = new SimulatedNsm({ pki, pcrs, clock: () => new Date(t0 - 10 * 60_000) }).attest({
      nonce,
    });
    expect(rejection(old, devOpts({ now: new Date(t0), maxAgeMs: 5 * 60_000 }))).toBe("stale");
    expect(rejection(old, devOpts({ now: new Date(t0), maxAgeMs: 15 * 60_000 }))).toBe("accepted");
    // Leaf issued at t0, document dated 10 minutes later, verified at t0 + 1 min: certificates valid, timestamp ahead.
    const ahead = new SimulatedNsm({ pki, pcrs, clock: () => new Date(t0 + 10 * 60_000) }).attest();
    expect(rejection(ahead, devOpts({ now: new Date(t0 + 60_000) }))).toBe("future_timestamp");
  });

  it("rejects a PCR policy mismatch, including a changed enclave and an absent PCR", () => {
    const doc = nsm.attest();
    const changed = pcr0ForCode([CODE[0]!, Uint8Array.of(0, 1, 2, 4)]);
    expect(hex(changed)).not.toBe(hex(pcrs[0]));
    expect(rejection(doc, devOpts({ policy: { pcrs: { 0: changed } } }))).toBe("pcr_mismatch");
    expect(rejection(doc, devOpts({ policy: { pcrs: { 0: pcrs[0], 2: pcrs[1] } } }))).toBe(
      "pcr_mismatch",
    );
    expect(rejection(doc, devOpts({ policy: { pcrs: { 20: new Uint8Array(48) } } }))).toBe(
      "pcr_mismatch",
    );
    expect(rejection(doc, devOpts({ policy: { pcrs: { 0: pcrs[0].subarray(0, 32) } } }))).toBe(
      "pcr_mismatch",
    );
  });

  it("rejects an all-zero PCR0 (debug enclave) unless debug is allowed", () => {
    const debug = new SimulatedNsm({ pki, pcrs: { 0: new Uint8Array(48) } }).attest();
    expect(rejection(debug, devOpts())).toBe("debug_enclave");
    expect(rejection(debug, devOpts({ allowDebug: true }))).toBe("accepted");
  });

  it("rejects an expired leaf, and renews the leaf when its 3 hours are over", () => {
    const doc = nsm.attest();
    const leaf = parseCertificate(pki.leaf.der);
    expect(leaf.notAfter - leaf.notBefore).toBe(3 * 3_600_000);
    expect(rejection(doc, devOpts({ now: new Date(leaf.notAfter + 1000) }))).toBe("expired");
    const later = new Date(leaf.notAfter + 60_000);
    const renewed = new SimulatedNsm({ pki, pcrs, clock: () => later }).attest();
    expect(rejection(renewed, devOpts({ now: later }))).toBe("accepted");
  });

  it("rejects bad envelopes: wrong alg, foreign signer, tags, size, trailing bytes", () => {
    const doc = nsm.attest();
    const [, , payload] = decodeCbor(doc) as [Uint8Array, Cbor, Uint8Array, Uint8Array];
    const es256Header = encodeCbor(new Map([[1, -7]]));
    const signWith = (key: Uint8Array, header = ES384_PROTECTED_HEADER) =>
      encodeCoseSign1(
        header,
        payload,
        p384.sign(sigStructure(header, payload), key, { prehash: true, lowS: false }),
      );
    expect(rejection(signWith(pki.leaf.privateKey), devOpts())).toBe("accepted");
    expect(rejection(signWith(pki.intermediate.privateKey), devOpts())).toBe("bad_signature");
    expect(rejection(signWith(pki.leaf.privateKey, es256Header), devOpts())).toBe("malformed");

    const tagged = new Uint8Array([0xd2, ...doc]); // tag 18, COSE_Sign1
    expect(rejection(tagged, devOpts())).toBe("accepted");
    expect(rejection(new Uint8Array([0xd1, ...doc]), devOpts())).toBe("malformed");
    expect(rejection(new Uint8Array([...doc, 0]), devOpts())).toBe("malformed");
    expect(rejection(new Uint8Array(0), devOpts())).toBe("malformed");
    expect(rejection(new Uint8Array(MAX_DOCUMENT_BYTES + 1), devOpts())).toBe("malformed");
    // Indefinite-length array header instead of 0x84.
    expect(rejection(new Uint8Array([0x9f, ...doc.subarray(1), 0xff]), devOpts())).toBe(
      "malformed",
    );
  });

  it("rejects forged chains whose certificates reuse the CA names but not their keys", () => {
    const rogue = createDevelopmentPki(); // same subject/issuer names, different keys
    expect(
      rejection(
        forge(pki.leaf.der, [pki.root.der, pki.intermediate.der], pki.leaf.privateKey),
        devOpts(),
      ),
    ).toBe("accepted");
    expect(
      rejection(
        forge(rogue.leaf.der, [pki.root.der, pki.intermediate.der], rogue.leaf.privateKey),
        devOpts(),
      ),
    ).toBe("bad_signature");
    expect(
      rejection(
        forge(rogue.leaf.der, [pki.root.der, rogue.intermediate.der], rogue.leaf.privateKey),
        devOpts(),
      ),
    ).toBe("bad_signature");
    expect(
      rejection(
        forge(pki.intermediate.der, [pki.root.der], pki.intermediate.privateKey),
        devOpts(),
      ),
    ).toBe("bad_chain");
    expect(
      rejection(
        forge(pki.leaf.der, [pki.intermediate.der, pki.root.der], pki.leaf.privateKey),
        devOpts(),
      ),
    ).toBe("untrusted_root");
    expect(rejection(forge(pki.leaf.der, [pki.root.der], pki.leaf.privateKey), devOpts())).toBe(
      "bad_chain",
    );
  });

  it("enforces basicConstraints, pathLen and keyUsage along the chain", () => {
    const now = Date.now();
    const CA = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    type Node = { name: string; key: Uint8Array; der: Uint8Array };
    const root: Node = { name: ROOT_NAME, key: pki.root.privateKey, der: pki.root.der };
    const child = (
      parent: Node,
      name: string,
      ca: CertificateSpec["ca"],
      keyUsage: number,
    ): Node => {
      const key = p384.utils.randomSecretKey();
      const der = issueDevelopmentCertificate({
        subject: name,
        issuer: parent.name,
        subjectKey: key,
        issuerKey: parent.key,
        notBefore: now - 60_000,
        notAfter: now + 3_600_000,
        ca,
        keyUsage,
      });
      return { name, key, der };
    };
    const reasonAndMessage = (path: Node[]) => {
      const leaf = path[path.length - 1]!;
      try {
        verifyAttestationDocument(
          forge(
            leaf.der,
            path.slice(0, -1).map((n) => n.der),
            leaf.key,
          ),
          devOpts(),
        );
        return "accepted";
      } catch (e) {
        return `${(e as AttestationError).reason}: ${(e as Error).message}`;
      }
    };

    const ca1 = child(root, "ca1", { pathLen: undefined }, CA);
    expect(reasonAndMessage([root, ca1, child(ca1, "leaf", undefined, KU_DIGITAL_SIGNATURE)])).toBe(
      "accepted",
    );
    const endEntity = child(ca1, "ee", undefined, KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN);
    expect(
      reasonAndMessage([
        root,
        ca1,
        endEntity,
        child(endEntity, "leaf", undefined, KU_DIGITAL_SIGNATURE),
      ]),
    ).toMatch(/^bad_chain: .*not a CA/);
    const ca0 = child(root, "ca0", { pathLen: 0 }, CA);
    const ca0sub = child(ca0, "ca0sub", { pathLen: undefined }, CA);
    expect(
      reasonAndMessage([root, ca0, ca0sub, child(ca0sub, "leaf", undefined, KU_DIGITAL_SIGNATURE)]),
    ).toMatch(/^bad_chain: .*allows 0 CA/);
    const caNoSign = child(root, "caNoSign", { pathLen: undefined }, KU_DIGITAL_SIGNATURE);
    expect(
      reasonAndMessage([root, caNoSign, child(caNoSign, "leaf", undefined, KU_DIGITAL_SIGNATURE)]),
    ).toMatch(/^bad_chain: .*keyCertSign/);
    expect(reasonAndMessage([root, ca1, child(ca1, "leaf", undefined, KU_CRL_SIGN)])).toMatch(
      /^bad_chain: .*digitalSignature/,
    );
  });

  it("rejects every single-bit change in a sample of positions and in the signature", () => {
    const doc = nsm.attest({ nonce });
    for (const p of flipPositions(doc.length, 120, [[doc.length - 96, doc.length]])) {
      if (rejection(flipped(doc, p), devOpts()) === "accepted")
        throw new Error(`flipping byte ${p} went undetected`);
    }
  });

  it("refuses malformed PCR configuration", () => {
    expect(() => new SimulatedNsm({ pki, pcrs: {} })).toThrow(/PCR0/);
    expect(() => new SimulatedNsm({ pki, pcrs: { 0: new Uint8Array(32) } })).toThrow(/48 bytes/);
    expect(() => new SimulatedNsm({ pki, pcrs: { 0: pcrs[0], 32: pcrs[0] } })).toThrow(/outside/);
    expect(() => nsm.attest({ userData: new Uint8Array(1025) })).toThrow(/1024/);
  });
});

describe("development PKI", () => {
  it("is a P-384 chain that OpenSSL also accepts, with the AWS extension profile", () => {
    const now = new Date();
    const pki = createDevelopmentPki({ now });
    const [root, int, leaf] = [pki.root, pki.intermediate, pki.leaf].map(
      (e) => new X509Certificate(e.der),
    ) as [X509Certificate, X509Certificate, X509Certificate];
    expect(root.verify(root.publicKey)).toBe(true);
    expect(int.verify(root.publicKey)).toBe(true);
    expect(leaf.verify(int.publicKey)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(false);
    expect(int.checkIssued(root)).toBe(true);
    expect(leaf.checkIssued(int)).toBe(true);
    expect([root.ca, int.ca, leaf.ca]).toEqual([true, true, false]);
    for (const c of [root, int, leaf])
      expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(3 * 3_600_000);
    expect(Math.abs(Date.parse(leaf.validFrom) - now.getTime())).toBeLessThan(1000);

    const parsed = parseCertificate(pki.intermediate.der);
    expect([parsed.ca, parsed.pathLen, parsed.keyUsage]).toEqual([true, 0, (1 << 5) | (1 << 6)]);
    expect(parseCertificate(pki.leaf.der).keyUsage).toBe(1);
  });

  it("serializes and restores, so another process can share the root", () => {
    const pki = createDevelopmentPki();
    const restored = restoreDevelopmentPki(serializeDevelopmentPki(pki));
    expect(restored).toEqual(pki);
    const doc = new SimulatedNsm({
      pki: restored,
      pcrs: { 0: pcr0ForCode([Uint8Array.of(7)]) },
    }).attest();
    const rootFromPem = pemToDer(derToPem(pki.root.der));
    expect(
      rejection(doc, {
        roots: [{ der: rootFromPem, development: true }],
        now: new Date(),
        allowDevelopment: true,
      }),
    ).toBe("accepted");

    const json = JSON.parse(serializeDevelopmentPki(pki));
    json.leaf.privateKey = json.root.privateKey;
    expect(() => restoreDevelopmentPki(JSON.stringify(json))).toThrow(/does not match/);
    const other = JSON.parse(serializeDevelopmentPki(createDevelopmentPki()));
    expect(() => restoreDevelopmentPki(JSON.stringify({ ...json, leaf: other.leaf }))).toThrow(
      /not a chain/,
    );
    expect(() => restoreDevelopmentPki("{}")).toThrow(/format/);
  });
});

describe("NSM device", () => {
  it.skipIf(existsSync("/dev/nsm"))("gives a clear error when /dev/nsm is absent", () => {
    expect(() => requestNsmAttestation({ nonce: Uint8Array.of(1) })).toThrow(NsmUnavailableError);
    expect(() => requestNsmAttestation()).toThrow(
      /\/dev\/nsm does not exist: not running inside an AWS Nitro Enclave/,
    );
  });
});
