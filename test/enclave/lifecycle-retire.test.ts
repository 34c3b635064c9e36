/**
 * The enclave's side of wallet retirement (src/enclave/lifecycle-retire.ts)
 * against a share table double: only a quorum of the wallet's sealed policy
 * approving exactly "retire this wallet under this request id" wipes the
 * share; every refusal leaves it; afterwards the wallet is not_found.
 */
import { describe, expect, it } from "vitest";
import { KeySigner, approve, approverKeyOf, keyIdOf, validity } from "../../src/client/signers.ts";
import { openTrustedPolicy, type TrustedPolicy } from "../../src/enclave/approvals.ts";
import { RetiredWallets } from "../../src/enclave/lifecycle-retire.ts";
import type { LoadedShare, ShareTable } from "../../src/enclave/shares.ts";
import { toHex } from "../../src/shared/hex.ts";
import {
  encodeApproval,
  encodePolicy,
  policyHash,
  type ApprovableRequest,
} from "../../src/shared/wire/approval.ts";
import type { RetireWalletRequest } from "../../src/shared/wire/enclave-ops.ts";
import { thrown } from "../helpers/thrown.ts";

const alice = KeySigner.generate("ed25519");
const bob = KeySigner.generate("p256");
const carol = KeySigner.generate("ed25519");
const encoding = encodePolicy({ quorum: 2, approvers: [alice, bob, carol].map(approverKeyOf) });
const policy = openTrustedPolicy(encoding, policyHash(encoding));

/** A share table holding one loaded share of `walletId`; records what it was told to forget. */
function table(walletId: string, sealed: TrustedPolicy | null) {
  const forgotten: string[] = [];
  let loaded = true;
  const share: LoadedShare = {
    share: {} as LoadedShare["share"],
    generation: 4,
    partyIndex: 2,
    publicKey: new Uint8Array(33),
    policy: sealed,
  };
  const shares = {
    current: (id: string) => (loaded && id === walletId ? share : undefined),
    forget: (id: string) => {
      forgotten.push(id);
      loaded = false;
    },
  } as unknown as ShareTable;
  return { shares, forgotten };
}

async function request(
  signers: KeySigner[],
  over: Partial<ApprovableRequest> = {},
): Promise<RetireWalletRequest> {
  const a = await approve(
    { operation: "retire", walletId: "w_1", requestId: "r-1", ...validity(300), ...over },
    signers,
  );
  return {
    walletId: "w_1",
    requestId: "r-1",
    approvalRequest: a.request,
    approvals: a.approvals.map(encodeApproval),
  };
}

const settings = { adminPolicy: null, requireApprovals: true };
const refusal = (f: () => unknown) => {
  const e = thrown(Error, f) as Error & { code?: string; reason?: string };
  return { code: e.code, reason: e.reason };
};

describe("RetiredWallets", () => {
  it("refuses without a quorum of approvals of exactly this retirement, and wipes nothing", async () => {
    const { shares, forgotten } = table("w_1", policy);
    const r = new RetiredWallets(shares, settings, () => {});
    const cases: [RetireWalletRequest, string][] = [
      [{ walletId: "w_1", requestId: "r-1" }, "missing"],
      [await request([alice]), "below_quorum"],
      [await request([alice, bob], { walletId: "w_2" }), "wrong_wallet"],
      [await request([alice, bob], { requestId: "r-2" }), "wrong_request_id"],
      [await request([alice, KeySigner.generate("ed25519")]), "unknown_signer"],
    ];
    for (const [req, reason] of cases)
      expect(
        refusal(() => r.retire(req)),
        reason,
      ).toEqual({ code: "unauthorised", reason });
    // A refresh approval is not a retirement approval.
    const refresh = await approve(
      { operation: "refresh", walletId: "w_1", requestId: "r-1", ...validity(300) },
      [alice, bob],
    );
    expect(
      refusal(() =>
        r.retire({
          walletId: "w_1",
          requestId: "r-1",
          approvalRequest: refresh.request,
          approvals: refresh.approvals.map(encodeApproval),
        }),
      ),
    ).toEqual({ code: "unauthorised", reason: "wrong_operation" });
    expect(forgotten).toEqual([]);
    expect(() => r.refuse("w_1")).not.toThrow();
  });

  it("retires with a quorum: wipes the share, names the approvers, then refuses the wallet", async () => {
    const { shares, forgotten } = table("w_1", policy);
    const r = new RetiredWallets(shares, settings, () => {});
    const reply = r.retire(await request([carol, alice]));
    expect(reply.walletId).toBe("w_1");
    expect([reply.partyIndex, reply.generation]).toEqual([2, 4]);
    expect(toHex(reply.policyHash!)).toBe(toHex(policy.hash));
    expect(reply.approverKeyIds.map(toHex)).toEqual([keyIdOf(carol), keyIdOf(alice)]);
    expect(forgotten).toEqual(["w_1"]);
    expect(refusal(() => r.refuse("w_1")).code).toBe("not_found");
    expect(refusal(() => r.refuse("w_1")).code).toBe("not_found");
    expect(() => r.refuse("w_2")).not.toThrow();
  });

  it("needs the share loaded, refuses unknown fields, and a wallet sealed without a policy only in development", async () => {
    const r = new RetiredWallets(table("w_1", policy).shares, settings, () => {});
    expect(refusal(() => r.retire({ walletId: "w_9" })).code).toBe("share_not_loaded");
    expect(refusal(() => r.retire({ walletId: "w_1", extra: 1 } as RetireWalletRequest)).code).toBe(
      "bad_request",
    );
    const noPolicy = new RetiredWallets(table("w_1", null).shares, settings, () => {});
    expect(refusal(() => noPolicy.retire({ walletId: "w_1" }))).toEqual({
      code: "unauthorised",
      reason: "policy_mismatch",
    });
    const dev = table("w_1", null);
    const development = new RetiredWallets(
      dev.shares,
      { adminPolicy: null, requireApprovals: false },
      () => {},
    );
    expect(development.retire({ walletId: "w_1" }).approverKeyIds).toEqual([]);
    expect(dev.forgotten).toEqual(["w_1"]);
  });
});
