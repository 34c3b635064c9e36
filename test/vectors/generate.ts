/**
 * ONLY FOR ADDING VECTORS. Writes the pinned wire-format vectors
 * (test/vectors/<format>.json) that do not exist yet, from the current
 * encoders; an existing file is never overwritten, because a vector's value is
 * that it was frozen before the code it checks changed. The test
 * (test/shared/wire-vectors.test.ts) never runs this.
 *
 *   node_modules/.bin/bun test/vectors/generate.ts            # write missing files
 *   node_modules/.bin/bun test/vectors/generate.ts --print F  # print F's JSON, write nothing
 *
 * To add a case to an existing format: --print it, copy the new case into the
 * frozen file by hand, and check that the old cases did not change.
 * All inputs are fixed, except the point-to-point envelope's nonce, which
 * PeerSession draws at random (so that case is frozen, not reproducible).
 */
import { createCipheriv } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bodyOf, encodeBody, type BodyMap } from "../../src/shared/wire/body.ts";
import {
  encodeFrame,
  FrameType,
  frameTypeName,
  type FrameType as FrameTypeCode,
} from "../../src/shared/wire/frame.ts";
import { toBody } from "../../src/shared/wire/enclave-codec.ts";
import { errorBody } from "../../src/shared/channel/rpc-errors.ts";
import {
  encodeList,
  encodeMessageHeader,
  type MessageHeader,
} from "../../src/shared/wire/protocol-message.ts";
import {
  readUnverifiedBroadcast,
  readUnverifiedHeader,
  readUnverifiedPointToPoint,
} from "../../src/shared/wire/peer-envelope-header.ts";
import {
  encodeAssociatedData,
  encodeSealedShare,
  SEAL_TAG_BYTES,
  type SealBinding,
} from "../../src/shared/wire/sealed-share.ts";
import { PeerSession } from "../../src/enclave/peer-envelope.ts";
import { toHex } from "../../src/shared/hex.ts";
import { FIXED, fixedBytes, peerKeysOf, peerVectorIdentities } from "./fixed-inputs.ts";
import { toJson, typedOf, type Json } from "./vector-json.ts";

const NOTE =
  "Frozen: written once by test/vectors/generate.ts and never regenerated. Add cases; never edit one.";
const out = new Map<string, Json>();
const file = (name: string, format: string, source: string, cases: Json[]) =>
  out.set(name, { format, source, note: NOTE, cases });

// ------------------------------------------------------------------ frames

const frameCase = (
  description: string,
  type: FrameTypeCode,
  correlationId: number,
  body: BodyMap,
): Json => {
  const bodyBytes = encodeBody(body);
  return {
    description,
    fields: { type: frameTypeName(type), typeCode: type, correlationId, body: toHex(bodyBytes) },
    hex: toHex(encodeFrame({ type, correlationId, body: bodyBytes })),
  };
};
file(
  "host-enclave-frame.json",
  "host-enclave channel frame, version 1",
  "src/shared/wire/frame.ts",
  [
    frameCase("request: HEALTH, empty body map", FrameType.HEALTH, 1, new Map()),
    frameCase(
      "request: CEREMONY_ABORT with a session id",
      FrameType.CEREMONY_ABORT,
      0x0102_0304,
      bodyOf({ sessionId: FIXED.sessionId }),
    ),
    frameCase("reply: OK to CEREMONY_ABORT", FrameType.OK, 0x0102_0304, bodyOf({ dropped: true })),
    frameCase(
      "reply: ERROR to a request, blaming a party",
      FrameType.ERROR,
      0xffff_ffff,
      errorBody("ceremony_failed", "peer message refused", 3),
    ),
    frameCase(
      "connection-level ERROR: correlation id 0",
      FrameType.ERROR,
      0,
      errorBody("bad_magic", 'stream does not start a frame with the magic "TS"'),
    ),
  ],
);

// ------------------------------------------------------------------ body encoding

