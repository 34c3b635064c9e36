/**
 * A hostile host against real enclave processes (src/dev/enclave-main.ts via
 * src/harness/enclave-process.ts), each with its own KMS relay
 * (src/host/kms-relay.ts) to the KMS stand-in over HTTPS with the per-node
 * policy (src/harness/dev-kms.ts). The host double (test/helpers/
 * hostile-host.ts) sends raw frames, so it can substitute any request: chosen
 * data keys, swapped blobs, replays, forged peer documents, broken headers.
 *
 * Two enclaves run one 2-of-2 DKG in beforeAll (a DKG needs two parties);
 * every attack then targets them. The test alone (never a host) reads the
 * stand-in's key material to learn the plaintext data keys and shares, and
 * the last test searches every byte the host received, the relays carried
 * and the enclaves logged for them.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevelopmentPki, derToPem, type DevelopmentPki } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { buildCiphertextForRecipient } from "../../src/devkms/cms-builder.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { unsealShare } from "../../src/enclave/seal.ts";
import { UNSEAL_FAILED_MESSAGE } from "../../src/enclave/share-sealing.ts";
import {
  devNodePcr4Hex,
  enclaveKmsOptions,
  startDevKms,
  type DevKms,
} from "../../src/harness/dev-kms.ts";
import { bundleEnclave, type EnclaveImage } from "../../src/harness/enclave-image.ts";
import { startEnclaveProcess } from "../../src/harness/enclave-process.ts";
import type { Started } from "../../src/harness/processes.ts";
import { startKmsRelay, type KmsRelay } from "../../src/host/kms-relay.ts";
import { verifyWallet } from "../../src/client/wallet-verification.ts";
import { fromHex, toHex } from "../../src/shared/hex.ts";
import { publicPackageHash } from "../../src/shared/wire/wallet-statement.ts";
import { parseSignedShareStateUnverified } from "../../src/shared/wire/share-state.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { decodeAttestationDocument } from "../../src/attestation/cose.ts";
import type {
  AttestReply,
  CeremonyReply,
  CeremonyStartRequest,
  CeremonyStepRequest,
  HealthReply,
  LoadShareRequest,
  SealShareReply,
} from "../../src/shared/wire/enclave-ops.ts";
import { FRAME_HEADER_LEN, FrameType, encodeFrame } from "../../src/shared/wire/frame.ts";
import type { SealBinding } from "../../src/shared/wire/sealed-share.ts";
import {
  contains,
  errorBodyOf,
  flipByte,
  HostileHost,
  keysOf,
  loadShareRequest,
  KmsOracle,
  okBody,
  rawReply,
  windowsOf,
  selfSignedPki,
  userDataOfUnverified,
  type RawReply,
} from "../helpers/hostile-host.ts";

const WALLET = "w-hostile";
const NODES = ["node-1", "node-2"] as const;

let dir: string;
let image: EnclaveImage;
let pki: DevelopmentPki;
let kms: DevKms;
const relays: KmsRelay[] = [];
/** Every chunk either relay carried, both directions. */
const relayed: Uint8Array[] = [];
const enclaves: Started[] = [];
const socketPaths: string[] = [];
/** Every host double ever connected, so the byte search covers closed connections too. */
const allHosts: HostileHost[] = [];
/** The long-lived connection to each node's enclave. */
let hosts: [HostileHost, HostileHost];
/** Each enclave's genuine attestation document (what honest hosts exchange). */
let docs: [Uint8Array, Uint8Array];
/** The DKG as the hosts ran it: the requests (for replays) and the finished shares' public facts. */
let dkg: {
  start: [CeremonyStartRequest, CeremonyStartRequest];
  steps: [CeremonyStepRequest[], CeremonyStepRequest[]];
  phase1Messages: [Uint8Array[], Uint8Array[]];
  publicKey: Uint8Array;
  finalReplies: RawReply[];
};
let sealed: [SealShareReply, SealShareReply];
let sealReplies: RawReply[];
let activateReplies: RawReply[];
let activateRequests: { sessionId: Uint8Array; walletId: string; sealReceipts: Uint8Array[] }[];
/** ACTIVATE_SHARE with too few or foreign seal receipts, before the honest one. */
let receiptRefusals: { what: string; reply: RawReply }[];
/** SEAL_SHARE attempts carrying host-chosen key material, sent before the honest seal. */
let chosenKeySeals: { field: string; reply: RawReply }[];
/** The data key the hostile host chose (and wrapped for node 1's enclave's recipient key). */
let hostDataKey: Uint8Array;
/** What only the test knows: each node's plaintext data key and share. */
let dataKeys: Uint8Array[];
let sharePlaintexts: Uint8Array[];
let creds: { accessKeyId: string; secretAccessKey: string };

