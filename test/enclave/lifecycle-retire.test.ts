/**
 * The enclave's side of wallet retirement (src/enclave/lifecycle-retire.ts)
 * against a share table double: only a quorum of the wallet's sealed policy
 * approving exactly "retire this wallet under this request id" wipes the
 * share; every refusal leaves it; afterwards the wallet is not_found.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { adminPolicyOf, type ApprovalSettings } from "../../src/enclave/approval-gate.ts";
import { Ceremonies } from "../../src/enclave/ceremonies.ts";
import { loadDkls } from "../../src/enclave/dkls23/binding.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { PeerSessions } from "../../src/enclave/peer-sessions.ts";
import { EnclaveService } from "../../src/enclave/service.ts";
import { ShareTable } from "../../src/enclave/shares.ts";
import { KeySigner, approve, approverKeyOf, keyIdOf, validity } from "../../src/client/signers.ts";
import { openTrustedPolicy, type TrustedPolicy } from "../../src/enclave/approvals.ts";
import { RetiredWallets } from "../../src/enclave/lifecycle-retire.ts";
import type { LoadedShare } from "../../src/enclave/shares.ts";
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

describe("EnclaveService: a session open when its wallet is retired", () => {
  it("steps no further: the step is refused not_found and the session dropped", async () => {
    loadDkls();
    const admin = KeySigner.generate("ed25519");
    const adminSettings: ApprovalSettings = {
      adminPolicy: adminPolicyOf(
        toHex(encodePolicy({ quorum: 1, approvers: [approverKeyOf(admin)] })),
      ),
      requireApprovals: true,
    };
    // The session's channel passes bytes through: this is about the service's retirement check.
    const passThrough = {
      open: () => ({
        seal: (b: Uint8Array) => b.slice(),
        open: (b: Uint8Array) => b.slice(),
        close() {},
      }),
      signWithChannelKey: () => new Uint8Array(64),
    } as unknown as PeerSessions;
    const enclave = () =>
      new Ceremonies(
        new ShareTable(null, "00".repeat(48), () => {}, 60_000),
        passThrough,
        () => {},
        60_000,
        60_000,
        adminSettings,
      );
    const ceremonies = enclave();
    const peer = enclave();
    const { shares } = table("w_1", policy);
    // The service's own step path over real ceremonies and a real retirement memory.
    const service = Object.assign(Object.create(EnclaveService.prototype), {
      ceremonies,
      retired: new RetiredWallets(shares, settings, () => {}),
    }) as EnclaveService;
    const a = await approve(
      {
        operation: "dkg",
        walletId: "w_1",
        requestId: "r-dkg",
        ...validity(300),
        policyHash: policyHash(encoding),
        threshold: 2,
        parties: 2,
      },
      [admin],
    );
    const sessionId = randomBytes(32);
    const starts = [ceremonies, peer].map((c, i) =>
      c.start({
        kind: "dkg",
        sessionId,
        walletId: "w_1",
        threshold: 2,
        parties: 2,
        partyIndex: i + 1,
        peerDocuments: [],
        peerParties: [],
        requestId: "r-dkg",
        policy: encoding,
        approvalRequest: a.request,
        approvals: a.approvals.map(encodeApproval),
      }),
    );
    expect(starts[0]!.messages.length).toBeGreaterThan(0);
    service.retireWallet(await request([alice, bob]));
    const e = thrown(EnclaveError, () =>
      service.stepCeremony({ sessionId, phase: 2, messages: starts[1]!.messages }),
    );
    expect(e.code).toBe("not_found");
    // Dropped, not only refused: a later step finds no session.
    expect(ceremonies.walletOf(sessionId)).toBeUndefined();
  });
});