const bodyCase = (description: string, body: BodyMap): Json => ({
  description,
  fields: typedOf(body) as Json,
  hex: toHex(encodeBody(body)),
});
file("enclave-body.json", "typed-map body encoding", "src/shared/wire/body.ts", [
  bodyCase("empty map", new Map()),
  bodyCase("uint: 0 and 2^53 - 1", bodyOf({ zero: 0, max: Number.MAX_SAFE_INTEGER })),
  bodyCase(
    "bytes: empty and three bytes",
    bodyOf({ none: new Uint8Array(), some: Uint8Array.of(0x00, 0x7f, 0xff) }),
  ),
  bodyCase("string: empty, ASCII and multi-byte UTF-8", bodyOf({ e: "", a: "ok", u: "né ✓ 𝄞" })),
  bodyCase("bool: false and true", bodyOf({ f: false, t: true })),
  bodyCase(
    "bytes array: empty and two items",
    bodyOf({ none: [], two: [Uint8Array.of(1), Uint8Array.of(2, 3)] }),
  ),
  bodyCase("nested map", bodyOf({ outer: bodyOf({ inner: bodyOf({ n: 1 }) }) })),
  bodyCase(
    'integer keys 0 and 255 beside string key "0"',
    new Map<number | string, number>([
      [0, 1],
      [255, 2],
      ["0", 3],
    ]),
  ),
]);

// ------------------------------------------------------------------ enclave operations

