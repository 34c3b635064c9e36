/** The enclave's cap on open ceremony sessions (ceremony-registry.ts): refused with too_many_sessions, which clients see as rate_limited. */
import { describe, expect, it } from "vitest";
import {
  CeremonyRegistry,
  DEFAULT_MAX_OPEN_SESSIONS,
  type OpenSession,
} from "../../src/enclave/ceremony-registry.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import type { CeremonyStartRequest } from "../../src/shared/wire/enclave-ops.ts";
import { contractCode } from "../../src/shared/wire/errors.ts";
import { thrown } from "../helpers/thrown.ts";

const id = (n: number) => new Uint8Array(32).fill(n);

function fakeSession(): Omit<OpenSession, "timer" | "nextPhase"> {
  const closable = { close: () => {} };
  return {
    kind: "sign",
    walletId: "w",
    generation: 0,
    session: closable as unknown as OpenSession["session"],
    peer: closable as unknown as OpenSession["peer"],
  };
}

describe("open session cap", () => {
  it("refuses a start beyond maxOpen before its id is claimed, and admits it once one ends", () => {
    const reg = new CeremonyRegistry(60_000, () => {}, 0, Date.now, 2);
    for (const n of [1, 2]) {
      reg.checkRoom();
      reg.add(reg.claim(id(n)), fakeSession());
    }
    let refused: unknown;
    try {
      reg.checkRoom();
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(EnclaveError);
    expect((refused as EnclaveError).code).toBe("too_many_sessions");
    expect((refused as EnclaveError).message).toMatch(/maximum of 2 open ceremony sessions/);
    expect(contractCode("too_many_sessions")).toBe("rate_limited");
    // Session 1 ends: room for session 3, whose id the refusal did not use up.
    reg.drop(Buffer.from(id(1)).toString("hex"));
    expect(() => reg.checkRoom()).not.toThrow();
    reg.add(reg.claim(id(3)), fakeSession());
    expect(reg.size).toBe(2);
    reg.dropAll();
    expect(DEFAULT_MAX_OPEN_SESSIONS).toBe(64);
  });
});

describe("Ceremonies.start at the cap", () => {
  it("refuses one more DKG start with too_many_sessions, before any share pin or core session", () => {
    let opened = 0;
    // Peer protection is not what this test is about: messages pass through unchanged.
    const peers = {
      open: () => {
        opened++;
        return { seal: (b: Uint8Array) => b, open: (b: Uint8Array) => b, close: () => {} };
      },
    } as unknown as PeerSessions;
    const ceremonies = new Ceremonies(
      new ShareTable(null, "00".repeat(48), () => {}, 60_000),
      peers,
      () => {},
      60_000,
      0,
      { adminPolicy: null, requireApprovals: false },
      2,
    );
    const start = (n: number): CeremonyStartRequest => ({
      kind: "dkg",
      sessionId: id(n),
      walletId: `w_${n}`,
      threshold: 2,
      parties: 2,
      partyIndex: 1,
      peerDocuments: [],
      peerParties: [],
    });
    ceremonies.start(start(1));
    ceremonies.start(start(2));
    const e = thrown(EnclaveError, () => ceremonies.start(start(3)));
    expect(e.code).toBe("too_many_sessions");
    expect(opened).toBe(2);
    expect(ceremonies.size).toBe(2);
    ceremonies.abort({ sessionId: id(1) });
    // The refused start used up nothing: the same session id starts once there is room.
    expect(ceremonies.start(start(3)).messages.length).toBeGreaterThan(0);
    expect(ceremonies.size).toBe(2);
    ceremonies.abort({ sessionId: id(2) });
    ceremonies.abort({ sessionId: id(3) });
  });
});
