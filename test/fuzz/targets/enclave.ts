/**
 * Fuzz targets for what the enclave opens: peer envelopes (PeerSession.open), sealed shares
 * (unsealShare), KMS CiphertextForRecipient blobs (the CMS reader and the unwrap), and the
 * DKLs23 wasm core's inputs (every ceremony phase, key shares, public packages).
 */
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { buildCiphertextForRecipient } from "../../../src/devkms/cms-builder.ts";
import { dkgInProcess } from "../../../src/dev/in-process.ts";
import {
  CmsError,
  decryptCiphertextForRecipient,
  parseCiphertextForRecipient,
} from "../../../src/enclave/cms.ts";
import {
  Dkg,
  DklsError,
  KeyShare,
  packageInfo,
  Refresh,
  Signing,
} from "../../../src/enclave/dkls23/binding.ts";
import type { PeerIdentity } from "../../../src/enclave/peer-attestation.ts";
import { PeerMessageError, PeerSession } from "../../../src/enclave/peer-envelope.ts";
import { PeerKeys } from "../../../src/enclave/peer-keys.ts";
import { SealError, unsealShare, type SealBinding } from "../../../src/enclave/seal.ts";
import { fromHex } from "../../../src/shared/hex.ts";
import {
  HEADER_LEN,
  MAX_LIST_ITEMS,
  MessageFormatError,
  parseMessage,
  type ProtocolMessage,
} from "../../../src/shared/wire/protocol-message.ts";
import { MAX_CMS_BYTES } from "../../../src/shared/wire/recipient-cms.ts";
import { MAX_SEALED_BYTES } from "../../../src/shared/wire/sealed-share.ts";
import {
  bytesFrom,
  hostileString,
  isViewInto,
  must,
  outcome,
  sameBytes,
  target,
  type AnyTarget,
} from "../harness.ts";
import { nitroFixture, present, vectorFile } from "../seeds.ts";

const FULL = 100_000;
const SAMPLE = 1_500;

// ---------------------------------------------------------------- peer envelopes

const envelopes = vectorFile("peer-envelope.json");
const vectorKeys = (envelopes.keys as { hex?: string; [k: string]: unknown }[]).map((k) => {
  const hex = (f: string) => fromHex((k[f] as { hex: string }).hex);
  return {
    party: k.party as number,
    keys: new PeerKeys({ x25519Secret: hex("x25519Secret"), ed25519Secret: hex("ed25519Secret") }),
  };
});
const envelopeSession = fromHex(envelopes.sessionId as string);
const identity = (keys: PeerKeys): PeerIdentity => ({
  pcr0: new Uint8Array(48),
  x25519Public: keys.x25519Public,
  ed25519Public: keys.ed25519Public,
  documentHash: new Uint8Array(32),
});
const envelopeSeeds = envelopes.cases.map((c) => fromHex(c.hex));

const peerOpen = target({
  name: "peer envelope: PeerSession.open (both parties' sessions)",
  arbitrary: fc.record({
    sealed: bytesFrom(envelopeSeeds, { maxRandom: 256 }),
    expectedPhase: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  }),
  check: ({ sealed, expectedPhase }) => {
    const peers = new Map(vectorKeys.map((k) => [k.party, identity(k.keys)]));
    let last = outcome<Uint8Array>(() => {
      throw new PeerMessageError("not_for_me", "no session tried");
    }, [PeerMessageError]);
    for (const { party, keys } of vectorKeys) {
      const session = new PeerSession({ sessionId: envelopeSession, me: party, keys, peers });
      const r = outcome(() => session.open(sealed, expectedPhase), [PeerMessageError]);
      if (r.accepted) {
        // What opens is a core message of this session, whose header is the envelope's.
        const m = parseMessage(r.value);
        must(sameBytes(m.sessionId, envelopeSession), "opened a message of another session");
        must(
          sameBytes(r.value.subarray(1, HEADER_LEN), sealed.subarray(1, HEADER_LEN)),
          "header changed",
        );
        must(!isViewInto(r.value, sealed), "opened message aliases the relayed bytes");
        last = r;
      } else {
        must(session.closed, "a refused envelope left the session open");
        if (!last.accepted) last = r;
      }
    }
    return last;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

// ---------------------------------------------------------------- sealed shares

const sealedCase = vectorFile("sealed-share.json").cases[0]!;
const sealedBinding = (() => {
  const b = sealedCase.binding as Record<string, unknown>;
  return { ...b, publicKey: fromHex((b.publicKey as { hex: string }).hex) } as SealBinding;
})();
const sealedDataKey = fromHex(sealedCase.dataKey as string);
const sealedShare = fromHex(sealedCase.share as string);
const sealedBlob = fromHex(sealedCase.hex);

/** The vector's binding, or one field of it replaced by a hostile value. */
const bindingArb: fc.Arbitrary<SealBinding> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(sealedBinding) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom("walletId", "nodeId", "partyIndex", "generation", "publicKey"),
        fc.oneof(
          hostileString,
          fc.constantFrom(0, 1, 2, 255, 256, -1, 1.5, Number.NaN, 2 ** 32, 2 ** 32 - 1, null),
          fc.uint8Array({ maxLength: 40 }),
        ),
      )
      .map(([k, v]) => ({ ...sealedBinding, [k]: v }) as SealBinding),
  },
);

