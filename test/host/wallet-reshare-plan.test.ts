/**
 * The coordinator's checks of a reshare request before anything runs
 * (src/host/wallet-reshare.ts planReshare): every holder that stays deals and
 * keeps its party index, added nodes take the next indices in request order,
 * holders left out (of the highest indices) leave, an offline one or t_old of them only on the
 * request's flag; a leaver that said not-replaced is asked once more; a staying
 * holder offline, a leaving holder whose index a stayer would have to take,
 * fewer than t_old staying, an added node offline, a threshold out of range, a
 * node named twice, and a reshare that changes nothing are refused with their
 * own sentence.
 */
import { describe, expect, it } from "vitest";
import { RequestError } from "../../src/host/planning.ts";
import { askTwice, isReshareDealer, planReshare } from "../../src/host/wallet-reshare.ts";
import type { HeldWallet } from "../../src/shared/wire/node-rpc.ts";
import { thrownCode } from "../helpers/thrown.ts";

const held = (nodeId: string, partyIndex: number, generation = 2): HeldWallet => ({
  walletId: "w_s",
  threshold: 3,
  parties: 5,
  publicKey: Uint8Array.of(2, ...new Uint8Array(32).fill(0x22)),
  publicPackage: new Uint8Array(1),
  chainCode: new Uint8Array(32),
  nodeId,
  partyIndex,
  generation,
});
// Party indices deliberately not in node-name order.
const holders = [held("n-c", 1), held("n-a", 2), held("n-e", 3), held("n-b", 4), held("n-d", 5)];
const live = ["n-a", "n-b", "n-c", "n-d", "n-e", "n-x", "n-y"];
const all = ["n-a", "n-b", "n-c", "n-d", "n-e"];

const refused = (f: () => unknown) => thrownCode(RequestError, f);