async function connect(node: number): Promise<HostileHost> {
  const h = await HostileHost.connect(socketPaths[node]!);
  allHosts.push(h);
  return h;
}

const other = (i: number) => 1 - i;
const party = (i: number) => i + 1;

const bindingOf = (s: SealShareReply): SealBinding => ({
  walletId: WALLET,
  nodeId: devNodePcr4Hex(NODES[s.partyIndex - 1]!),
  partyIndex: s.partyIndex,
  generation: s.generation,
  publicKey: s.publicKey,
});

const loadRequest = (s: SealShareReply, over: Partial<LoadShareRequest> = {}) =>
  loadShareRequest(s, WALLET, creds, over);

/**
 * Runs a ceremony on both enclaves the way an honest host routes it (with two
 * parties, each one's messages go to the other), returning every request sent.
 */
async function runCeremony(
  start: [CeremonyStartRequest, CeremonyStartRequest],
  stopBefore = 5,
): Promise<{
  steps: [CeremonyStepRequest[], CeremonyStepRequest[]];
  phase1: [Uint8Array[], Uint8Array[]];
  final: RawReply[];
}> {
  const first = await Promise.all(hosts.map((h, i) => h.send(FrameType.CEREMONY_START, start[i]!)));
  let out = first.map((r) => okBody<CeremonyReply>(r).messages) as [Uint8Array[], Uint8Array[]];
  // Sign and refresh: each relays the other's share-state statement at phase 2.
  const shareStates = first.map((r) => okBody<CeremonyReply>(r).shareState);
  const phase1 = out;
  const steps: [CeremonyStepRequest[], CeremonyStepRequest[]] = [[], []];
  let final: RawReply[] = [];
  for (let phase = 2; phase <= 4 && phase < stopBefore; phase++) {
    const reqs = [0, 1].map(
      (i): CeremonyStepRequest => ({
        sessionId: start[i]!.sessionId,
        phase,
        messages: out[other(i)]!,
        ...(phase === 2 && shareStates[other(i)] ? { shareStates: [shareStates[other(i)]!] } : {}),
      }),
    );
    reqs.forEach((r, i) => steps[i]!.push(r));
    final = await Promise.all(hosts.map((h, i) => h.send(FrameType.CEREMONY_STEP, reqs[i]!)));
    out = final.map((r) => okBody<CeremonyReply>(r).messages) as [Uint8Array[], Uint8Array[]];
  }
  return { steps, phase1, final };
}

