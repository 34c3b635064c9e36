/**
 * Fuzz targets for the formats of src/shared/wire: host–enclave frames and bodies, protocol
 * messages and lists, the peer-envelope clear layout, sealed-share blobs and their associated
 * data, bounded JSON, node-RPC argument checkers and KMS JSON accessors.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import {
  BodyError,
  decodeBody,
  encodeBody,
  type BodyMap,
  type BodyValue,
} from "../../../src/shared/wire/body.ts";
import { fromBody, toBody } from "../../../src/shared/wire/enclave-codec.ts";
import { CodedError } from "../../../src/shared/wire/errors.ts";
import {
  encodeFrame,
  FRAME_HEADER_LEN,
  FRAME_MAGIC_0,
  FRAME_MAGIC_1,
  FRAME_VERSION,
  FrameDecoder,
  FrameError,
  FrameType,
  MAX_BODY_LEN,
  type Frame,
} from "../../../src/shared/wire/frame.ts";
import {
  decodeJson,
  encodeJson,
  JsonPayloadError,
  REQUEST_LIMITS,
  RPC_LIMITS,
} from "../../../src/shared/wire/json-payload.ts";
import {
  decodeRpcPayload,
  encodeRpcPayload,
  MAX_RPC_PAYLOAD_BYTES,
  RpcPayloadError,
} from "../../../src/shared/wire/rpc-payload.ts";
import { KmsError } from "../../../src/devkms/errors.ts";
import * as kmsJson from "../../../src/shared/wire/kms-json.ts";
import {
  checkNodeOpArgs,
  NODE_OP_NAMES,
  type NodeOpName,
} from "../../../src/shared/wire/node-rpc.ts";
import {
  encodeBroadcast,
  encodeEnvelopeHeader,
  encodePointToPoint,
  MAX_SEALED_LEN,
  PeerEnvelopeFormatError,
  readUnverifiedBroadcast,
  readUnverifiedHeader,
  readUnverifiedPointToPoint,
} from "../../../src/shared/wire/peer-envelope-header.ts";
import {
  decodeList,
  encodeList,
  encodeMessageHeader,
  HEADER_LEN,
  MAX_LIST_ITEMS,
  MAX_MESSAGE_LEN,
  MessageFormatError,
  parseMessage,
} from "../../../src/shared/wire/protocol-message.ts";
import {
  encodeAssociatedData,
  encodeSealedShare,
  MAX_AD_BYTES,
  MAX_SEALED_BYTES,
  parseAssociatedData,
  parseSealedShare,
  SealedShareFormatError,
} from "../../../src/shared/wire/sealed-share.ts";
import {
  encodeShareState,
  encodeSignedShareState,
  MAX_SIGNED_SHARE_STATE_BYTES,
  parseSignedShareStateUnverified,
  ShareStateError,
} from "../../../src/shared/wire/share-state.ts";
import {
  MAX_SIGNED_SEAL_RECEIPT_BYTES,
  encodeSealReceipt,
  encodeSignedSealReceipt,
  parseSignedSealReceiptUnverified,
  SealReceiptError,
} from "../../../src/shared/wire/seal-receipt.ts";
import {
  ActiveProofError,
  encodeActiveProof,
  encodeSignedActiveProof,
  MAX_SIGNED_ACTIVE_PROOF_BYTES,
  parseSignedActiveProofUnverified,
} from "../../../src/shared/wire/active-proof.ts";
import { fromHex } from "../../../src/shared/hex.ts";
import {
  bytesFrom,
  concat,
  hostileJson,
  hostileString,
  isViewInto,
  must,
  outcome,
  sameBytes,
  target,
  type AnyTarget,
} from "../harness.ts";
import {
  CommitProofError,
  decodeCommitProof,
  encodeCommitProof,
  MAX_COMMIT_PROOF_BYTES,
} from "../../../src/shared/wire/commit-proof.ts";
import { vectorBytes, vectorFields, vectorFile } from "../seeds.ts";

const FULL = 100_000;
const SAMPLE = 1_500;
/** Cheap pure decoders: anything near this is a hang or a giant allocation, not scheduling noise. */
const FAST_MS = 1_000;

// ---------------------------------------------------------------- seeds