const unseal = target({
  name: "seal: unsealShare (blob and binding from the host)",
  arbitrary: fc.record({
    sealed: bytesFrom([sealedBlob], { lengths: [MAX_SEALED_BYTES, MAX_SEALED_BYTES + 1] }),
    binding: bindingArb,
    dataKey: fc.oneof(
      { weight: 9, arbitrary: fc.constant(sealedDataKey) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    ),
  }),
  check: ({ sealed, binding, dataKey }) => {
    const r = outcome(() => unsealShare({ dataKey, sealed, binding }), [SealError]);
    if (r.accepted)
      must(sameBytes(r.value, sealedShare), "unsealed something other than the share");
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

// ---------------------------------------------------------------- CMS (KMS CiphertextForRecipient)

/** This enclave's recipient key, as the enclave makes one per boot. */
const recipient = generateKeyPairSync("rsa", { modulusLength: 2048 });
const recipientSpki = new Uint8Array(recipient.publicKey.export({ type: "spki", format: "der" }));
const dataKeyPlain = new Uint8Array(32).fill(7);
const cmsSeeds = [
  ...present([
    nitroFixture("kms-ciphertext-for-recipient-1.ber"),
    nitroFixture("kms-ciphertext-for-recipient-2.ber"),
  ]),
  buildCiphertextForRecipient(recipientSpki, dataKeyPlain),
];
const cmsBytes = bytesFrom(cmsSeeds, {
  lengths: [0x80, 0x81, 0x100, 0x101, MAX_CMS_BYTES, MAX_CMS_BYTES + 1],
  maxRandom: 600,
});

const cmsParse = target({
  name: "cms: parseCiphertextForRecipient (real KMS blobs and the stand-in's)",
  arbitrary: cmsBytes,
  check: (ber) => {
    const r = outcome(() => parseCiphertextForRecipient(ber), [CmsError]);
    if (r.accepted) {
      const c = r.value;
      must(c.contentEncryptionAlgorithm.iv.length === 16, "IV of the wrong size accepted");
      must(c.recipient.subjectKeyIdentifier.length === 32, "SKI of the wrong size accepted");
      must(
        c.encryptedContent.length > 0 && c.encryptedContent.length % 16 === 0,
        "bad content length",
      );
    }
    return r;
  },
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

const cmsDecrypt = target({
  name: "cms: decryptCiphertextForRecipient (addressed to this enclave's key)",
  arbitrary: bytesFrom(cmsSeeds.slice(-1), { lengths: [0x80, 0x100, 0x101, MAX_CMS_BYTES + 1] }),
  check: (ber) =>
    outcome(() => decryptCiphertextForRecipient(ber, recipient.privateKey), [CmsError]),
  runs: { sample: SAMPLE, full: FULL },
  timeBoundMs: 1_000,
});

// ---------------------------------------------------------------- DKLs23 wasm core

interface Transcript {
  shares: KeyShare[];
  sessionId: Uint8Array;
  /** What party 2 received in each phase of an honest DKG (phases 2..4). */
  dkgInbox: Map<number, ProtocolMessage[]>;
  /** Party 1's phase-1 messages of a signing and of a refresh, with the session id above. */
  signPhase1: ProtocolMessage[];
  refreshPhase1: ProtocolMessage[];
}

let transcript: Transcript | undefined;

/** One honest 2-of-2 DKG (seconds), recorded, and party 1's opening of a signing and a refresh. */
function recordTranscript(): Transcript {
  if (transcript) return transcript;
  const dkgInbox = new Map<number, ProtocolMessage[]>();
  const shares = dkgInProcess(2, 2, (phase, to, inbox) => {
    if (to === 2) dkgInbox.set(phase, inbox);
    return inbox;
  });
  const sessionId = dkgInbox.get(2)![0]!.sessionId.slice();
  const signer = new Signing({
    share: shares[0]!,
    sessionId,
    parties: [1, 2],
    digest: new Uint8Array(32),
  });
  const signPhase1 = signer.phase1();
  signer.close();
  const refresher = new Refresh({ share: shares[0]!, sessionId });
  const refreshPhase1 = refresher.phase1();
  refresher.close();
  transcript = { shares, sessionId, dkgInbox, signPhase1, refreshPhase1 };
  return transcript;
}

type Ceremony = "dkg" | "sign" | "refresh";

/** Real messages that fit phase `phase` of `ceremony` for party 2 (the seeds for its inputs). */
function realInbox(t: Transcript, ceremony: Ceremony, phase: number): Uint8Array[] {
  const dkg = (p: number) => (t.dkgInbox.get(p) ?? []).map((m) => m.bytes);
  if (ceremony === "dkg") return dkg(phase);
  const opening = ceremony === "sign" ? t.signPhase1 : t.refreshPhase1;
  if (phase === 2) return opening.map((m) => m.bytes);
  // Later-phase messages of this ceremony need party 1's state; DKG's, re-headed, pass the header checks.
  return dkg(phase).map((b) => {
    const c = b.slice();
    c[1] = ceremony === "sign" ? 2 : 3;
    return c;
  });
}

interface PhaseCase {
  ceremony: Ceremony;
  phase: number;
  /** Per message: which real message to start from and how to change it. */
  picks: { index: number; mutate: Uint8Array | null }[];
  random: Uint8Array[];
}

const phaseCase: fc.Arbitrary<PhaseCase> = fc.record({
  ceremony: fc.constantFrom<Ceremony>("dkg", "sign", "sign", "refresh"),
  phase: fc.integer({ min: 2, max: 4 }),
  picks: fc.array(
    fc.record({
      index: fc.nat(),
      mutate: fc.option(fc.uint8Array({ minLength: 1, maxLength: 8 }), { nil: null }),
    }),
    { maxLength: 3 },
  ),
  random: fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 2 }),
});

/** Flips `mask` into the body of a real message (the header is kept, so the core's body decoder runs). */
function inputsFor(c: PhaseCase, real: Uint8Array[]): Uint8Array[] {
  const out = c.picks.map(({ index, mutate }) => {
    if (real.length === 0) return new Uint8Array(HEADER_LEN);
    const m = real[index % real.length]!.slice();
    if (mutate && m.length > HEADER_LEN)
      mutate.forEach((x, i) => {
        const at = HEADER_LEN + ((x * 7919 + i * 104729) % (m.length - HEADER_LEN));
        m[at]! ^= x;
      });
    return m;
  });
  return [...out, ...c.random].slice(0, MAX_LIST_ITEMS);
}

/** A fresh party-2 session of `ceremony`, brought honestly to just before `phase` where it can be. */
function sessionBefore(t: Transcript, c: PhaseCase) {
  const s =
    c.ceremony === "dkg"
      ? new Dkg({ threshold: 2, parties: 2, index: 2, sessionId: t.sessionId })
      : c.ceremony === "sign"
        ? new Signing({
            share: t.shares[1]!,
            sessionId: t.sessionId,
            parties: [1, 2],
            digest: new Uint8Array(32),
          })
        : new Refresh({ share: t.shares[1]!, sessionId: t.sessionId });
  s.phase1();
  // Signing's phase 2 is cheap and needs only party 1's opening: phase 3 inputs then meet a real phase-3 state.
  if (c.ceremony === "sign" && c.phase >= 3) s.phase2(t.signPhase1);
  return s;
}

const wasmPhases = target({
  name: "dkls23 wasm: phase inputs of DKG, signing and refresh",
  arbitrary: phaseCase,
  setup: () => void recordTranscript(),
  check: (c) => {
    const t = recordTranscript();
    const session = sessionBefore(t, c);
    try {
      const input = inputsFor(c, realInbox(t, c.ceremony, c.phase));
      return outcome(() => {
        if (c.phase === 2) return session.phase2(input);
        if (c.phase === 3) return session.phase3(input);
        return session.phase4(input);
      }, [DklsError, MessageFormatError]);
    } finally {
      session.close();
    }
  },
  runs: { sample: 300, full: 3_000 },
  timeBoundMs: 20_000,
});

const wasmShares = target({
  name: "dkls23 wasm: KeyShare.fromBytes and packageInfo",
  setup: () => void recordTranscript(),
  arbitrary: fc.record({
    which: fc.constantFrom("share" as const, "package" as const),
    mutations: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
      minLength: 0,
      maxLength: 6,
    }),
    cut: fc.option(fc.nat(), { nil: null }),
  }),
  check: ({ which, mutations, cut }) => {
    const share = recordTranscript().shares[0]!;
    const real = which === "share" ? share.toBytes() : share.publicPackage();
    for (const [at, x] of mutations) real[at % real.length]! ^= x;
    const bytes = cut === null ? real : real.slice(0, cut % (real.length + 1));
    return outcome(() => {
      if (which === "package") return packageInfo(bytes);
      const s = KeyShare.fromBytes(bytes);
      s.free();
      return s;
    }, [DklsError]);
  },
  runs: { sample: 300, full: 10_000 },
  timeBoundMs: 5_000,
});

export const enclaveTargets: AnyTarget[] = [
  peerOpen,
  unseal,
  cmsParse,
  cmsDecrypt,
  wasmPhases,
  wasmShares,
];