describe("reshare planning", () => {
  it("keeps every holder at its index and seats added nodes next, in request order", () => {
    const p = planReshare(
      live,
      { walletId: "w_s", threshold: 4, nodes: ["n-y", ...all, "n-x"] },
      holders,
    );
    expect(p.dealers.map((h) => [h.partyIndex, h.nodeId])).toEqual([
      [1, "n-c"],
      [2, "n-a"],
      [3, "n-e"],
      [4, "n-b"],
      [5, "n-d"],
    ]);
    expect(p.added).toEqual(["n-y", "n-x"]);
    expect(p.committee).toEqual(["n-c", "n-a", "n-e", "n-b", "n-d", "n-y", "n-x"]);
    expect(p.generation).toBe(2);
    // Only t changes: a reshare of the same committee.
    expect(planReshare(live, { walletId: "w_s", threshold: 4, nodes: all }, holders).added).toEqual(
      [],
    );
  });

  it("lets holders of the highest indices leave: the others deal, online leavers are named", () => {
    const p = planReshare(
      live,
      { walletId: "w_s", threshold: 3, nodes: ["n-a", "n-b", "n-c", "n-e"] },
      holders,
    );
    expect(p.dealers.map((h) => [h.partyIndex, h.nodeId])).toEqual([
      [1, "n-c"],
      [2, "n-a"],
      [3, "n-e"],
      [4, "n-b"],
    ]);
    expect([p.leaving, p.leavingParties, p.offlineLeaving, p.added, p.committee]).toEqual([
      ["n-d"],
      [5],
      [],
      [],
      ["n-c", "n-a", "n-e", "n-b"],
    ]);
    // Two leave, one is offline (it checks when it is back: only on the caller's word), and a
    // node is added in their place.
    const r = {
      walletId: "w_s",
      threshold: 3,
      nodes: ["n-a", "n-c", "n-e", "n-x"],
      allowOfflineLeaving: true,
    };
    const q = planReshare(
      live.filter((n) => n !== "n-d"),
      r,
      holders.filter((h) => h.nodeId !== "n-d"),
    );
    expect([q.dealers.map((h) => h.nodeId), q.leaving, q.offlineLeaving, q.committee]).toEqual([
      ["n-c", "n-a", "n-e"],
      ["n-b"],
      [5],
      ["n-c", "n-a", "n-e", "n-x"],
    ]);
    expect(
      refused(() =>
        planReshare(
          live.filter((n) => n !== "n-d"),
          { ...r, allowOfflineLeaving: false },
          holders.filter((h) => h.nodeId !== "n-d"),
        ),
      ),
    ).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/parties 5 of wallet w_s are offline.*allowOfflineLeaving/),
    });
  });

  it("lets as many holders as the old threshold leave only when the request says so", () => {
    // 3-of-6 to 3-of-3: the three leavers hold a working old sharing until each deletes it.
    const six = [...holders, held("n-f", 6)].map((h) => ({ ...h, parties: 6 }));
    const r = { walletId: "w_s", threshold: 3, nodes: ["n-c", "n-a", "n-e"] };
    expect(refused(() => planReshare([...live, "n-f"], r, six))).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(
        /3 holders would leave, at least the old threshold 3.*allowOldQuorumLeaving/,
      ),
    });
    // Offline leavers count too: two online, one offline.
    expect(
      refused(() =>
        planReshare(
          live,
          { ...r, allowOfflineLeaving: true },
          six.filter((h) => h.nodeId !== "n-f"),
        ),
      ).message,
    ).toMatch(/3 holders would leave/);
    const p = planReshare([...live, "n-f"], { ...r, allowOldQuorumLeaving: true }, six);
    expect([p.leaving, p.leavingParties]).toEqual([
      ["n-b", "n-d", "n-f"],
      [4, 5, 6],
    ]);
  });

  it("refuses, each with its own sentence, what it cannot run", () => {
    const plan = (over: Partial<{ threshold: number; nodes: string[] }>, hs = holders, l = live) =>
      refused(() =>
        planReshare(l, { walletId: "w_s", threshold: 3, nodes: [...all, "n-x"], ...over }, hs),
      );
    expect(plan({ nodes: ["n-a", "n-b", "n-c", "n-d", "n-x"] })).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(
        /leaving holder must hold one of the highest.*n-e holds party 3/,
      ),
    });
    expect(plan({ nodes: ["n-c", "n-a", "n-x"] })).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/at least 3 current holders .* staying to deal; 2 stay/),
    });
    expect(plan({}, holders.slice(1))).toMatchObject({
      code: "not_enough_nodes",
      message: expect.stringMatching(/every holder that stays .* online.*parties 1 are not/),
    });
    expect(
      plan(
        {},
        holders,
        live.filter((n) => n !== "n-x"),
      ),
    ).toMatchObject({
      code: "not_enough_nodes",
      message: expect.stringMatching(/not online: n-x/),
    });
    expect(plan({ threshold: 7 }).code).toBe("bad_request");
    expect(plan({ threshold: 1 }).code).toBe("bad_request");
    expect(plan({ nodes: [...all, "n-x", "n-x"] }).message).toMatch(/twice/);
    expect(plan({ nodes: all })).toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/already is 3-of-5/),
    });
  });

  it("asks a leaver that said not-replaced once more after the interval, and no more", async () => {
    // A node answers not-replaced unchecked within its rate limit (node-host.ts checkReplaced).
    const asked: string[] = [];
    const answers: Record<string, boolean[]> = { a: [true], b: [false, true], c: [false, false] };
    const started = Date.now();
    const got = await askTwice(
      ["a", "b", "c"],
      async (n) => {
        asked.push(n);
        return answers[n]!.shift()!;
      },
      50,
    );
    expect(got).toEqual([true, true, false]);
    expect(asked.sort()).toEqual(["a", "b", "b", "c", "c"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    // Nobody said no: no wait, one ask each.
    expect(await askTwice(["a"], async () => true, 60_000)).toEqual([true]);
  });

  it("tells a dealer's start from a new member's", () => {
    expect(isReshareDealer({ reshareSeats: [1, 2, 3], partyIndex: 2 })).toBe(true);
    expect(isReshareDealer({ reshareSeats: [1, 2, 3], partyIndex: 4 })).toBe(false);
    expect(isReshareDealer({ partyIndex: 1 })).toBe(false);
  });
});
