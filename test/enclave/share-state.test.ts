/**
 * The checks an enclave makes on its peers' share-state statements at phase 2
 * (src/enclave/share-state.ts) and on a commit certificate
 * (src/enclave/commit-certificate.ts), with real Ed25519 channel keys: what
 * the hosts relay decides nothing unless the peers' keys signed it, and a
 * participant below the session's highest generation is named, by everyone.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  verifyCommitCertificate,
  type CertificateSubject,
} from "../../src/enclave/commit-certificate.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerIdentity } from "../../src/enclave/peer-attestation.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { checkPeerShareStates } from "../../src/enclave/share-state.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeShareState,
  encodeSignedShareState,
  type ShareState,
} from "../../src/shared/wire/share-state.ts";
import {
  encodeSignedWalletStatement,
  encodeWalletStatement,
  type WalletStatement,
} from "../../src/shared/wire/wallet-statement.ts";
import { thrown } from "../helpers/thrown.ts";

const keys = [1, 2, 3].map(() => new PeerKeys());
const sessionId = randomBytes(32);
const pkg = randomBytes(32);
/** The x coordinate of a test wallet key (the encoding checks only its length). */
const keyX = Uint8Array.from(randomBytes(32));

const state = (party: number, over: Partial<ShareState> = {}): ShareState => ({
  sessionId,
  ceremony: "sign",
  walletId: "w_rollback",
  partyIndex: party,
  generation: 1,
  publicPackageHash: pkg,
  policyHash: null,
  ...over,
});
const signed = (s: ShareState, by = keys[s.partyIndex - 1]!) => {
  const e = encodeShareState(s);
  return encodeSignedShareState(e, by.sign(e));
};
/** Party `me`'s view: every other party's channel key. */
const peersOf = (me: number) =>
  new Map([1, 2, 3].filter((p) => p !== me).map((p) => [p, keys[p - 1]!.ed25519Public]));

const refusal = (f: () => unknown) => thrown(EnclaveError, f);

describe("peer share-state statements at phase 2", () => {
  it("agreeing statements from every peer pass", () => {
    expect(() =>
      checkPeerShareStates(state(1), [signed(state(3)), signed(state(2))], peersOf(1)),
    ).not.toThrow();
  });

  it("a peer at an older generation: stale_share naming it, at every current party, and the stale party names itself", () => {
    const stale = state(2, { generation: 0 });
    for (const me of [1, 3]) {
      const others = [1, 3].filter((p) => p !== me).map((p) => signed(state(p)));
      const e = refusal(() =>
        checkPeerShareStates(state(me), [...others, signed(stale)], peersOf(me)),
      );
      expect(e.code).toBe("stale_share");
      expect(e.blame.party).toBe(2);
    }
    const e = refusal(() =>
      checkPeerShareStates(stale, [signed(state(1)), signed(state(3))], peersOf(2)),
    );
    expect(e.code).toBe("stale_share");
    expect(e.blame.party).toBe(2);
  });

  it("the generation the host or coordinator believes plays no part: only the signed ones are compared", () => {
    // All at 7, whatever anyone was told: they agree, so it passes.
    const at7 = (p: number) => state(p, { generation: 7 });
    expect(() =>
      checkPeerShareStates(at7(1), [signed(at7(2)), signed(at7(3))], peersOf(1)),
    ).not.toThrow();
  });

  it("the same generation with another public package or policy: ceremony_failed naming the peer", () => {
    for (const over of [{ publicPackageHash: randomBytes(32) }, { policyHash: randomBytes(32) }]) {
      const e = refusal(() =>
        checkPeerShareStates(state(1), [signed(state(2, over)), signed(state(3))], peersOf(1)),
      );
      expect(e.code).toBe("ceremony_failed");
      expect(e.blame.party).toBe(2);
    }
  });

  it("a missing, duplicated or extra statement is refused", () => {
    for (const relayed of [
      [signed(state(2))],
      [signed(state(2)), signed(state(2))],
      [signed(state(2)), signed(state(3)), signed(state(3))],
      undefined,
      "not a list",
    ]) {
      const e = refusal(() => checkPeerShareStates(state(1), relayed, peersOf(1)));
      expect(e.code).toBe("ceremony_failed");
      // Only the relaying hosts could drop or duplicate a statement: no party is blamed.
      expect(e.blame).toEqual({});
    }
  });

  it("a statement the host forged (another key), or a peer's statement of another session, ceremony or wallet: refused", () => {
    const forged = signed(state(2, { generation: 9 }), keys[0]);
    const e = refusal(() => checkPeerShareStates(state(1), [forged, signed(state(3))], peersOf(1)));
    expect(e.code).toBe("ceremony_failed");
    expect(e.message).toMatch(/valid signature/);
    // Party 2 signed nothing of this: naming it would let the host frame it.
    expect(e.blame).toEqual({});
    for (const over of [
      { sessionId: randomBytes(32) },
      { ceremony: "refresh" as const },
      { walletId: "w_other" },
    ]) {
      const e2 = refusal(() =>
        checkPeerShareStates(state(1), [signed(state(2, over)), signed(state(3))], peersOf(1)),
      );
      expect(e2.message).toMatch(/another session, ceremony or wallet/);
      // A replayed statement is the relayer's doing, not party 2's.
      expect(e2.blame).toEqual({});
    }
  });

  it("a statement naming a party outside the session, or garbage: refused", () => {
    const outsider = new PeerKeys();
    expect(
      refusal(() =>
        checkPeerShareStates(state(1), [signed(state(4), outsider), signed(state(3))], peersOf(1)),
      ).message,
    ).toMatch(/not another participant/);
    expect(
      refusal(() =>
        checkPeerShareStates(state(1), [randomBytes(100), signed(state(3))], peersOf(1)),
      ).message,
    ).toMatch(/does not parse/);
  });
});

