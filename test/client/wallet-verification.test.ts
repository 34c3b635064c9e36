/**
 * The SDK's wallet verifier (src/client/wallet-verification.ts) against
 * enclaves stood in for by channel keys and simulated-NSM documents: an
 * honest set verifies; a lying node (altered statement, another key or
 * generation, another wallet, another party), a missing holder, a document
 * from an untrusted or development root, another image, or a document not
 * binding the signing key is refused, naming the node where one is at fault.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { SimulatedNsm } from "../../src/dev/simulated-nsm.ts";
import { fakeEnclave, fakeVoucher, type FakeEnclave } from "./fake-vouchers.ts";
import { TssError } from "../../src/client/errors.ts";
import {
  verifiedSigningKey,
  verifyWallet,
  type WalletTrust,
} from "../../src/client/wallet-verification.ts";
import { toHex } from "../../src/shared/hex.ts";
import { deriveChildPublicKey } from "../../src/shared/public-key.ts";
import type { WalletStatement } from "../../src/shared/wire/wallet-statement.ts";

const IMAGE = new Uint8Array(48).fill(0xab);
const OTHER_IMAGE = new Uint8Array(48).fill(0xcd);
const pki = createDevelopmentPki();
const otherPki = createDevelopmentPki();
/** The secp256k1 generator, compressed: a valid point, so child derivation works. */
const PUBLIC_KEY = Uint8Array.from(
  Buffer.from("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", "hex"),
);
const OTHER_KEY = Uint8Array.from([0x03, ...PUBLIC_KEY.subarray(1)]);

const wallet: Omit<WalletStatement, "partyIndex"> = {
  walletId: "w_test",
  threshold: 2,
  parties: 3,
  generation: 1,
  publicKey: PUBLIC_KEY,
  chainCode: new Uint8Array(32).fill(7),
  publicPackageHash: new Uint8Array(32).fill(9),
  policyHash: new Uint8Array(32).fill(5),
};

const enclave = (image = IMAGE, issuer = pki) => fakeEnclave(issuer, image);
const voucher = (e: FakeEnclave, partyIndex: number, fields: Partial<WalletStatement> = {}) =>
  fakeVoucher(e, { ...wallet, partyIndex, ...fields });

const enclaves = [enclave(), enclave(), enclave()];
const honest = () => enclaves.map((e, i) => voucher(e, i + 1));
const trust: WalletTrust = {
  roots: [{ der: pki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
const claimed = { walletId: "w_test", publicKey: toHex(PUBLIC_KEY), generation: 1 };

function refusal(f: () => unknown): TssError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TssError);
    expect((e as TssError).code).toBe("unverified_wallet");
    return e as TssError;
  }
  throw new Error("expected a refusal");
}