function signStart(
  sessionId: Uint8Array,
  digest: Uint8Array,
): [CeremonyStartRequest, CeremonyStartRequest] {
  return [0, 1].map(
    (i): CeremonyStartRequest => ({
      kind: "sign",
      sessionId,
      walletId: WALLET,
      signers: [1, 2],
      digest,
      expectedGeneration: 0,
      peerDocuments: [docs[other(i)]!],
      peerParties: [party(other(i))],
    }),
  ) as [CeremonyStartRequest, CeremonyStartRequest];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hostile-host-"));
  image = await bundleEnclave(join(dir, "image"));
  pki = createDevelopmentPki();
  const rootPem = join(dir, "dev-root.pem");
  writeFileSync(rootPem, derToPem(pki.root.der));
  kms = await startDevKms({
    dataDir: dir,
    devRootPem: rootPem,
    pcr0Hex: image.pcr0Hex,
    nodes: NODES.map((name) => ({ name, pcr4Hex: devNodePcr4Hex(name) })),
  });
  creds = { accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey };
  for (const name of NODES) {
    const relayPath = join(dir, `${name}.kms-relay.sock`);
    relays.push(
      startKmsRelay({
        listen: { kind: "unix", path: relayPath },
        target: { host: "127.0.0.1", port: kms.port },
        onBytes: (_direction, chunk) => relayed.push(chunk.slice()),
      }),
    );
    const socketPath = join(dir, `${name}.enclave.sock`);
    socketPaths.push(socketPath);
    enclaves.push(
      await startEnclaveProcess({
        name,
        image,
        socketPath,
        pki,
        kms: enclaveKmsOptions(kms, relayPath),
        isolate: false,
        phaseTimeoutMs: 30_000,
      }),
    );
  }
  hosts = [await connect(0), await connect(1)];
  docs = (await Promise.all(
    hosts.map(async (h) => okBody<AttestReply>(await h.send(FrameType.ATTEST)).document),
  )) as [Uint8Array, Uint8Array];

  // The one DKG.
  const sessionId = randomBytes(32);
  const start = [0, 1].map(
    (i): CeremonyStartRequest => ({
      kind: "dkg",
      sessionId,
      walletId: WALLET,
      threshold: 2,
      parties: 2,
      partyIndex: party(i),
      peerDocuments: [docs[other(i)]!],
      peerParties: [party(other(i))],
    }),
  ) as [CeremonyStartRequest, CeremonyStartRequest];
  const run = await runCeremony(start);
  const finished = run.final.map((r) => okBody<CeremonyReply>(r));
  dkg = {
    start,
    steps: run.steps,
    phase1Messages: run.phase1,
    publicKey: finished[0]!.publicKey!,
    finalReplies: run.final,
  };

  // Before the honest seal, a host that wants to read the share offers its own data key:
  // wrapped for node 1's enclave's recipient key (from its attestation document), and in the clear.
  hostDataKey = randomBytes(32);
  const recipientSpki = decodeAttestationDocument(docs[0]).document.publicKey!;
  const seal = { sessionId, walletId: WALLET, ...creds };
  chosenKeySeals = [];
  for (const [field, value] of [
    ["ciphertextForRecipient", buildCiphertextForRecipient(recipientSpki, hostDataKey)],
    ["dataKey", hostDataKey],
    ["nodeId", "node-2"],
    ["kmsKeyId", "arn:aws:kms:us-east-1:000000000000:key/host-chosen"],
  ] as const)
    chosenKeySeals.push({
      field,
      reply: await hosts[0].send(FrameType.SEAL_SHARE, { ...seal, [field]: value }),
    });

  sealReplies = await Promise.all(hosts.map((h) => h.send(FrameType.SEAL_SHARE, seal)));
  sealed = sealReplies.map((r) => okBody<SealShareReply>(r)) as [SealShareReply, SealShareReply];
  const receipts = sealed.map((s) => s.receipt);
  // A coordinator that skipped node 2's persist has only node 1's receipt; a host cannot forge
  // node 2's either (node 1's own receipt twice, none, or one whose signature is broken).
  const broken = receipts[1]!.slice();
  broken[broken.length - 1]! ^= 1;
  receiptRefusals = [];
  for (const [what, sealReceipts] of [
    ["only its own receipt", [receipts[0]!]],
    ["its own receipt twice", [receipts[0]!, receipts[0]!]],
    ["no receipts", undefined],
    ["a peer receipt with a broken signature", [receipts[0]!, broken]],
  ] as const)
    receiptRefusals.push({
      what,
      reply: await hosts[0].send(FrameType.ACTIVATE_SHARE, {
        sessionId,
        walletId: WALLET,
        ...(sealReceipts && { sealReceipts: [...sealReceipts] }),
      }),
    });
  activateRequests = [0, 1].map(() => ({ sessionId, walletId: WALLET, sealReceipts: receipts }));
  activateReplies = [];
  for (const [i, h] of hosts.entries())
    activateReplies.push(await h.send(FrameType.ACTIVATE_SHARE, activateRequests[i]!));
  for (const r of activateReplies) okBody(r);

  const oracle = new KmsOracle(join(dir, "devkms"), kms.keyId);
  dataKeys = sealed.map((s) => oracle.dataKey(s.ciphertextBlob, bindingOf(s)));
  sharePlaintexts = sealed.map((s) => oracle.share(s.sealed, s.ciphertextBlob, bindingOf(s)));
}, 180_000);

