/**
 * A key import's dealing (src/enclave/lifecycle-import.ts ImportSession),
 * over the real core: the dealer's phase 1 deals every other party exactly
 * its share and keeps its own; each recipient takes exactly one message,
 * from the dealer, addressed to it, carrying a share of its index, t, n and
 * generation 0, and refuses (and closes) on anything else; the dealt shares
 * sign under the imported key. Sealing between enclaves is peer-envelope.ts's
 * (tested there); the cluster path is test/integration/key-import.test.ts.
 */
import { randomBytes } from "node:crypto";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { describe, expect, it } from "vitest";
import { signInProcess } from "../../src/dev/in-process.ts";
import { loadDkls, rekey, type KeyShare } from "../../src/enclave/dkls23/binding.ts";
import { ImportSession } from "../../src/enclave/lifecycle-import.ts";
import {
  encodeMessageHeader,
  HEADER_LEN,
  parseMessage,
  type ProtocolMessage,
} from "../../src/shared/wire/protocol-message.ts";
import { toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";

loadDkls();

const T = 2;
const N = 3;

function dealt(secretKey = secp256k1.utils.randomSecretKey()): KeyShare[] {
  return rekey({
    threshold: T,
    parties: N,
    secretKey: secretKey.slice(),
    sessionId: randomBytes(32),
  });
}

function sessions(sessionId: Uint8Array, shares: KeyShare[]) {
  return [1, 2, 3].map(
    (me) =>
      new ImportSession({
        me,
        dealer: 1,
        threshold: T,
        parties: N,
        sessionId,
        ...(me === 1 ? { shares } : {}),
      }),
  );
}

/** A copy of `m` with another sender or recipient in its header. */
function reheaded(m: ProtocolMessage, h: { from?: number; to?: number }): ProtocolMessage {
  const from = h.from ?? m.from;
  const to = h.to ?? m.to;
  const bytes = m.bytes.slice();
  bytes.set(
    encodeMessageHeader({ ceremony: "import", phase: 1, from, to, sessionId: m.sessionId }),
    0,
  );
  return { ...m, from, to, bytes };
}

describe("the import dealing", () => {
  it("travels under ceremony code 4 of the version-1 header (pinned)", () => {
    const header = encodeMessageHeader({
      ceremony: "import",
      phase: 1,
      from: 1,
      to: 2,
      sessionId: new Uint8Array(32).fill(0x11),
    });
    expect(toHex(header)).toBe(`0104010102${"11".repeat(32)}`);
    expect(parseMessage(header).ceremony).toBe("import");
  });

  it("deals each party its own share; the shares sign under the imported key", () => {
    const secretKey = secp256k1.utils.randomSecretKey();
    const publicKey = secp256k1.getPublicKey(secretKey, true);
    const id = randomBytes(32);
    const [dealer, p2, p3] = sessions(id, dealt(secretKey));
    const out = dealer!.phase1();
    expect(out.map((m) => [m.from, m.to, m.ceremony])).toEqual([
      [1, 2, "import"],
      [1, 3, "import"],
    ]);
    expect(p2!.phase1()).toEqual([]);
    const mine = (k: number) => out.filter((m) => m.to === k);
    expect(dealer!.phase2([])).toEqual([]);
    expect(p2!.phase2(mine(2))).toEqual([]);
    expect(p3!.phase2(mine(3))).toEqual([]);
    const finals = [dealer!, p2!, p3!].map((s) => {
      s.phase3([]);
      return s.phase4([]);
    });
    expect(finals.map((s) => s.index)).toEqual([1, 2, 3]);
    for (const s of finals) expect(toHex(s.publicKey)).toBe(toHex(publicKey));
    const digest = randomBytes(32);
    for (const quorum of [
      [1, 2],
      [2, 3],
      [1, 3],
    ])
      expect(verifySignature(publicKey, digest, signInProcess(finals, quorum, digest)[0]!)).toBe(
        true,
      );
    for (const s of finals) s.free();
  });

  it("refuses a share from another sender, for another party, twice, or none, and closes", () => {
    const id = randomBytes(32);
    const out = sessions(id, dealt())[0]!.phase1();
    const to2 = out.find((m) => m.to === 2)!;
    const to3 = out.find((m) => m.to === 3)!;
    const refused = (received: ProtocolMessage[]) => {
      const s = sessions(id, dealt())[1]!;
      s.phase1();
      expect(() => s.phase2(received)).toThrow(/key import/);
      // Closed: nothing more is accepted.
      expect(() => s.phase3([])).toThrow();
    };
    refused([reheaded(to2, { from: 3 })]); // not the dealer
    refused([reheaded(to3, { to: 2 })]); // party 3's share addressed to party 2: wrong index
    refused([to2, to2]);
    refused([]);
    const truncated = { ...to2, bytes: to2.bytes.slice(0, HEADER_LEN + 100) };
    refused([truncated]);
  });

  it("the dealer takes no messages, and only the dealer may hold the dealt shares", () => {
    const id = randomBytes(32);
    const shares = dealt();
    const [dealer] = sessions(id, shares);
    const out = dealer!.phase1();
    expect(() => dealer!.phase2([out[0]!])).toThrow(/carries no messages/);
    const extra = dealt();
    expect(
      () =>
        new ImportSession({
          me: 2,
          dealer: 1,
          threshold: T,
          parties: N,
          sessionId: id,
          shares: extra,
        }),
    ).toThrow(/only the import's dealer/);
    for (const s of extra) s.free();
  });
});