const frameSeeds = vectorBytes("host-enclave-frame.json");
const bodySeeds = [
  ...vectorBytes("enclave-body.json"),
  ...vectorBytes("enclave-ops.json"),
  // Keys that are special to plain objects or to the codec.
  encodeBody(
    new Map<string, BodyValue>([
      ["__proto__", Uint8Array.of(1, 2)],
      ["signers", Uint8Array.of(1, 3)],
      ["constructor", "x"],
      ["peerParties", new Uint8Array(0)],
    ]),
  ),
];
const opsCases = vectorFile("enclave-ops.json").cases;
const headerCases = vectorFile("protocol-header.json").cases;
const messageSeeds = headerCases
  .filter((c) => !c.description.startsWith("message list"))
  .map((c) => fromHex(c.hex));
const listSeeds = [
  ...headerCases.filter((c) => c.description.startsWith("message list")).map((c) => fromHex(c.hex)),
  encodeList(messageSeeds),
];
const envelopeSeeds = vectorBytes("peer-envelope.json");
const sealedCases = vectorFile("sealed-share.json").cases;
const sealedSeeds = sealedCases.map((c) => fromHex(c.hex));
const adSeeds = sealedCases.map((c) => fromHex(c.associatedData as string));
const shareStateSeeds = (
  vectorFile("share-state.json") as unknown as { statements: { signed: string }[] }
).statements.map((c) => fromHex(c.signed));
const sealReceiptSeeds = (
  vectorFile("seal-receipt.json") as unknown as { receipts: { signed: string }[] }
).receipts.map((c) => fromHex(c.signed));

/** Frames back to back, as a stream carries them. */
const streamSeeds = [...frameSeeds, concat(frameSeeds), concat([frameSeeds[0]!, frameSeeds[0]!])];

// ---------------------------------------------------------------- frames

/** Cuts `bytes` at the given points, as a socket might deliver them. */
function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  return out;
}

const maxBodyLens = fc.constantFrom(MAX_BODY_LEN, 64 * 1024, 1024, 64, 0);