afterAll(async () => {
  for (const h of allHosts) h.close();
  await Promise.allSettled(relays.map((r) => r.close()));
  await Promise.allSettled(enclaves.map((e) => e.stop()));
  await kms?.process.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const health = async (h: HostileHost) => okBody<HealthReply>(await h.send(FrameType.HEALTH));

describe("chosen data keys", () => {
  it("refuses SEAL_SHARE carrying ciphertextForRecipient, dataKey, nodeId or kmsKeyId, and seals only under its own KMS data key", () => {
    expect(chosenKeySeals.map((c) => c.field)).toEqual([
      "ciphertextForRecipient",
      "dataKey",
      "nodeId",
      "kmsKeyId",
    ]);
    for (const c of chosenKeySeals)
      expect(errorBodyOf(c.reply)).toEqual({
        code: "bad_request",
        message: `SEAL_SHARE has no field ${c.field}`,
      });
    // The honest seal that followed used KMS's key and the enclave's own node identity ...
    for (const [i, s] of sealed.entries()) {
      expect(s.kmsKeyId).toBe(kms.keyArn);
      expect(s.partyIndex).toBe(party(i));
      expect(dataKeys[i]).toHaveLength(32);
      expect(sharePlaintexts[i]!.length).toBeGreaterThan(1000);
    }
    // ... and its sealed share opens under KMS's data key only, never under the host's.
    const binding = bindingOf(sealed[0]);
    expect(() =>
      unsealShare({ dataKey: hostDataKey, sealed: sealed[0].sealed, binding }),
    ).toThrow();
    expect(contains(hostDataKey, dataKeys[0]!)).toBe(false);
  });

  it("refuses LOAD_SHARE carrying ciphertextForRecipient, dataKey, nodeId or kmsKeyId, and keeps the share it uses", async () => {
    const h = hosts[0];
    const before = await health(h);
    const recipientSpki = decodeAttestationDocument(docs[0]).document.publicKey!;
    for (const extra of [
      { ciphertextForRecipient: buildCiphertextForRecipient(recipientSpki, hostDataKey) },
      { dataKey: hostDataKey },
      { nodeId: "node-2" },
      { kmsKeyId: "arn:aws:kms:us-east-1:000000000000:key/host-chosen" },
    ]) {
      const r = await h.send(FrameType.LOAD_SHARE, { ...loadRequest(sealed[0]), ...extra });
      expect(errorBodyOf(r)).toEqual({
        code: "bad_request",
        message: `LOAD_SHARE has no field ${Object.keys(extra)[0]}`,
      });
    }
    const after = await health(h);
    expect(after.loadedWallets).toBe(before.loadedWallets);
    expect(after.shareMisses).toBe(before.shareMisses);
    // The genuine row still loads, and the reply holds only the documented fields.
    const ok = await h.send(FrameType.LOAD_SHARE, loadRequest(sealed[0]));
    expect(okBody(ok)).toEqual({ walletId: WALLET, generation: 0, partyIndex: 1 });
    expect(keysOf(ok)).toEqual(["generation", "partyIndex", "walletId"]);
  });

  it("activates a DKG share only with a valid seal receipt from every party of the session", () => {
    expect(receiptRefusals.map((r) => [r.what, errorBodyOf(r.reply).code])).toEqual([
      ["only its own receipt", "bad_request"],
      ["its own receipt twice", "bad_request"],
      ["no receipts", "bad_request"],
      ["a peer receipt with a broken signature", "bad_request"],
    ]);
    expect(errorBodyOf(receiptRefusals[0]!.reply).message).toMatch(/seal receipts refused/);
    // The refusals left the share pending: the activation with both receipts then succeeded.
    for (const r of activateReplies) expect(keysOf(r)).toContain("generation");
  });

  it("answers SEAL_SHARE, ACTIVATE_SHARE and the DKG's last step with only the documented fields", () => {
    for (const r of sealReplies)
      expect(keysOf(r)).toEqual(
        [
          "ciphertextBlob",
          "generation",
          "kmsKeyId",
          "partyIndex",
          "publicKey",
          "receipt",
          "sealed",
        ].sort(),
      );
    for (const r of activateReplies)
      expect(keysOf(r)).toEqual(["generation", "partyIndex", "walletId"]);
    for (const r of dkg.finalReplies)
      expect(keysOf(r)).toEqual(
        [
          "chainCode",
          "generation",
          "messages",
          "partyIndex",
          "publicKey",
          "publicPackage",
          "statement",
        ].sort(),
      );
  });

  it("signs, at the DKG's last step, a wallet statement that the SDK verifies against the enclave's own document", () => {
    const finals = dkg.finalReplies.map((r) => okBody<CeremonyReply>(r));
    const trust = {
      roots: [{ der: pki.root.der, development: true }],
      allowDevelopment: true,
      imageHashes: [image.pcr0Hex],
    };
    const vouchers = finals.map((f, i) => ({
      nodeId: NODES[i]!,
      partyIndex: f.partyIndex!,
      statement: f.statement!,
      attestation: docs[i]!,
    }));
    const v = verifyWallet(
      { walletId: WALLET, publicKey: toHex(finals[0]!.publicKey!), generation: 0 },
      vouchers,
      trust,
    );
    expect(toHex(v.publicKey)).toBe(toHex(finals[0]!.publicKey!));
    expect(toHex(v.chainCode)).toBe(toHex(finals[0]!.chainCode!));
    expect(toHex(v.publicPackageHash)).toBe(toHex(publicPackageHash(finals[0]!.publicPackage!)));
    expect([v.threshold, v.parties, v.generation]).toEqual([2, 2, 0]);
    // Each statement is bound to its own enclave's document: swapped, neither verifies.
    const swapped = vouchers.map((x, i) => ({ ...x, attestation: docs[1 - i]! }));
    expect(() => verifyWallet({ walletId: WALLET }, swapped, trust)).toThrow(
      /not signed by its attested enclave/,
    );
  });
});

describe("swapped blobs", () => {
  /** Raw ERROR bodies of LOAD_SHARE variants sent to node `node`. */
  async function loadErrors(node: number, variants: LoadShareRequest[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const v of variants) {
      const r = await hosts[node]!.send(FrameType.LOAD_SHARE, v);
      expect(r.type).toBe(FrameType.ERROR);
      out.push(r.body);
    }
    return out;
  }

  it("answers another node's, another wallet's and another generation's rows with one identical ERROR body", async () => {
    const [s1, s2] = sealed;
    const variants = [
      // Node 2's whole row, and mixes of the two rows, handed to node 1's enclave.
      loadRequest(s2),
      loadRequest(s2, { partyIndex: 1 }),
      loadRequest(s1, { ciphertextBlob: s2.ciphertextBlob }),
      loadRequest(s1, { sealed: s2.sealed }),
      // The row moved to another wallet, or claimed as another generation.
      loadRequest(s1, { walletId: "w-other" }),
      loadRequest(s1, { generation: 1 }),
      loadRequest(s1, { partyIndex: 2 }),
    ];
    const bodies = await loadErrors(0, variants);
    // And node 1's row handed to node 2's enclave.
    bodies.push(...(await loadErrors(1, [loadRequest(s1), loadRequest(s1, { partyIndex: 2 })])));
    const first = Buffer.from(bodies[0]!);
    for (const b of bodies) expect(Buffer.from(b).equals(first)).toBe(true);
    const e = errorBodyOf(await hosts[0].send(FrameType.LOAD_SHARE, loadRequest(s2)));
    expect(e).toEqual({ code: "unseal_failed", message: UNSEAL_FAILED_MESSAGE });
    // Each node still opens its own row.
    for (const i of [0, 1])
      expect(okBody(await hosts[i]!.send(FrameType.LOAD_SHARE, loadRequest(sealed[i]!)))).toEqual({
        walletId: WALLET,
        generation: 0,
        partyIndex: party(i),
      });
  }, 120_000);

  it("gives a padding-oracle attacker 50 identical ERROR bodies: varied nonce, ciphertext and CiphertextBlob bytes", async () => {
    const [s1] = sealed;
    const n = s1.sealed.length;
    const blob = s1.ciphertextBlob;
    const variants: LoadShareRequest[] = [];
    // The sealed share's nonce (bytes 1..12), ciphertext and tag, one bit or one byte at a time.
    for (let at = 1; at <= 12; at += 1)
      variants.push(loadRequest(s1, { sealed: flipByte(s1.sealed, at) }));
    for (const at of [13, 14, 15, 16, 64, 100, 1000, n >> 1, n - 17])
      for (const mask of [0x01, 0x80, 0xff])
        variants.push(loadRequest(s1, { sealed: flipByte(s1.sealed, at, mask) }));
    // The CiphertextBlob: header, key id, nonce, content, tag.
    for (const at of [
      0,
      4,
      6,
      40,
      41,
      45,
      50,
      55,
      blob.length >> 1,
      blob.length - 17,
      blob.length - 1,
    ])
      variants.push(loadRequest(s1, { ciphertextBlob: flipByte(blob, at) }));
    variants.push(
      loadRequest(s1, { ciphertextBlob: randomBytes(blob.length) }),
      loadRequest(s1, { sealed: randomBytes(n) }),
    );
    expect(variants.length).toBeGreaterThanOrEqual(50);
    const bodies = await loadErrors(0, variants);
    const first = Buffer.from(bodies[0]!);
    const distinct = new Set(bodies.map((b) => Buffer.from(b).toString("hex")));
    expect(distinct.size).toBe(1);
    expect(errorBodyOf(rawReply({ type: FrameType.ERROR, correlationId: 1, body: first }))).toEqual(
      {
        code: "unseal_failed",
        message: UNSEAL_FAILED_MESSAGE,
      },
    );
    // The key was not recovered: the genuine row still opens, nothing else changed.
    expect(okBody(await hosts[0].send(FrameType.LOAD_SHARE, loadRequest(s1)))).toMatchObject({
      partyIndex: 1,
    });
  }, 180_000);
});

describe("replayed frames", () => {
  it("refuses a CEREMONY_START replayed with the DKG's session id (session_reused), then still serves", async () => {
    for (const i of [0, 1]) {
      const r = await hosts[i]!.send(FrameType.CEREMONY_START, dkg.start[i]!);
      expect(errorBodyOf(r).code).toBe("session_reused");
    }
    expect((await health(hosts[0])).status).toBe("ok");
  });

  it("refuses the DKG's CEREMONY_STEPs, SEAL_SHARE and ACTIVATE_SHARE replayed after it finished", async () => {
    for (const i of [0, 1]) {
      for (const step of dkg.steps[i]!)
        expect(errorBodyOf(await hosts[i]!.send(FrameType.CEREMONY_STEP, step)).code).toBe(
          "unknown_session",
        );
      const activate = await hosts[i]!.send(FrameType.ACTIVATE_SHARE, activateRequests[i]!);
      expect(errorBodyOf(activate).code).toBe("unknown_session");
      const seal = { sessionId: dkg.start[i]!.sessionId, walletId: WALLET, ...creds };
      expect(errorBodyOf(await hosts[i]!.send(FrameType.SEAL_SHARE, seal)).code).toBe(
        "unknown_session",
      );
    }
  });

  it("refuses a CEREMONY_STEP replayed after the phase moved on, and messages replayed into another session; then signs honestly with the DKG's key", async () => {
    // A sign whose phase 2 ran on both; node 1's phase-2 step is then replayed.
    const moved = randomBytes(32);
    const digest = randomBytes(32);
    const run = await runCeremony(signStart(moved, digest), 3);
    const replay = await hosts[0].send(FrameType.CEREMONY_STEP, run.steps[0]![0]!);
    expect(errorBodyOf(replay).code).toBe("phase_out_of_order");
    // Fail closed: the session is gone on node 1.
    const next = { sessionId: moved, phase: 3, messages: [] as Uint8Array[] };
    expect(errorBodyOf(await hosts[0].send(FrameType.CEREMONY_STEP, next)).code).toBe(
      "unknown_session",
    );
    okBody(await hosts[1].send(FrameType.CEREMONY_ABORT, { sessionId: moved }));

    // The DKG's phase-1 messages (sealed to that session) replayed into a fresh sign's phase 2.
    const fresh = randomBytes(32);
    const starts = signStart(fresh, digest);
    okBody(await hosts[0].send(FrameType.CEREMONY_START, starts[0]));
    const peerState = okBody<CeremonyReply>(
      await hosts[1].send(FrameType.CEREMONY_START, starts[1]),
    ).shareState!;
    const injected = await hosts[0].send(FrameType.CEREMONY_STEP, {
      sessionId: fresh,
      phase: 2,
      messages: dkg.phase1Messages[1],
      shareStates: [peerState],
    });
    expect(errorBodyOf(injected).code).toBe("ceremony_failed");
    expect(errorBodyOf(injected).message).toMatch(/peer message refused/);
    okBody(await hosts[1].send(FrameType.CEREMONY_ABORT, { sessionId: fresh }));

    // After every refusal: an honest sign, whose signature verifies under the DKG's public key.
    const honest = await runCeremony(signStart(randomBytes(32), digest));
    const sig = okBody<CeremonyReply>(honest.final[0]!).signature!;
    expect(sig).toHaveLength(65);
    const signature = { r: sig.subarray(0, 32), s: sig.subarray(32, 64), recoveryId: sig[64]! };
    expect(verifySignature(dkg.publicKey, digest, signature)).toBe(true);
    expect((await health(hosts[0])).openSessions).toBe(0);
  }, 60_000);
});

describe("share-state statements relayed by a hostile host", () => {
  /** Starts a sign on both enclaves; returns each one's phase-1 messages and share-state statement. */
  async function started(sessionId: Uint8Array, digest: Uint8Array) {
    const starts = signStart(sessionId, digest);
    const replies = await Promise.all(
      hosts.map(async (h, i) =>
        okBody<CeremonyReply>(await h.send(FrameType.CEREMONY_START, starts[i]!)),
      ),
    );
    return replies.map((r) => ({ messages: r.messages, shareState: r.shareState! }));
  }

  it("each sign start returns the enclave's statement of the share it loaded, signed for this session", async () => {
    const sessionId = randomBytes(32);
    const [a] = await started(sessionId, randomBytes(32));
    const s = parseSignedShareStateUnverified(a!.shareState).statement;
    expect(s).toMatchObject({ ceremony: "sign", walletId: WALLET, partyIndex: 1, generation: 0 });
    expect(toHex(s.sessionId)).toBe(toHex(sessionId));
    for (const h of hosts) okBody(await h.send(FrameType.CEREMONY_ABORT, { sessionId }));
  });

  it("refuses phase 2 without the peer's statement, with the peer's statement of another session, or with its own: ceremony_failed, the session wiped", async () => {
    const digest = randomBytes(32);
    const otherId = randomBytes(32);
    const other = await started(otherId, digest);
    for (const hand of [
      () => [] as Uint8Array[],
      () => [other[1]!.shareState],
      (own: Uint8Array) => [own],
    ]) {
      const sessionId = randomBytes(32);
      const [mine, peer] = await started(sessionId, digest);
      const r = await hosts[0].send(FrameType.CEREMONY_STEP, {
        sessionId,
        phase: 2,
        messages: peer!.messages,
        shareStates: hand(mine!.shareState),
      });
      expect(errorBodyOf(r).code).toBe("ceremony_failed");
      const next = { sessionId, phase: 3, messages: [] as Uint8Array[] };
      expect(errorBodyOf(await hosts[0].send(FrameType.CEREMONY_STEP, next)).code).toBe(
        "unknown_session",
      );
      okBody(await hosts[1].send(FrameType.CEREMONY_ABORT, { sessionId }));
    }
    for (const h of hosts) okBody(await h.send(FrameType.CEREMONY_ABORT, { sessionId: otherId }));
    expect((await health(hosts[0])).openSessions).toBe(0);
  });

  it("a host's expected generation decides nothing: a start claiming generation 9 signs with the loaded share", async () => {
    const digest = randomBytes(32);
    const starts = signStart(randomBytes(32), digest).map((s) => ({
      ...s,
      expectedGeneration: 9,
    })) as ReturnType<typeof signStart>;
    const run = await runCeremony(starts);
    const sig = okBody<CeremonyReply>(run.final[0]!).signature!;
    const signature = { r: sig.subarray(0, 32), s: sig.subarray(32, 64), recoveryId: sig[64]! };
    expect(verifySignature(dkg.publicKey, digest, signature)).toBe(true);
  });
});

describe("forged peer documents", () => {
  const pcr0 = () => fromHex(image.pcr0Hex, 48);
  const pcr4 = () => fromHex(devNodePcr4Hex(NODES[1]), 48);
  /** Node 2's genuine channel-key binding, re-issued under another signer or with other PCRs. */
  const genuineBinding = () => userDataOfUnverified(docs[1]);
  const forge = (
    p: DevelopmentPki,
    pcrs: Record<number, Uint8Array>,
    userData = genuineBinding(),
  ) => new SimulatedNsm({ pki: p, pcrs }).attest({ userData });

  function hostKeysInGenuineDocument(): Uint8Array {
    // The host swaps node 2's channel keys in its genuine document for keys it holds.
    const genuine = docs[1];
    const theirs = genuineBinding();
    const mine = new PeerKeys().channelKeyBinding();
    const at = Buffer.from(genuine).indexOf(Buffer.from(theirs));
    expect(at).toBeGreaterThan(0);
    const out = genuine.slice();
    out.set(mine, at);
    return out;
  }

  /** What a host could forge, and why each must be refused (the verifier's own reason). */
  const forgeries: [string, () => Uint8Array, RegExp][] = [
    [
      "a self-signed leaf",
      () => forge(selfSignedPki(), { 0: pcr0(), 4: pcr4() }),
      /root certificate .* is not one of the configured trusted roots/,
    ],
    [
      "another PKI",
      () => forge(createDevelopmentPki(), { 0: pcr0(), 4: pcr4() }),
      /root certificate .* is not one of the configured trusted roots/,
    ],
    [
      "a debug enclave (all-zero PCR0)",
      () => forge(pki, { 0: new Uint8Array(48), 4: pcr4() }),
      /PCR0 is all zero/,
    ],
    [
      "another image hash",
      () => forge(pki, { 0: randomBytes(48), 4: pcr4() }),
      /PCR0 is not in the allowed list/,
    ],
    [
      "host-chosen user_data (not a channel-key binding)",
      () => forge(pki, { 0: pcr0(), 4: pcr4() }, randomBytes(81)),
      /channel key binding/,
    ],
    [
      "node 2's genuine document with the host's channel keys in it",
      hostKeysInGenuineDocument,
      /signature does not verify/,
    ],
  ];

  it.each(forgeries)(
    "refuses a peer document from %s and blames party 2 as a field",
    async (_name, make, reason) => {
      const req: CeremonyStartRequest = {
        ...dkg.start[0],
        sessionId: randomBytes(32),
        walletId: "w-forged",
        peerDocuments: [make()],
      };
      const r = await hosts[0].send(FrameType.CEREMONY_START, req);
      const e = errorBodyOf(r);
      expect(e.code).toBe("ceremony_failed");
      expect(e.party).toBe(2);
      expect(keysOf(r)).toEqual(["code", "message", "party"]);
      expect(e.message).toMatch(/^attestation of party 2 refused/);
      expect(e.message).toMatch(reason);
      expect(e.message).not.toMatch(/\[party/);
      expect((await health(hosts[0])).openSessions).toBe(0);
    },
  );

  it("refuses an ATTEST with host-chosen user_data", async () => {
    const r = await hosts[1].send(FrameType.ATTEST, { userData: randomBytes(32) });
    expect(errorBodyOf(r).code).toBe("bad_request");
  });
});

describe("malformed frame headers", () => {
  const healthFrame = () =>
    encodeFrame({ type: FrameType.HEALTH, correlationId: 7, body: new Uint8Array(0) });
  const headers: [string, () => Uint8Array, string][] = [
    ["a bad magic", () => Uint8Array.from([0x58, ...healthFrame().subarray(1)]), "bad_magic"],
    ["a bad version", () => Object.assign(healthFrame(), { 2: 9 }), "bad_version"],
    [
      "an unknown frame type",
      () => Object.assign(healthFrame(), { 3: 0x42 }),
      "unknown_frame_type",
    ],
    ["a flag bit set", () => Object.assign(healthFrame(), { 4: 1 }), "bad_flags"],
    ["the reserved byte set", () => Object.assign(healthFrame(), { 5: 1 }), "bad_reserved"],
    [
      "an announced body over the limit",
      () => {
        const f = healthFrame();
        new DataView(f.buffer).setUint32(10, 0xffff_ffff);
        return f.subarray(0, FRAME_HEADER_LEN);
      },
      "frame_too_large",
    ],
  ];

  it.each(headers)(
    "ends the connection on %s, and serves a new connection",
    async (_name, bytes, code) => {
      const h = await connect(0);
      h.writeRaw(bytes());
      await h.closed;
      const errors = h.unsolicited.filter((f) => f.type === FrameType.ERROR);
      expect(errors).toHaveLength(1);
      expect(errorBodyOf(errors[0]!).code).toBe(code);
      expect(errors[0]!.correlationId).toBe(code === "frame_too_large" ? 7 : 0);
      const fresh = await connect(0);
      expect((await health(fresh)).status).toBe("ok");
      fresh.close();
      // The long-lived connection was never affected.
      expect((await health(hosts[0])).loadedWallets).toBe(1);
    },
  );
});

describe("what the host received, the relays carried and the enclaves logged", () => {
  it("holds no data key and no share, whole or in part", () => {
    const received = Buffer.concat(allHosts.flatMap((h) => h.received));
    const traffic = Buffer.concat(relayed);
    const logs = Buffer.from(enclaves.map((e) => e.stderr()).join("\n"));
    // The haystacks are real: the sealed shares the host stored did come through them.
    expect(contains(received, sealed[0].sealed)).toBe(true);
    expect(traffic.length).toBeGreaterThan(10_000);
    expect(logs.length).toBeGreaterThan(0);
    // A share's last bytes are its public package, which the host receives by design (the DKG's
    // phase-4 reply): those windows are found, which shows the search sees what the host got.
    const needles: Uint8Array[] = [...dataKeys];
    for (const [k, share] of sharePlaintexts.entries()) {
      const pkg = okBody<CeremonyReply>(dkg.finalReplies[k]!).publicPackage!;
      const windows = windowsOf(share, 32, 256);
      const secret = windows.filter((w) => !contains(pkg, w));
      const published = windows.filter((w) => contains(pkg, w));
      expect(published.length).toBeGreaterThan(0);
      for (const w of published) expect(contains(received, w)).toBe(true);
      expect(secret.length).toBeGreaterThan(windows.length - 2);
      needles.push(...secret);
    }
    for (const needle of needles) {
      expect(contains(received, needle)).toBe(false);
      expect(contains(traffic, needle)).toBe(false);
      expect(contains(logs, needle)).toBe(false);
      // Hex and base64 are how a leak through a log or a JSON body would look.
      for (const text of [
        Buffer.from(needle).toString("hex"),
        Buffer.from(needle).toString("base64"),
      ]) {
        expect(received.includes(text)).toBe(false);
        expect(logs.includes(text)).toBe(false);
      }
    }
  });
});