const opCase = (
  description: string,
  frame: string,
  direction: "request" | "reply",
  fields: object,
): Json => ({
  description,
  frame,
  direction,
  fields: toJson(fields),
  hex: toHex(encodeBody(toBody(fields))),
});
const errorCase = (
  description: string,
  fields: { code: string; message: string; party?: number },
): Json => ({
  description,
  frame: "ERROR",
  direction: "reply",
  fields,
  hex: toHex(encodeBody(errorBody(fields.code, fields.message, fields.party))),
});
const binding = {
  walletId: "w_vector",
  nodeId: "node-1",
  partyIndex: 1,
  generation: 0,
  publicKey: FIXED.publicKey,
};
// LOAD_SHARE's binding: the node is the enclave's own identity (PCR4), never a request field.
const { nodeId: _node, ...shareBinding } = binding;
// AWS's documented example credentials.
const credentials = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  sessionToken: "FwoGZXIvYXdzEXAMPLETOKEN",
};
const opaque = (what: string, n: number, seed: number) => ({ [what]: fixedBytes(n, seed) });
const doc = fixedBytes(48, 0xd0); // stands in for an attestation document: opaque bytes to the body
const msg = (seed: number) => fixedBytes(40, seed); // stands in for a sealed protocol message
file(
  "enclave-ops.json",
  "host-enclave operation bodies",
  "src/shared/wire/enclave-ops.ts, src/shared/wire/enclave-codec.ts",
  [
    opCase("HEALTH request: no fields", "HEALTH", "request", {}),
    opCase("HEALTH reply (with pcr4, the node identity)", "HEALTH", "reply", {
      status: "ok",
      pcr0: "ab".repeat(48),
      pcr4: "cd".repeat(48),
      loadedWallets: 2,
      openSessions: 1,
    }),
    opCase("ATTEST request with a nonce", "ATTEST", "request", opaque("nonce", 16, 0x10)),
    opCase("ATTEST reply (document bytes are opaque here)", "ATTEST", "reply", { document: doc }),
    opCase(
      "LOAD_SHARE request: the stored CiphertextBlob and per-call credentials; no node id, no data key",
      "LOAD_SHARE",
      "request",
      {
        ...shareBinding,
        sealed: fixedBytes(30, 0x30),
        ciphertextBlob: fixedBytes(24, 0x41),
        ...credentials,
      },
    ),
    opCase("LOAD_SHARE reply", "LOAD_SHARE", "reply", {
      walletId: "w_vector",
      generation: 0,
      partyIndex: 1,
    }),
    opCase("CEREMONY_START request: dkg", "CEREMONY_START", "request", {
      kind: "dkg",
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
      threshold: 2,
      parties: 3,
      partyIndex: 1,
      peerDocuments: [doc, doc],
      peerParties: [2, 3],
    }),
    opCase("CEREMONY_START request: sign with a path", "CEREMONY_START", "request", {
      kind: "sign",
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
      signers: [1, 3],
      digest: fixedBytes(32, 0xd1),
      path: "m/44/60/0/0/0",
      expectedGeneration: 4,
      peerDocuments: [doc],
      peerParties: [3],
    }),
    opCase("CEREMONY_START request: refresh", "CEREMONY_START", "request", {
      kind: "refresh",
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
      expectedGeneration: 4,
      peerDocuments: [doc, doc],
      peerParties: [2, 3],
    }),
    opCase("CEREMONY_START reply: phase-1 messages", "CEREMONY_START", "reply", {
      messages: [msg(1), msg(2)],
      generation: 0,
    }),
    opCase("CEREMONY_STEP request", "CEREMONY_STEP", "request", {
      sessionId: FIXED.sessionId,
      phase: 2,
      messages: [msg(3), msg(4)],
    }),
    opCase("CEREMONY_STEP reply: phase 4 of sign", "CEREMONY_STEP", "reply", {
      messages: [],
      generation: 4,
      signature: fixedBytes(65, 0x51),
    }),
    opCase("CEREMONY_STEP reply: phase 4 of dkg", "CEREMONY_STEP", "reply", {
      messages: [],
      generation: 0,
      publicKey: FIXED.publicKey,
      publicPackage: fixedBytes(20, 0x60),
      chainCode: fixedBytes(32, 0x70),
      partyIndex: 1,
    }),
    opCase("CEREMONY_ABORT request", "CEREMONY_ABORT", "request", { sessionId: FIXED.sessionId }),
    opCase("CEREMONY_ABORT reply", "CEREMONY_ABORT", "reply", { dropped: false }),
    opCase("SEAL_SHARE request: per-call credentials only", "SEAL_SHARE", "request", {
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
      ...credentials,
    }),
    opCase(
      "SEAL_SHARE reply: with the CiphertextBlob and key ARN to store",
      "SEAL_SHARE",
      "reply",
      {
        sealed: fixedBytes(30, 0x30),
        ciphertextBlob: fixedBytes(24, 0x41),
        kmsKeyId: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        generation: 0,
        partyIndex: 1,
        publicKey: FIXED.publicKey,
      },
    ),
    opCase("ACTIVATE_SHARE request", "ACTIVATE_SHARE", "request", {
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
    }),
    opCase("ACTIVATE_SHARE reply", "ACTIVATE_SHARE", "reply", {
      walletId: "w_vector",
      generation: 1,
      partyIndex: 1,
    }),
    // Issue 9 item 3: share-state statements and commit certificates (opaque bytes to the body;
    // their own layouts are pinned in share-state.json and wallet-statement.json).
    opCase(
      "CEREMONY_START reply: sign, with its share-state statement",
      "CEREMONY_START",
      "reply",
      {
        messages: [msg(1)],
        generation: 4,
        shareState: fixedBytes(200, 0x35),
      },
    ),
    opCase(
      "CEREMONY_STEP request: phase 2, with the peers' share-state statements",
      "CEREMONY_STEP",
      "request",
      {
        sessionId: FIXED.sessionId,
        phase: 2,
        messages: [msg(3), msg(4)],
        shareStates: [fixedBytes(200, 0x36), fixedBytes(200, 0x37)],
      },
    ),
    opCase("ACTIVATE_SHARE request: with a commit certificate", "ACTIVATE_SHARE", "request", {
      sessionId: FIXED.sessionId,
      walletId: "w_vector",
      certificateStatements: [fixedBytes(100, 0x38), fixedBytes(100, 0x39)],
      certificateDocuments: [doc, doc],
    }),
    // Issue 11 item 3: retiring a wallet (src/enclave/lifecycle-retire.ts).
    opCase("RETIRE_WALLET request", "RETIRE_WALLET", "request", {
      walletId: "w_vector",
      requestId: "retire-1",
      approvalRequest: fixedBytes(120, 0x3a),
      approvals: [fixedBytes(97, 0x3b), fixedBytes(97, 0x3c)],
    }),
    opCase("RETIRE_WALLET reply", "RETIRE_WALLET", "reply", {
      walletId: "w_vector",
      partyIndex: 2,
      generation: 3,
      policyHash: fixedBytes(32, 0x3d),
      approverKeyIds: [fixedBytes(32, 0x3e), fixedBytes(32, 0x3f)],
    }),
    // Issue 11 item 1: a lost node's enclave checks a share repair's evidence (src/enclave/supersession.ts).
    opCase("SUPERSEDED_SHARE request", "SUPERSEDED_SHARE", "request", {
      walletId: "w_vector",
      partyIndex: 5,
      generation: 0,
      publicKey: FIXED.publicKey,
      statements: [fixedBytes(100, 0x40), fixedBytes(100, 0x41)],
      documents: [doc, doc],
      nonce: fixedBytes(32, 0x45),
      activeProofs: [fixedBytes(150, 0x42), fixedBytes(150, 0x43)],
    }),
    opCase("SUPERSEDED_SHARE reply", "SUPERSEDED_SHARE", "reply", {
      walletId: "w_vector",
      partyIndex: 5,
      generation: 0,
      supersededBy: 1,
      holderPcr4: fixedBytes(48, 0x44),
    }),
    // The nonce the holders' active proofs must name, and a holder's proof (active-proof.ts).
    opCase("SUPERSESSION_NONCE request", "SUPERSESSION_NONCE", "request", {
      walletId: "w_vector",
    }),
    opCase("SUPERSESSION_NONCE reply", "SUPERSESSION_NONCE", "reply", {
      nonce: fixedBytes(32, 0x45),
    }),
    opCase("PROVE_ACTIVE request", "PROVE_ACTIVE", "request", {
      walletId: "w_vector",
      nonce: fixedBytes(32, 0x45),
    }),
    opCase("PROVE_ACTIVE reply", "PROVE_ACTIVE", "reply", {
      proof: fixedBytes(150, 0x46),
    }),
    errorCase("ERROR without a party", {
      code: "bad_request",
      message: "walletId must be 1-128 characters of [A-Za-z0-9._:-]",
    }),
    errorCase("ERROR blaming party 2", {
      code: "protocol_abort",
      message: "party 2 sent an inconsistent OT message",
      party: 2,
    }),
  ],
);

