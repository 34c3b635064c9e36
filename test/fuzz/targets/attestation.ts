/**
 * Fuzz targets for attestation documents: the strict CBOR codec, the COSE_Sign1 envelope and
 * payload, the Nitro-profile X.509 reader and the whole verifier, from real AWS documents
 * (../shared/fixtures/nitro/) and a simulated NSM's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { pemToDer } from "../../../src/attestation/aws-root.ts";
import {
  CborError,
  decodeAttestationDocument,
  decodeCbor,
  encodeCbor,
  MAX_DOCUMENT_BYTES,
  type Cbor,
} from "../../../src/attestation/cose.ts";
import {
  AttestationError,
  parseCertificate,
  verifyAttestationDocument,
  type TrustedRoot,
  type VerifyOptions,
} from "../../../src/attestation/verifier.ts";
import { createDevelopmentPki } from "../../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../../src/dev/simulated-nsm.ts";
import { bytesFrom, must, outcome, sameBytes, target, type AnyTarget } from "../harness.ts";
import { haveNitroFixtures, NITRO_FIXTURES, nitroFixture, present } from "../seeds.ts";

const FULL = 100_000;
const SAMPLE = 1_500;

const pki = createDevelopmentPki();
const devDoc = new SimulatedNsm({ pki, pcrs: { 0: new Uint8Array(48).fill(0xa5) } }).attest({
  userData: new Uint8Array(81).fill(1),
  nonce: new Uint8Array(16).fill(2),
  publicKey: new Uint8Array(294).fill(3),
});
const devNow = new Date();
const awsDoc = nitroFixture("attestation-2024-09-07.b64");
const docs = present([awsDoc, nitroFixture("attestation-debug-2024-09-07.b64"), devDoc]);
const parsed = docs.map((d) => decodeAttestationDocument(d));
const payloads = parsed.map((p) => p.cose.payload);
const certificates = parsed.flatMap((p) => [...p.document.cabundle, p.document.certificate]);

/** Small items of the kinds a payload holds, so mutations often land inside one. */
const smallCbor = [
  encodeCbor(
    new Map<string, Cbor>([
      ["digest", "SHA384"],
      ["timestamp", 1_725_719_859_545],
    ]),
  ),
  encodeCbor([new Uint8Array(4), -35, null, true, new Map([[1, -35]])]),
];
const lengths = [24, 0x100, 0x1_0000, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_BYTES + 1];
const documentBytes = bytesFrom(docs, { lengths, maxRandom: 300 });

const cbor = target({
  name: "cose: decodeCbor (documents and payloads)",
  arbitrary: bytesFrom([...docs, ...payloads, ...smallCbor], { lengths, maxRandom: 300 }),
  check: (bytes) => {
    const r = outcome(() => decodeCbor(bytes), [CborError]);
    // Shortest-form heads, definite lengths, no duplicates: one reading per document.
    if (r.accepted)
      must(sameBytes(encodeCbor(r.value), bytes), "CBOR does not re-encode to the input");
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

const cose = target({
  name: "cose: decodeAttestationDocument (COSE_Sign1 and payload)",
  arbitrary: documentBytes,
  check: (bytes) => outcome(() => decodeAttestationDocument(bytes), [AttestationError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

const x509 = target({
  name: "verifier: parseCertificate (Nitro-profile X.509)",
  arbitrary: bytesFrom(certificates, { lengths: [0x80, 0x81, 0x100, 0x1_0000], maxRandom: 300 }),
  check: (der) => outcome(() => parseCertificate(der), [AttestationError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

/** Each seed document with the roots and instant it verifies under. */
const awsOptions: VerifyOptions | undefined = haveNitroFixtures
  ? {
      roots: [
        {
          der: pemToDer(
            readFileSync(join(NITRO_FIXTURES, "aws-nitro-enclaves-root-g1.pem"), "utf8"),
          ),
          development: false,
        },
      ],
      now: new Date("2024-09-07T14:37:40Z"),
    }
  : undefined;
const devRoots: TrustedRoot[] = [{ der: pki.root.der, development: true }];
const devOptions: VerifyOptions = { roots: devRoots, now: devNow, allowDevelopment: true };

const verifier = target({
  name: "verifier: verifyAttestationDocument (real AWS and simulated documents)",
  arbitrary: fc.tuple(documentBytes, fc.boolean()),
  check: ([doc, useAws]) => {
    const opts = useAws && awsOptions ? awsOptions : devOptions;
    const r = outcome(() => verifyAttestationDocument(doc, opts), [AttestationError]);
    // Only a genuine payload and signature verify; the unprotected header and the optional tag are not signed.
    if (r.accepted) {
      const { cose } = decodeAttestationDocument(doc);
      must(
        parsed.some(
          (p) =>
            sameBytes(p.cose.payload, cose.payload) && sameBytes(p.cose.signature, cose.signature),
        ),
        "a modified payload or signature verified",
      );
    }
    return r;
  },
  runs: { sample: 500, full: FULL },
  timeBoundMs: 2_000,
});

export const attestationTargets: AnyTarget[] = [cbor, cose, x509, verifier];