describe("commit certificates", () => {
  const statement = (party: number, over: Partial<WalletStatement> = {}): WalletStatement => ({
    walletId: "w_rollback",
    threshold: 2,
    parties: 3,
    partyIndex: party,
    generation: 1,
    publicKey: Uint8Array.from([2, ...keyX]),
    chainCode: new Uint8Array(32).fill(7),
    publicPackageHash: pkg,
    policyHash: null,
    ...over,
  });
  const signedStatement = (s: WalletStatement, by = keys[s.partyIndex - 1]!) => {
    const e = encodeWalletStatement(s);
    return encodeSignedWalletStatement(e, by.sign(e));
  };
  /** A "document" per key: the test's attested() maps it to that key (real document checks: peer-attestation tests). */
  const docOf = (k: PeerKeys) => Uint8Array.from(k.ed25519Public);
  const trust = (me: number) => ({
    attested: (doc: Uint8Array): PeerIdentity => {
      const k = keys.find((x) => toHex(x.ed25519Public) === toHex(doc));
      if (!k) throw new Error("document does not verify");
      return {
        pcr0: new Uint8Array(48),
        x25519Public: k.x25519Public,
        ed25519Public: k.ed25519Public,
        documentHash: new Uint8Array(32),
      };
    },
    ownKey: keys[me - 1]!.ed25519Public,
  });
  const subject: CertificateSubject = {
    walletId: "w_rollback",
    generation: 1,
    partyIndex: 1,
    publicPackageHash: pkg,
  };
  const full = () => ({
    statements: [1, 2, 3].map((p) => signedStatement(statement(p))),
    documents: keys.map(docOf),
  });
  const refused = (c: { statements: unknown; documents: unknown }, s = subject) =>
    refusal(() => verifyCommitCertificate(c.statements, c.documents, s, trust(s.partyIndex)));

  it("n agreeing statements signed by the n documents' keys certify their generation", () => {
    const c = full();
    expect(verifyCommitCertificate(c.statements, c.documents, subject, trust(1))).toBe(1);
  });

  it("refuses a certificate for another generation, wallet or package than the share activated", () => {
    for (const over of [
      { generation: 2 },
      { walletId: "w_other" },
      { publicPackageHash: randomBytes(32) },
    ])
      expect(refused(full(), { ...subject, ...over }).message).toMatch(/certifies another/);
  });

  it("refuses a missing party, a duplicated one, disagreeing statements and mismatched lists", () => {
    const c = full();
    expect(refused({ ...c, statements: c.statements.slice(0, 2) }).message).toMatch(/as many/);
    expect(
      refused({ statements: c.statements.slice(0, 2), documents: c.documents.slice(0, 2) }).message,
    ).toMatch(/2 statements for 3 parties/);
    const twice = {
      statements: [c.statements[0]!, c.statements[0]!, c.statements[2]!],
      documents: [c.documents[0]!, c.documents[0]!, c.documents[2]!],
    };
    expect(refused(twice).message).toMatch(/twice/);
    const other = full();
    other.statements[2] = signedStatement(statement(3, { threshold: 3 }));
    expect(refused(other).message).toMatch(/disagrees/);
  });

  it("refuses a statement not signed by its document's key, and one of this party not signed by this enclave", () => {
    const c = full();
    c.statements[1] = signedStatement(statement(2), keys[2]);
    expect(refused(c).message).toMatch(/not signed by its document's channel key/);
    const swapped = full();
    // Party 1's statement signed by party 2's enclave, and the other way round: each matches its document.
    swapped.statements[0] = signedStatement(statement(1), keys[1]);
    swapped.statements[1] = signedStatement(statement(2), keys[0]);
    swapped.documents = [docOf(keys[1]!), docOf(keys[0]!), docOf(keys[2]!)];
    expect(refused(swapped).message).toMatch(/not this enclave's/);
  });

  it("refuses a document that does not verify", () => {
    const c = full();
    c.documents[2] = randomBytes(40);
    expect(refused(c).message).toMatch(/document 2/);
  });
});