// ------------------------------------------------------------------ protocol messages

const headerCase = (description: string, h: MessageHeader, body: Uint8Array): Json => {
  const header = encodeMessageHeader(h);
  const whole = new Uint8Array(header.length + body.length);
  whole.set(header, 0);
  whole.set(body, header.length);
  return { description, fields: toJson({ ...h, body }), hex: toHex(whole) };
};
const sid = FIXED.sessionId;
file(
  "protocol-header.json",
  "DKLs23 protocol message header, version 1, and message list",
  "src/shared/wire/protocol-message.ts",
  [
    headerCase(
      "dkg phase 1, point to point 1 -> 2",
      { ceremony: "dkg", phase: 1, from: 1, to: 2, sessionId: sid },
      fixedBytes(8, 0x80),
    ),
    headerCase(
      "sign phase 3, broadcast from 3",
      { ceremony: "sign", phase: 3, from: 3, to: 0, sessionId: sid },
      fixedBytes(8, 0x90),
    ),
    headerCase(
      "refresh phase 2, 16 -> 15, empty body",
      { ceremony: "refresh", phase: 2, from: 16, to: 15, sessionId: sid },
      new Uint8Array(),
    ),
    {
      description: "message list: two items",
      fields: toJson({ items: [Uint8Array.of(1, 2, 3), new Uint8Array()] }),
      hex: toHex(encodeList([Uint8Array.of(1, 2, 3), new Uint8Array()])),
    },
    {
      description: "message list: empty",
      fields: toJson({ items: [] }),
      hex: toHex(encodeList([])),
    },
  ],
);

// ------------------------------------------------------------------ peer envelopes

const identities = peerVectorIdentities();
const sessionOf = (me: number) =>
  new PeerSession({ sessionId: sid, me, keys: peerKeysOf(me), peers: identities });