describe("verifyWallet", () => {
  it("accepts n agreeing statements from attested enclaves", () => {
    const v = verifyWallet(claimed, honest(), trust);
    expect(toHex(v.publicKey)).toBe(toHex(PUBLIC_KEY));
    expect(v.generation).toBe(1);
    expect(v.vouchedBy.map((x) => x.partyIndex)).toEqual([1, 2, 3]);
    expect(v.vouchedBy.every((x) => x.imageHash === toHex(IMAGE))).toBe(true);
  });

  it("detects a node whose host altered its statement (other public key)", () => {
    const vs = honest();
    const forged = vs[1]!.statement.slice();
    // The public key's first byte (02 -> 03): the signature no longer covers these bytes.
    forged[24 + wallet.walletId.length + 7] = 0x03;
    vs[1] = { ...vs[1]!, statement: forged };
    const e = refusal(() => verifyWallet(claimed, vs, trust));
    expect(e.node).toBe("node-2");
    expect(e.message).toMatch(/not signed by its attested enclave/);
  });

  it("detects a node relaying a genuine statement of another generation", () => {
    const vs = honest();
    vs[2] = voucher(enclaves[2]!, 3, { generation: 0 });
    const e = refusal(() => verifyWallet(claimed, vs, trust));
    expect(e.node).toBe("node-3");
    expect(e.message).toMatch(/disagree/);
  });

  it("detects a node whose enclave vouches for another public key", () => {
    const vs = honest();
    vs[0] = voucher(enclaves[0]!, 1, { publicKey: OTHER_KEY });
    expect(refusal(() => verifyWallet(claimed, vs, trust)).message).toMatch(/disagree/);
  });

  it("detects an answer that claims another key or generation than all enclaves vouch for", () => {
    expect(
      refusal(() => verifyWallet({ ...claimed, publicKey: toHex(OTHER_KEY) }, honest(), trust))
        .message,
    ).toMatch(/public key/);
    expect(
      refusal(() => verifyWallet({ ...claimed, generation: 2 }, honest(), trust)).message,
    ).toMatch(/generation/);
    expect(
      refusal(() => verifyWallet({ ...claimed, walletId: "w_other" }, honest(), trust)).message,
    ).toMatch(/wallet id/);
  });

  it("requires every holder: a missing one, or none at all, is refused", () => {
    expect(refusal(() => verifyWallet(claimed, honest().slice(0, 2), trust)).message).toMatch(
      /2 of its 3 holders; missing party 3/,
    );
    expect(refusal(() => verifyWallet(claimed, [], trust)).message).toMatch(/No enclave/);
  });

  it("refuses one enclave vouching twice or a party claimed twice", () => {
    const vs = honest();
    vs[2] = voucher(enclaves[0]!, 3);
    expect(refusal(() => verifyWallet(claimed, vs, trust)).message).toMatch(/more than once/);
    const dup = honest();
    dup[2] = voucher(enclaves[2]!, 2);
    expect(refusal(() => verifyWallet(claimed, dup, trust)).message).toMatch(/more than once/);
  });

  it("refuses a statement relayed with another enclave's document", () => {
    const vs = honest();
    vs[0] = { ...vs[0]!, attestation: enclaves[1]!.document };
    const e = refusal(() => verifyWallet(claimed, vs, trust));
    expect(e.node).toBe("node-1");
    expect(e.message).toMatch(/not signed by its attested enclave/);
  });

  it("refuses a party index the enclave did not sign", () => {
    const vs = honest();
    vs[0] = { ...vs[0]!, partyIndex: 2 };
    expect(refusal(() => verifyWallet(claimed, vs, trust)).message).toMatch(/signed for party 1/);
  });

  it("refuses a document from an untrusted root", () => {
    const vs = honest();
    vs[1] = voucher(enclave(IMAGE, otherPki), 2);
    const e = refusal(() => verifyWallet(claimed, vs, trust));
    expect(e.node).toBe("node-2");
    expect(e.message).toMatch(/untrusted_root/);
  });

  it("refuses the development root without the explicit development flag", () => {
    const e = refusal(() =>
      verifyWallet(claimed, honest(), { ...trust, allowDevelopment: undefined }),
    );
    expect(e.message).toMatch(/development_root/);
  });

  it("refuses an enclave running an image not on the allow-list", () => {
    const vs = honest();
    vs[2] = voucher(enclave(OTHER_IMAGE), 3);
    const e = refusal(() => verifyWallet(claimed, vs, trust));
    expect(e.node).toBe("node-3");
    expect(e.message).toMatch(/not on the allow-list/);
    expect(refusal(() => verifyWallet(claimed, honest(), { ...trust, imageHashes: [] })).node).toBe(
      "node-1",
    );
  });

  it("refuses a document whose user_data binds no channel key", () => {
    const vs = honest();
    const nsm = new SimulatedNsm({ pki, pcrs: { 0: IMAGE } });
    vs[0] = { ...vs[0]!, attestation: nsm.attest({ userData: randomBytes(81) }) };
    expect(refusal(() => verifyWallet(claimed, vs, trust)).message).toMatch(/malformed/);
  });
});

describe("verifiedSigningKey", () => {
  it("is the verified key for no path, and its child derived from the verified chain code", () => {
    const v = verifyWallet(claimed, honest(), trust);
    expect(verifiedSigningKey(v, null)).toBe(toHex(PUBLIC_KEY));
    expect(verifiedSigningKey(v, "m/0/7")).toBe(
      toHex(deriveChildPublicKey(PUBLIC_KEY, wallet.chainCode, "m/0/7").publicKey),
    );
    expect(verifiedSigningKey(v, "m/0/7")).not.toBe(toHex(PUBLIC_KEY));
  });
});
