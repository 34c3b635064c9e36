/**
 * The SDK's strict answer parsers (src/client/responses.ts) and key types: every wallet and
 * signature answer must name a key type the SDK knows, so that a wallet of a curve added later
 * is refused as bad_response instead of being read as a secp256k1 one.
 */
import { describe, expect, it } from "vitest";
import {
  parseCreateWallet,
  parseImport,
  parseRefresh,
  parseRepair,
  parseReshare,
  parseRetire,
  parseSign,
  parseWalletInfo,
  parseWallets,
  ShapeError,
} from "../../src/client/responses.ts";
import { thrown } from "../helpers/thrown.ts";

// Shapes only: these parsers check form, not whether the key, address or signature agree.
const wallet = {
  walletId: "w_1",
  keyType: "secp256k1-ecdsa",
  publicKey: `02${"11".repeat(32)}`,
  address: `0x${"ab".repeat(20)}`,
  threshold: 2,
  parties: 3,
  generation: 0,
  nodes: ["a", "b", "c"],
};
const signature = {
  r: "11".repeat(32),
  s: "22".repeat(32),
  recoveryId: 0,
  ethereum: "33".repeat(65),
  der: "44".repeat(70),
};

type Case = [string, (v: unknown) => unknown, Record<string, unknown>, string];
const CASES: Case[] = [
  ["wallet", parseWalletInfo, wallet, "result"],
  ["dkg", parseCreateWallet, wallet, "result"],
  ["import", parseImport, { ...wallet, generation: 1, imported: true, dealerNode: "a" }, "result"],
  [
    "repair",
    parseRepair,
    { ...wallet, generation: 1, partyIndex: 3, fromNode: null, toNode: "d", helpers: ["a", "b"] },
    "result",
  ],
  [
    "refresh",
    parseRefresh,
    { walletId: "w_1", keyType: "secp256k1-ecdsa", generation: 1, ...pick(wallet) },
    "result",
  ],
  [
    "retire",
    parseRetire,
    {
      walletId: "w_1",
      keyType: "secp256k1-ecdsa",
      ...pick(wallet),
      retired: [{ nodeId: "a", partyIndex: 1 }],
      remaining: [],
      approverKeyIds: [],
    },
    "result",
  ],
  [
    "sign",
    parseSign,
    {
      walletId: "w_1",
      keyType: "secp256k1-ecdsa",
      digest: "55".repeat(32),
      path: null,
      ...pick(wallet),
      signature,
      signers: ["a", "b"],
      coordinator: "a",
    },
    "result",
  ],
  ["wallets", parseWallets, { wallets: [wallet] }, "result.wallets[0]"],
];

function pick(w: typeof wallet) {
  return { publicKey: w.publicKey, address: w.address };
}

/** The answer with keyType set to `k` (or removed), where the parser reads it. */
function withKey(answer: Record<string, unknown>, k: unknown): Record<string, unknown> {
  if ("wallets" in answer) return { wallets: [withKey(wallet, k)] };
  const { keyType: _, ...rest } = answer;
  return k === undefined ? rest : { ...rest, keyType: k };
}

describe("answer parsers and key types", () => {
  it.each(CASES)("%s: takes secp256k1-ecdsa and returns it", (_op, parse, answer) => {
    const parsed = parse(answer) as { keyType?: string; wallets?: { keyType: string }[] };
    expect(parsed.keyType ?? parsed.wallets?.[0]?.keyType).toBe("secp256k1-ecdsa");
  });

  it.each(CASES)("%s: refuses a missing keyType", (_op, parse, answer, at) => {
    const e = thrown(ShapeError, () => parse(withKey(answer, undefined)));
    expect(e.message).toBe(`${at}.keyType is missing: it must be one of "secp256k1-ecdsa"`);
  });

  it.each(CASES)("%s: refuses a key type it does not know", (_op, parse, answer, at) => {
    for (const k of ["ed25519-eddsa", "secp256k1", "SECP256K1-ECDSA", 1, null]) {
      const e = thrown(ShapeError, () => parse(withKey(answer, k)));
      expect(e.message).toMatch(`${at}.keyType`);
      expect(e.message).toMatch(/is not a key type this SDK knows \(one of "secp256k1-ecdsa"\)/);
    }
  });
});

describe("reshare answer", () => {
  const reshare = {
    ...wallet,
    generation: 1,
    fromThreshold: 2,
    fromParties: 4,
    dealers: ["a", "b", "c"],
    added: [],
  };
  it("reads every leaver, online or not, with whether it deleted; refuses a malformed one", () => {
    const leaving = [
      { partyIndex: 4, nodeId: "d", online: true, replaced: true },
      { partyIndex: 5, online: false, replaced: false },
    ];
    expect(parseReshare({ ...reshare, leaving }).leaving).toEqual(leaving);
    // A node from before leavers were reported: none listed.
    expect(parseReshare(reshare).leaving).toEqual([]);
    expect(
      thrown(ShapeError, () =>
        parseReshare({ ...reshare, leaving: [{ partyIndex: 4, online: "yes", replaced: true }] }),
      ).message,
    ).toMatch(/result\.leaving\[0\]\.online and .*replaced must be true or false/);
    expect(() =>
      parseReshare({ ...reshare, leaving: [{ partyIndex: 0, online: true, replaced: true }] }),
    ).toThrow(ShapeError);
  });
});
