/**
 * The enclave's verdict on a share repair's evidence (src/enclave/supersession.ts,
 * SUPERSEDED_SHARE) and the holders' active proofs it needs (PROVE_ACTIVE), with real Ed25519
 * channel keys and a real share table holding a real 2-of-2 share: n statements of a newer
 * generation of the same wallet key, and from every holder a proof, signed for this enclave's
 * fresh single-use nonce, that it holds that generation loaded now, with this node's party
 * index held by another machine (PCR4). Every other shape of evidence is refused: a forged
 * statement, a replayed older or equal generation, another wallet or key; a session rolled
 * back everywhere (its statements are real, but the holders hold the older generation now);
 * a proof missing, twice, of another enclave, wallet, key or nonce; a nonce never issued,
 * used, expired or of another wallet; this machine at any index of the newer set; a pending
 * share here, or a loaded share that is not the row named. A holder that a reshare left out of
 * a smaller committee (its index beyond the newer set) gets a verdict only when every seat is
 * attested on another machine. A verdict raises the wallet's floor: the superseded generation
 * no longer loads here.
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { dkgInProcess } from "../../src/dev/in-process.ts";
import { channelSignatureValid } from "../../src/enclave/channel-signature.ts";
import { KeyShare, loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerIdentity } from "../../src/enclave/peer-attestation.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { ShareTable, type LoadedShare } from "../../src/enclave/shares.ts";
import {
  NONCE_TTL_MS,
  proveActive,
  SupersessionNonces,
  verifySupersession,
} from "../../src/enclave/supersession.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeActiveProof,
  encodeSignedActiveProof,
  parseSignedActiveProofUnverified,
  type ActiveProof,
} from "../../src/shared/wire/active-proof.ts";
import type { SupersededShareRequest } from "../../src/shared/wire/enclave-ops.ts";
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  publicPackageHash,
  type WalletStatement,
} from "../../src/shared/wire/wallet-statement.ts";
import { thrown } from "../helpers/thrown.ts";

// Parties 1..3 at generation 2; party 3 now on node 6's machine, this enclave is node 3's.
const keys = [1, 2, 3].map(() => new PeerKeys());
const pcr4 = (n: number) => new Uint8Array(48).fill(n);
const machines = [pcr4(1), pcr4(2), pcr4(6)];
const OWN = pcr4(3);
const pkg = randomBytes(32);
/** A real share of a real key, serialised (a table frees what it drops: each test parses its own). */
let stored: Uint8Array;
let walletKey: Uint8Array;
/** This node's old party as a LOAD_SHARE would have opened it. */
const mine = () => KeyShare.fromBytes(stored.slice());

beforeAll(() => {
  loadDkls();
  // Party 3 of 3, as the rows below name it (a proof carries its sharing's n).
  const share = dkgInProcess(2, 3)[2]!;
  stored = share.toBytes();
  walletKey = share.publicKey;
});

const statement = (party: number, over: Partial<WalletStatement> = {}): WalletStatement => ({
  walletId: "w_super",
  threshold: 2,
  parties: 3,
  partyIndex: party,
  generation: 2,
  publicKey: walletKey,
  chainCode: new Uint8Array(32).fill(7),
  publicPackageHash: pkg,
  policyHash: null,
  ...over,
});
const signedStatement = (s: WalletStatement, by = keys[s.partyIndex - 1]!) => {
  const e = encodeWalletStatement(s);
  return encodeSignedWalletStatement(e, by.sign(e));
};
/** A "document" per key: attested() maps it to that key and its machine (real document checks: peer-attestation tests). */
const docOf = (k: PeerKeys) => Uint8Array.from(k.ed25519Public);
const trust = (machine = machines) => ({
  attested: (doc: Uint8Array): PeerIdentity => {
    const at = keys.findIndex((x) => toHex(x.ed25519Public) === toHex(doc));
    if (at < 0) throw new Error("document does not verify");
    return {
      pcr0: new Uint8Array(48),
      x25519Public: keys[at]!.x25519Public,
      ed25519Public: keys[at]!.ed25519Public,
      documentHash: new Uint8Array(32),
      pcr4: machine[at]!,
    };
  },
  ownPcr4: OWN,
});
/** The holders' side: party p's enclave signs the share it holds loaded (generation 2 unless told). */
const proof = (
  p: number,
  nonce: Uint8Array,
  over: Partial<ActiveProof> = {},
  by = keys[p - 1]!,
) => {
  const e = encodeActiveProof({
    nonce,
    walletId: "w_super",
    partyIndex: p,
    generation: 2,
    publicKey: walletKey,
    parties: 3,
    publicPackageHash: pkg,
    ...over,
  });
  return encodeSignedActiveProof(e, by.sign(e));
};