const frameStream = target({
  name: "frame: FrameDecoder.push (any chunking)",
  arbitrary: fc.record({
    bytes: bytesFrom(streamSeeds, { lengths: [MAX_BODY_LEN, MAX_BODY_LEN + 1, 1024, 1025] }),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
    maxBodyLen: maxBodyLens,
  }),
  check: ({ bytes, cuts, maxBodyLen }) => {
    const decoder = new FrameDecoder({ maxBodyLen });
    const frames: Frame[] = [];
    let error: FrameError | null = null;
    for (const chunk of chunked(bytes, cuts)) {
      // push never throws: a broken stream comes back as `error`.
      const r = outcome(() => decoder.push(chunk), []);
      if (!r.accepted) break;
      frames.push(...r.value.frames);
      must(
        decoder.bufferedBytes <= FRAME_HEADER_LEN + maxBodyLen,
        "decoder holds beyond its bound",
      );
      if (r.value.error) {
        must(r.value.error instanceof FrameError, "error is not a FrameError");
        must(error === null || r.value.error === error, "a broken stream changed its error");
        error = r.value.error;
      }
    }
    for (const f of frames) must(f.body.length <= maxBodyLen, "a frame body exceeds maxBodyLen");
    // What was decoded is exactly the start of the stream, frame for frame.
    const again = concat(frames.map((f) => encodeFrame(f)));
    must(sameBytes(again, bytes.subarray(0, again.length)), "frames do not re-encode to the input");
    if (error) {
      must(decoder.push(Uint8Array.of(0)).error === error, "error is not sticky");
      return { accepted: false, error };
    }
    must(again.length + decoder.bufferedBytes === bytes.length, "bytes went missing");
    return { accepted: true, value: frames };
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

const frameTypes = Object.values(FrameType);

const frameOversize = target({
  name: "frame: announced body beyond maxBodyLen refused at the header",
  refusesEverything: true,
  arbitrary: fc
    .record({
      maxBodyLen: fc.oneof(maxBodyLens, fc.integer({ min: 0, max: MAX_BODY_LEN })),
      type: fc.constantFrom(...frameTypes),
      correlationId: fc.nat({ max: 0xffff_ffff }),
      excess: fc.oneof(fc.constant(1), fc.nat({ max: 0xffff_ffff })),
    })
    .map((r) => ({ ...r, announced: Math.min(0xffff_ffff, r.maxBodyLen + 1 + r.excess) })),
  check: ({ maxBodyLen, type, correlationId, announced }) => {
    const header = new Uint8Array(FRAME_HEADER_LEN);
    header.set([FRAME_MAGIC_0, FRAME_MAGIC_1, FRAME_VERSION, type]);
    new DataView(header.buffer).setUint32(6, correlationId);
    new DataView(header.buffer).setUint32(10, announced);
    const decoder = new FrameDecoder({ maxBodyLen });
    const r = decoder.push(header);
    must(r.error?.code === "frame_too_large", `announced ${announced} > ${maxBodyLen} not refused`);
    must(r.error.correlationId === correlationId, "refusal lost the correlation id");
    // Refused before any body buffer exists: nothing of the announced size was allocated.
    must(Reflect.get(decoder, "body") === null && decoder.bufferedBytes === 0, "body allocated");
    return { accepted: false, error: r.error };
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- bodies

function bodyViews(m: BodyMap, input: Uint8Array): boolean {
  for (const v of m.values()) {
    if (v instanceof Uint8Array && !isViewInto(v, input)) return false;
    if (Array.isArray(v) && !v.every((x: Uint8Array) => isViewInto(x, input))) return false;
    if (v instanceof Map && !bodyViews(v, input)) return false;
  }
  return true;
}

const bodyLengths = [0x40, 0x41, MAX_BODY_LEN, MAX_BODY_LEN + 1];
const bodyInput = fc.record({
  bytes: bytesFrom(bodySeeds, { lengths: bodyLengths }),
  maxLen: fc.constantFrom(MAX_BODY_LEN, 4096, 16),
});

const body = target({
  name: "body: decodeBody",
  arbitrary: bodyInput,
  check: ({ bytes, maxLen }) => {
    const r = outcome(() => decodeBody(bytes, maxLen), [BodyError]);
    if (r.accepted) {
      // One encoding per value: decoding accepts only what encoding would write.
      must(
        sameBytes(encodeBody(r.value, maxLen), bytes),
        "decoded body does not re-encode to the input",
      );
      must(bodyViews(r.value, bytes), "a decoded byte value is not a view into the input");
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

const byKey = (m: BodyMap): BodyMap =>
  new Map([...m].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)));

const codec = target({
  name: "enclave-codec: fromBody (decoded bodies to operation objects)",
  arbitrary: bodyInput,
  check: ({ bytes, maxLen }) => {
    const r = outcome(
      () => fromBody<Record<string, unknown>>(decodeBody(bytes, maxLen)),
      [BodyError],
    );
    if (r.accepted) {
      // Every field survives as an own, enumerable property ("__proto__" included).
      must(
        Object.getPrototypeOf(r.value) === Object.prototype,
        "fromBody changed the object's prototype",
      );
      // Objects list integer-like keys first, so compare the fields in one order.
      must(
        sameBytes(encodeBody(byKey(toBody(r.value))), encodeBody(byKey(decodeBody(bytes, maxLen)))),
        "fromBody lost or changed a field",
      );
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- protocol messages

const message = target({
  name: "protocol-message: parseMessage",
  arbitrary: bytesFrom(messageSeeds, { maxRandom: 128 }),
  check: (bytes) => {
    const r = outcome(() => parseMessage(bytes), [MessageFormatError]);
    if (r.accepted) {
      must(
        sameBytes(encodeMessageHeader(r.value), bytes.subarray(0, HEADER_LEN)),
        "header does not re-encode",
      );
      must(
        r.value.bytes === bytes && isViewInto(r.value.sessionId, bytes),
        "parse copied or moved the input",
      );
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

const list = target({
  name: "protocol-message: decodeList",
  arbitrary: bytesFrom(listSeeds, {
    lengths: [MAX_MESSAGE_LEN, MAX_MESSAGE_LEN + 1, MAX_LIST_ITEMS, MAX_LIST_ITEMS + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => decodeList(bytes), [MessageFormatError]);
    if (r.accepted) {
      must(r.value.length <= MAX_LIST_ITEMS, "too many items accepted");
      must(
        r.value.every((m) => m.length <= MAX_MESSAGE_LEN && isViewInto(m, bytes)),
        "item out of bounds",
      );
      must(sameBytes(encodeList(r.value), bytes), "list does not re-encode to the input");
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- peer envelopes (layout)

const envelopeHeader = target({
  name: "peer-envelope-header: readUnverifiedHeader / PointToPoint / Broadcast",
  arbitrary: bytesFrom(envelopeSeeds, { maxRandom: 256 }),
  check: (bytes) => {
    const r = outcome(() => {
      const h = readUnverifiedHeader(bytes);
      must(
        sameBytes(encodeEnvelopeHeader(h), bytes.subarray(0, HEADER_LEN)),
        "header does not re-encode",
      );
      must(bytes.length <= MAX_SEALED_LEN, "oversized envelope read");
      if (h.to === 0) {
        const b = readUnverifiedBroadcast(bytes);
        must(sameBytes(encodeBroadcast(b), bytes), "broadcast does not re-encode");
        return b;
      }
      const p = readUnverifiedPointToPoint(bytes);
      must(sameBytes(encodePointToPoint(p), bytes), "point-to-point does not re-encode");
      return p;
    }, [PeerEnvelopeFormatError]);
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- sealed shares (layout)

const sealedShare = target({
  name: "sealed-share: parseSealedShare",
  arbitrary: bytesFrom(sealedSeeds, { lengths: [MAX_SEALED_BYTES, MAX_SEALED_BYTES + 1] }),
  check: (bytes) => {
    const r = outcome(() => parseSealedShare(bytes), [SealedShareFormatError]);
    if (r.accepted) {
      must(sameBytes(encodeSealedShare(r.value), bytes), "sealed share does not re-encode");
      must(isViewInto(r.value.ciphertext, bytes), "ciphertext copied");
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

const associatedData = target({
  name: "sealed-share: parseAssociatedData",
  arbitrary: bytesFrom(adSeeds, { lengths: [33, 34, 256, 257, MAX_AD_BYTES + 1] }),
  check: (bytes) => {
    const r = outcome(() => parseAssociatedData(bytes), [SealedShareFormatError]);
    if (r.accepted)
      must(sameBytes(encodeAssociatedData(r.value), bytes), "associated data does not re-encode");
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- share-state statements

const shareState = target({
  name: "share-state: parseSignedShareStateUnverified",
  arbitrary: bytesFrom(shareStateSeeds, {
    lengths: [MAX_SIGNED_SHARE_STATE_BYTES, MAX_SIGNED_SHARE_STATE_BYTES + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => parseSignedShareStateUnverified(bytes), [ShareStateError]);
    if (r.accepted)
      must(
        sameBytes(
          encodeSignedShareState(encodeShareState(r.value.statement), r.value.signature),
          bytes,
        ),
        "share-state statement does not re-encode",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- seal receipts

const sealReceipt = target({
  name: "seal-receipt: parseSignedSealReceiptUnverified",
  arbitrary: bytesFrom(sealReceiptSeeds, {
    lengths: [MAX_SIGNED_SEAL_RECEIPT_BYTES, MAX_SIGNED_SEAL_RECEIPT_BYTES + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => parseSignedSealReceiptUnverified(bytes), [SealReceiptError]);
    if (r.accepted)
      must(
        sameBytes(
          encodeSignedSealReceipt(encodeSealReceipt(r.value.receipt), r.value.signature),
          bytes,
        ),
        "seal receipt does not re-encode",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- active proofs

/** Well-formed signed proofs (the signature's bytes are arbitrary: nothing here checks it). */
const activeProofSeeds = ["w-1", "w".repeat(128)].map((walletId, k) =>
  encodeSignedActiveProof(
    encodeActiveProof({
      nonce: new Uint8Array(32).fill(k + 1),
      walletId,
      partyIndex: k + 1,
      generation: 7 * k,
      publicKey: Uint8Array.from([2, ...new Uint8Array(32).fill(0x11)]),
      parties: 3,
      publicPackageHash: new Uint8Array(32).fill(0x33 + k),
    }),
    new Uint8Array(64).fill(0x5a),
  ),
);

const activeProof = target({
  name: "active-proof: parseSignedActiveProofUnverified (a holder's proof of its loaded share)",
  arbitrary: bytesFrom(activeProofSeeds, {
    lengths: [MAX_SIGNED_ACTIVE_PROOF_BYTES, MAX_SIGNED_ACTIVE_PROOF_BYTES + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => parseSignedActiveProofUnverified(bytes), [ActiveProofError]);
    if (r.accepted)
      must(
        sameBytes(
          encodeSignedActiveProof(encodeActiveProof(r.value.proof), r.value.signature),
          bytes,
        ),
        "active proof does not re-encode",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- commit proofs

/** Real signed receipts, framed as a node stores and answers them (one to three per proof). */
const commitProofSeeds = [1, 2, 3].map((k) => encodeCommitProof(sealReceiptSeeds.slice(0, k)));

const commitProof = target({
  name: "commit-proof: decodeCommitProof (a peer's proof of a commit)",
  arbitrary: bytesFrom(commitProofSeeds, {
    lengths: [MAX_COMMIT_PROOF_BYTES, MAX_COMMIT_PROOF_BYTES + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => decodeCommitProof(bytes), [CommitProofError]);
    if (r.accepted)
      must(sameBytes(encodeCommitProof(r.value), bytes), "commit proof does not re-encode");
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- bounded JSON

const opFields = opsCases.filter((c) => c.direction === "request").map(vectorFields);
const jsonSeeds = [
  ...opFields.map((f) => encodeJson({ op: "start", args: f })),
  encodeJson({ ok: true, result: { messages: [new Uint8Array(40)], generation: 0 } }),
  encodeJson({ requestId: "r-1", walletId: "w-1", digest: "ab".repeat(32), path: "m/0/7" }),
  encodeJson({ ok: false, error: { code: "bad_request", message: "x", node: "node-1", party: 2 } }),
].map((b) => new Uint8Array(b));

/** JSON text: mutated real payloads, hostile JSON values, nesting bombs, random bytes. */
export const jsonBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: bytesFrom(jsonSeeds, { maxRandom: 256 }) },
  {
    weight: 3,
    arbitrary: hostileJson.map((v) => new TextEncoder().encode(JSON.stringify(v) ?? "null")),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 200 }), fc.constantFrom("[", '{"a":', '[{"$b64":'))
      .map(([n, open]) => new TextEncoder().encode(open.repeat(n))),
  },
);

const json = target({
  name: "json-payload: decodeJson (RPC and request limits)",
  arbitrary: fc.tuple(
    jsonBytes,
    fc.constantFrom(RPC_LIMITS, REQUEST_LIMITS, { maxBytes: 64, maxDepth: 2 }),
  ),
  check: ([bytes, limits]) => {
    const r = outcome(() => decodeJson(bytes, limits), [JsonPayloadError]);
    if (r.accepted) {
      // Decoding and encoding agree: what was read is what would be written (bytes included).
      const roomy = { maxBytes: 4 * limits.maxBytes + 1024, maxDepth: limits.maxDepth };
      must(
        isDeepStrictEqual(decodeJson(encodeJson(r.value, roomy), roomy), r.value),
        "JSON does not round-trip",
      );
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

const rpcPayload = target({
  name: "rpc-payload: decodeRpcPayload (binary node RPC)",
  arbitrary: bytesFrom(vectorBytes("rpc-payload.json"), {
    lengths: [MAX_RPC_PAYLOAD_BYTES, MAX_RPC_PAYLOAD_BYTES + 1],
  }),
  check: (bytes) => {
    const r = outcome(() => decodeRpcPayload(bytes), [RpcPayloadError]);
    // Decoding and encoding agree: what was read is what would be written (bytes included).
    if (r.accepted)
      must(
        isDeepStrictEqual(decodeRpcPayload(encodeRpcPayload(r.value)), r.value),
        "binary payload does not round-trip",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- node-RPC argument checkers

const validArgs: Record<NodeOpName, Record<string, unknown>> = (() => {
  const start = opFields.find((f) => f.kind === "sign")!;
  const step = opFields.find((f) => "phase" in f)!;
  const sessionId = step.sessionId as Uint8Array;
  const wallet = {
    walletId: "w-1",
    threshold: 2,
    parties: 3,
    publicKey: Uint8Array.of(2, ...new Uint8Array(32)),
    publicPackage: new Uint8Array(100),
    chainCode: new Uint8Array(32),
  };
  return {
    prepare: { walletId: "w-1" },
    attestation: {},
    start,
    step,
    abort: { sessionId },
    persist: {
      kind: "dkg",
      sessionId,
      wallet,
      final: { messages: [], generation: 0, partyIndex: 1 },
    },
    commit: { kind: "refresh", sessionId, walletId: "w-1", generation: 3 },
    rollback: { kind: "dkg", sessionId, walletId: "w-1" },
    walletInfo: { walletId: "w-1" },
    listWallets: {},
    requestContext: { kind: "sign", requestId: "r-1", walletId: "w-1" },
    ceremonyOutcome: { walletId: "w-1", sessionId },
    retireWallet: { walletId: "w-1", requestId: "r-1" },
    retiredParty: { walletId: "w-1" },
    recordMembers: {
      walletId: "w-1",
      generation: 2,
      members: [{ partyIndex: 1, nodeId: "node-1" }],
    },
    checkReplaced: { walletId: "w-1" },
    proveActive: { walletId: "w-1", nonce: new Uint8Array(32).fill(9) },
  };
})();

/** A hostile value for a field: wrong types, edge numbers, near-miss bytes and lists. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileJson,
  fc.uint8Array({ maxLength: 70 }),
  fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 66 }),
  fc.array(fc.integer({ min: -2, max: 20 }), { maxLength: 18 }),
  fc.constant(undefined),
);

/** Valid arguments of `op` with some fields replaced, removed or added. */
function argsFor(op: NodeOpName): fc.Arbitrary<unknown> {
  const base = validArgs[op];
  const keys = Object.keys(base);
  const edits = fc.array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...(keys.length ? keys : ["x"]), "walletId", "extra"),
        hostileString,
      ),
      fieldValue,
    ),
    { maxLength: 3 },
  );
  return fc.oneof(
    {
      weight: 8,
      arbitrary: edits.map((es) =>
        es.reduce((o, [k, v]) => Object.assign({}, o, { [k]: v }), base),
      ),
    },
    { weight: 1, arbitrary: fieldValue },
  );
}

const nodeRpcArgs = target({
  name: "node-rpc: checkNodeOpArgs (every op)",
  arbitrary: fc
    .constantFrom(...NODE_OP_NAMES)
    .chain((op) => fc.tuple(fc.constant(op), argsFor(op))),
  check: ([op, args]) => {
    const r = outcome(() => checkNodeOpArgs(op, args), [CodedError]);
    if (!r.accepted)
      must((r.error as CodedError).code === "bad_request", "refusal is not bad_request");
    else
      must(
        isDeepStrictEqual(checkNodeOpArgs(op, r.value), r.value),
        "checked args do not re-check",
      );
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

// ---------------------------------------------------------------- KMS JSON accessors

const kmsFields = [
  "KeyId",
  "Plaintext",
  "CiphertextBlob",
  "EncryptionContext",
  "DryRun",
  "NumberOfBytes",
];
const kmsObject: fc.Arbitrary<unknown> = fc.oneof(
  hostileJson,
  fc.dictionary(
    fc.constantFrom(...kmsFields),
    fc.oneof(fieldValue, fc.base64String({ maxLength: 40 })),
    {
      maxKeys: 6,
    },
  ),
  fc.record({
    EncryptionContext: fc.dictionary(hostileString, fc.oneof(hostileString, hostileJson), {
      maxKeys: 5,
    }),
  }),
  fc
    .tuple(
      fc.constantFrom(...kmsFields),
      fc.string({ minLength: 0, maxLength: 12000 }).map((s) => s.replace(/[^A-Za-z0-9+/=]/g, "A")),
    )
    .map(([k, v]) => ({ [k]: v })),
);

const kms = target({
  name: "kms-json: field accessors (strings, integers, booleans, base64 blobs, context)",
  arbitrary: kmsObject,
  check: (v) =>
    outcome(() => {
      const o = kmsJson.asObject(v, "body");
      kmsJson.refuseDryRun(o);
      kmsJson.optionalString(o, "KeyId", kmsJson.LIMITS.keyId);
      kmsJson.optionalInteger(o, "NumberOfBytes", 1, 1024);
      const ctx = kmsJson.encryptionContext(o);
      let size = 0;
      for (const [k, x] of ctx) size += Buffer.byteLength(k) + Buffer.byteLength(x);
      must(size <= kmsJson.LIMITS.encryptionContextBytes, "context beyond its bound accepted");
      for (const [field, max] of [
        ["Plaintext", kmsJson.LIMITS.plaintext],
        ["CiphertextBlob", kmsJson.LIMITS.ciphertextBlob],
      ] as const) {
        if (o[field] === undefined) continue;
        const b = kmsJson.requireBlob(o, field, max);
        must(b.length >= 1 && b.length <= max, `${field} beyond its bound accepted`);
      }
      return o;
    }, [KmsError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: FAST_MS,
});

export const wireTargets: AnyTarget[] = [
  frameStream,
  frameOversize,
  body,
  codec,
  message,
  list,
  envelopeHeader,
  sealedShare,
  associatedData,
  shareState,
  sealReceipt,
  activeProof,
  commitProof,
  json,
  rpcPayload,
  nodeRpcArgs,
  kms,
];