const core = (h: MessageHeader, body: Uint8Array) => {
  const m = new Uint8Array(37 + body.length);
  m.set(encodeMessageHeader(h), 0);
  m.set(body, 37);
  return m;
};
/** The decoded header, then the parts after it. */
const envelopeFields = (e: Uint8Array) => {
  const header = readUnverifiedHeader(e);
  if (header.to !== 0) {
    const { nonce, ciphertext, tag } = readUnverifiedPointToPoint(e);
    return { header, nonce, ciphertext, tag };
  }
  const { body, signature } = readUnverifiedBroadcast(e);
  return { header, body, signature };
};
const p2pCore = core(
  { ceremony: "dkg", phase: 1, from: 1, to: 2, sessionId: sid },
  fixedBytes(48, 0xa0),
);
const p2p = sessionOf(1).seal(p2pCore);
const bcastCore = core(
  { ceremony: "dkg", phase: 2, from: 2, to: 0, sessionId: sid },
  fixedBytes(48, 0xb0),
);
const bcast = sessionOf(2).seal(bcastCore);
out.set("peer-envelope.json", {
  format: "peer envelope (protected DKLs23 message, version 0x81)",
  source: "src/shared/wire/peer-envelope-header.ts, src/enclave/peer-envelope.ts",
  note: NOTE,
  keys: FIXED.peerSeeds.map((s, k) =>
    toJson({
      party: k + 1,
      ...s,
      x25519Public: identities.get(k + 1)!.x25519Public,
      ed25519Public: identities.get(k + 1)!.ed25519Public,
    }),
  ),
  sessionId: toHex(sid),
  cases: [
    {
      description: "point to point, dkg phase 1, party 1 -> party 2 (AES-256-GCM, random nonce)",
      kind: "p2p",
      recipient: 2,
      core: toHex(p2pCore),
      fields: toJson(envelopeFields(p2p)),
      hex: toHex(p2p),
    },
    {
      description: "broadcast, dkg phase 2, from party 2 (Ed25519, deterministic)",
      kind: "broadcast",
      recipient: 1,
      core: toHex(bcastCore),
      fields: toJson(envelopeFields(bcast)),
      hex: toHex(bcast),
    },
  ],
});

// ------------------------------------------------------------------ sealed share

const sealedCase = (
  description: string,
  b: SealBinding,
  dataKey: Uint8Array,
  nonce: Uint8Array,
  share: Uint8Array,
): Json => {
  const ad = encodeAssociatedData(b);
  const cipher = createCipheriv("aes-256-gcm", dataKey, nonce, { authTagLength: SEAL_TAG_BYTES });
  cipher.setAAD(ad);
  const ciphertext = cipher.update(share);
  cipher.final();
  const parts = { nonce, ciphertext, tag: cipher.getAuthTag() };
  return {
    description,
    binding: toJson(b),
    dataKey: toHex(dataKey),
    share: toHex(share),
    associatedData: toHex(ad),
    fields: toJson(parts),
    hex: toHex(encodeSealedShare(parts)),
  };
};
file(
  "sealed-share.json",
  "sealed key share, version 1, and its associated data",
  "src/shared/wire/sealed-share.ts, src/enclave/seal.ts",
  [
    sealedCase(
      "generation 0, ASCII ids (the share bytes stand in for a real share)",
      binding,
      fixedBytes(32, 0xc0),
      fixedBytes(12, 0xe0),
      fixedBytes(64, 0x01),
    ),
    sealedCase(
      "generation 2^32 - 1, party 255, multi-byte UTF-8 node id, odd public-key prefix",
      {
        walletId: "w:é",
        nodeId: "nöde-16",
        partyIndex: 255,
        generation: 0xffff_ffff,
        publicKey: FIXED.publicKeyOdd,
      },
      fixedBytes(32, 0xc1),
      fixedBytes(12, 0xe1),
      Uint8Array.of(0x42),
    ),
  ],
);

// ------------------------------------------------------------------ write

const printIndex = process.argv.indexOf("--print");
if (printIndex >= 0) {
  const name = process.argv[printIndex + 1] ?? "";
  if (!out.has(name))
    throw new Error(`no vector file ${name}; one of ${[...out.keys()].join(", ")}`);
  console.log(JSON.stringify(out.get(name), null, 2));
} else {
  for (const [name, json] of out) {
    const path = join(import.meta.dirname, name);
    if (existsSync(path)) {
      console.log(`kept ${name} (frozen)`);
      continue;
    }
    writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`wrote ${name}`);
  }
}