/** This enclave: its share table and its nonces; `ask` issues a nonce and builds evidence for it. */
function lostEnclave(now = () => Date.now()) {
  const shares = new ShareTable(null, toHex(OWN), () => {}, 60_000);
  const nonces = new SupersessionNonces(now);
  const ask = (
    over: Partial<SupersededShareRequest> = {},
    proofs = (nonce: Uint8Array) => [3, 1, 2].map((p) => proof(p, nonce)),
  ): SupersededShareRequest => {
    const { nonce } = nonces.issue({ walletId: "w_super" });
    return {
      walletId: "w_super",
      partyIndex: 3,
      generation: 1,
      publicKey: walletKey,
      statements: [1, 2, 3].map((p) => signedStatement(statement(p))),
      documents: keys.map(docOf),
      nonce,
      activeProofs: proofs(nonce),
      ...over,
    };
  };
  const verdict = (req: SupersededShareRequest, t = trust()) =>
    verifySupersession(req, shares, nonces, t);
  const refused = (req: SupersededShareRequest, t = trust()) =>
    thrown(EnclaveError, () => verdict(req, t)).message;
  return { shares, nonces, ask, verdict, refused };
}

/** Puts `s` into the real table as a LOAD_SHARE would (its private put: no KMS here). */
const putLoaded = (shares: ShareTable, s: LoadedShare) =>
  (shares as unknown as { put(w: string, s: LoadedShare): void }).put("w_super", s);

describe("SUPERSEDED_SHARE", () => {
  it("a newer generation every holder holds loaded now, this node's index on another machine: a verdict, and the old generation refused from then on", () => {
    const e = lostEnclave();
    putLoaded(e.shares, {
      share: mine(),
      generation: 1,
      partyIndex: 3,
      publicKey: walletKey,
      policy: null,
    });
    expect(e.verdict(e.ask())).toEqual({
      walletId: "w_super",
      partyIndex: 3,
      generation: 1,
      supersededBy: 2,
      holderPcr4: pcr4(6),
    });
    expect(e.shares.current("w_super")).toBeUndefined();
    expect(thrown(EnclaveError, () => e.shares.refuseIfStale("w_super", 1)).code).toBe(
      "stale_share",
    );
  });

  it("a holder left out of a smaller committee (a reshare): a verdict naming no holder, only when every seat is another machine's", () => {
    // This node held party 4 of generation 1; generation 2 has three seats, none of them its.
    const e = lostEnclave();
    putLoaded(e.shares, {
      share: mine(),
      generation: 1,
      partyIndex: 4,
      publicKey: walletKey,
      policy: null,
    });
    // Any seat on this machine, or attested without a node identity: it may still be this one.
    expect(e.refused(e.ask({ partyIndex: 4 }), trust([pcr4(1), OWN, pcr4(6)]))).toMatch(
      /this machine holds party 2 of the wallet at generation 2: it is still a member/,
    );
    expect(
      e.refused(e.ask({ partyIndex: 4 }), trust([pcr4(1), new Uint8Array(48), pcr4(6)])),
    ).toMatch(/party 2's enclave is attested without a node identity/);
    // Not live on every seat: nothing.
    const rolledBack = e.ask({ partyIndex: 4 }, (n) =>
      [1, 2, 3].map((p) => proof(p, n, { generation: 1 })),
    );
    expect(e.refused(rolledBack)).toMatch(/holds generation 1 loaded, not 2/);
    expect(e.shares.current("w_super")).toBeDefined();
    expect(e.verdict(e.ask({ partyIndex: 4 }))).toEqual({
      walletId: "w_super",
      partyIndex: 4,
      generation: 1,
      supersededBy: 2,
    });
    expect(e.shares.current("w_super")).toBeUndefined();
    expect(thrown(EnclaveError, () => e.shares.refuseIfStale("w_super", 1)).code).toBe(
      "stale_share",
    );
  });

  it("refuses a forced rollback's replay: real statements of generation 2, the holders back at generation 1", () => {
    // The broker replays the rolled-back session's statements; the honest holders, rolled
    // back, hold generation 1 loaded and sign only that for the fresh nonce.
    const e = lostEnclave();
    const rolledBack = e.ask({}, (nonce) =>
      [1, 2, 3].map((p) => proof(p, nonce, { generation: 1 })),
    );
    expect(e.refused(rolledBack)).toMatch(/party 1's enclave holds generation 1 loaded, not 2/);
    // Only the new node (or one compromised host) still proves generation 2: not n of n.
    const one = e.ask({}, (nonce) => [
      proof(3, nonce),
      proof(1, nonce, { generation: 1 }),
      proof(2, nonce, { generation: 1 }),
    ]);
    expect(e.refused(one)).toMatch(/holds generation 1 loaded, not 2/);
    const only = e.ask({}, (nonce) => [proof(3, nonce)]);
    expect(e.refused(only)).toMatch(/needs 2\.\.16 active proofs/);
    // Proofs of generation 2 made before the rollback, for an earlier nonce: replayed.
    const early = e.nonces.issue({ walletId: "w_super" }).nonce;
    const replayed = e.ask({}, () => [1, 2, 3].map((p) => proof(p, early)));
    expect(e.refused(replayed)).toMatch(/for another nonce/);
    expect(e.shares.current("w_super")).toBeUndefined();
    expect(() => e.shares.refuseIfStale("w_super", 1)).not.toThrow();
  });

  it("refuses a proof missing, twice, signed by another enclave, or of another wallet or key", () => {
    const e = lostEnclave();
    expect(e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n)]))).toMatch(
      /needs one active proof from each of the 3 parties/,
    );
    expect(e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n), proof(2, n)]))).toMatch(
      /party 2's active proof appears twice/,
    );
    expect(
      e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n), proof(3, n, {}, keys[0])])),
    ).toMatch(/party 3's active proof is not signed by its statement's channel key/);
    const otherKey = Uint8Array.from([3, ...randomBytes(32)]);
    expect(
      e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n), proof(3, n, { publicKey: otherKey })])),
    ).toMatch(/party 3's active proof is of another wallet or key/);
    expect(
      e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n), proof(3, n, { walletId: "w_other" })])),
    ).toMatch(/party 3's active proof is of another wallet or key/);
    expect(
      e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n), proof(4, n, { parties: 4 }, keys[2])])),
    ).toMatch(/names party 4, not in the set/);
    // Live at that generation and index, but a share of another sharing (another package, or
    // another committee size): it proves nothing about the statements' sharing.
    for (const other of [{ publicPackageHash: randomBytes(32) }, { parties: 4 }])
      expect(e.refused(e.ask({}, (n) => [proof(1, n), proof(2, n, other), proof(3, n)]))).toMatch(
        /party 2's active proof is of another sharing than the statements'/,
      );
    expect(e.verdict(e.ask())).toMatchObject({ supersededBy: 2 });
  });

  it("takes each nonce once, only for its wallet and only while fresh", () => {
    let t = 1_000_000;
    const e = lostEnclave(() => t);
    const req = e.ask();
    // Refused for another reason: the nonce is spent all the same.
    expect(e.refused({ ...req, generation: 2 })).toMatch(/not newer/);
    expect(e.refused(req)).toMatch(/nonce is not one this enclave issued/);
    const never = e.ask({ nonce: new Uint8Array(32).fill(1) });
    expect(e.refused(never)).toMatch(/nonce is not one this enclave issued/);
    const other = e.nonces.issue({ walletId: "w_other" }).nonce;
    expect(e.refused(e.ask({ nonce: other }, () => [1, 2, 3].map((p) => proof(p, other))))).toMatch(
      /nonce is not one this enclave issued/,
    );
    const late = e.ask();
    t += NONCE_TTL_MS + 1;
    expect(e.refused(late)).toMatch(/or it expired/);
    // A new nonce replaces the wallet's previous one.
    const first = e.ask();
    e.ask();
    expect(e.refused(first)).toMatch(/nonce is not one this enclave issued/);
  });

  it("refuses a forged statement, an older or equal generation, another wallet or key, a set missing a party", () => {
    const e = lostEnclave();
    const forged = e.ask();
    forged.statements[2] = signedStatement(statement(3), new PeerKeys());
    expect(e.refused(forged)).toMatch(/not signed by its document's channel key/);
    for (const generation of [2, 3]) expect(e.refused(e.ask({ generation }))).toMatch(/not newer/);
    expect(e.refused(e.ask({ publicKey: Uint8Array.from([3, ...randomBytes(32)]) }))).toMatch(
      /another wallet or key/,
    );
    const two = e.ask();
    expect(
      e.refused({
        ...two,
        statements: two.statements.slice(0, 2),
        documents: two.documents.slice(0, 2),
      }),
    ).toMatch(/supersession refused/);
    // Two statements of one index (a duplicate-index set).
    const dup = e.ask();
    dup.statements[2] = signedStatement(statement(2), keys[2]);
    expect(e.refused(dup)).toMatch(/party 2 appears twice/);
  });

  it("refuses when this machine holds this node's index, or any other index, of the newer set, or the holder has no node identity", () => {
    const e = lostEnclave();
    expect(e.refused(e.ask(), trust([pcr4(1), pcr4(2), OWN]))).toMatch(
      /still held on this machine/,
    );
    expect(e.refused(e.ask(), trust([OWN, pcr4(2), pcr4(6)]))).toMatch(
      /this machine holds party 1 of the wallet at generation 2: it is still a member/,
    );
    expect(e.refused(e.ask(), trust([pcr4(1), pcr4(2), new Uint8Array(48)]))).toMatch(
      /without a node identity/,
    );
  });

  it("refuses with a pending share here, or a loaded share that is not the row named", () => {
    const pending = lostEnclave();
    pending.shares.holdPending("ab".repeat(32), "w_super", mine(), null, {
      ceremony: "refresh",
      keys: new Map(),
      sign: () => new Uint8Array(64),
    });
    expect(pending.refused(pending.ask())).toMatch(/pending here: settle it, never delete it/);
    const other = lostEnclave();
    putLoaded(other.shares, {
      share: mine(),
      generation: 1,
      partyIndex: 2,
      publicKey: walletKey,
      policy: null,
    });
    expect(other.refused(other.ask())).toMatch(/the share loaded here is not the row named/);
    putLoaded(other.shares, {
      share: mine(),
      generation: 0,
      partyIndex: 3,
      publicKey: walletKey,
      policy: null,
    });
    expect(other.refused(other.ask())).toMatch(/the share loaded here is not the row named/);
  });

  it("refuses unknown fields", () => {
    const e = lostEnclave();
    expect(e.refused({ ...e.ask(), nodeId: "node-6" } as SupersededShareRequest)).toMatch(
      /no field nodeId/,
    );
  });
});

describe("PROVE_ACTIVE", () => {
  it("signs, for the nonce, the share loaded now; with none loaded (a pending one only) it signs nothing", () => {
    const holder = new PeerKeys();
    const shares = new ShareTable(null, toHex(pcr4(6)), () => {}, 60_000);
    const nonce = randomBytes(32);
    const sign = (m: Uint8Array) => holder.sign(m);
    shares.holdPending("cd".repeat(32), "w_super", mine(), null, {
      ceremony: "refresh",
      keys: new Map(),
      sign,
    });
    expect(
      thrown(EnclaveError, () => proveActive({ walletId: "w_super", nonce }, shares, sign)).code,
    ).toBe("share_not_loaded");
    putLoaded(shares, {
      share: mine(),
      generation: 2,
      partyIndex: 3,
      publicKey: walletKey,
      policy: null,
    });
    const { proof: signed } = proveActive({ walletId: "w_super", nonce }, shares, sign);
    const parsed = parseSignedActiveProofUnverified(signed);
    expect(parsed.proof).toEqual({
      nonce: Uint8Array.from(nonce),
      walletId: "w_super",
      partyIndex: 3,
      generation: 2,
      publicKey: walletKey,
      parties: 3,
      publicPackageHash: publicPackageHash(mine().publicPackage()),
    });
    expect(channelSignatureValid(parsed.signature, parsed.encoding, holder.ed25519Public)).toBe(
      true,
    );
    expect(
      thrown(EnclaveError, () =>
        proveActive({ walletId: "w_super", nonce: nonce.subarray(1) }, shares, sign),
      ).code,
    ).toBe("bad_request");
  });
});
