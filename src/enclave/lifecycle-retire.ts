/**
 * Wallet retirement inside the enclave (issue 11 item 3, RETIRE_WALLET in
 * enclave-ops.ts). The host asks; the enclave decides:
 *
 * 1. The wallet's share must be loaded, because the approvals are checked
 *    against the policy sealed with it (operation "retire", this wallet, the
 *    client's request id), exactly as a sign or refresh start is checked. A
 *    wallet sealed without a policy can be retired without approvals only
 *    where such wallets can be used at all (a development enclave started
 *    without an administrators' policy).
 * 2. The loaded share is wiped (freed inside the wasm instance; a share an
 *    open ceremony holds is freed when that ceremony ends), and so is every
 *    pending share of the wallet.
 * 3. From then on the wallet is refused (`not_found`): LOAD_SHARE of any row
 *    of it, and CEREMONY_START for it (a DKG reusing its id included).
 *
 * What the enclave cannot do: remember the retirement across a restart (it
 * has no disk). The host deletes the wallet's rows; a host that kept a copy
 * could load it into a restarted enclave. Closing that needs KMS to refuse
 * the wallet's data keys (docs/ARCHITECTURE.md, "Wallet retirement").
 */
import { ApprovalError } from "../shared/wire/approval.ts";
import {
  RETIRE_WALLET_FIELDS,
  type RetireWalletReply,
  type RetireWalletRequest,
} from "../shared/wire/enclave-ops.ts";
import { fromHex } from "../shared/hex.ts";
import type { ApprovalSettings } from "./approval-gate.ts";
import { verifyApprovals, type TrustedPolicy } from "./approvals.ts";
import { EnclaveError } from "./errors.ts";
import { needOnlyFields, needWalletId } from "./request-checks.ts";
import type { ShareTable } from "./shares.ts";

/** Retired wallet ids this enclave remembers; beyond it the oldest are forgotten (their rows are gone). */
export const MAX_RETIRED_WALLETS = 100_000;

export class RetiredWallets {
  private readonly ids = new Set<string>();

  constructor(
    private readonly shares: ShareTable,
    private readonly approvals: ApprovalSettings,
    private readonly log: (event: string, fields: Record<string, unknown>) => void,
  ) {}

  /** not_found for a retired wallet; call before anything else touches it. */
  refuse(walletId: unknown): void {
    if (typeof walletId === "string" && this.ids.has(walletId))
      throw new EnclaveError("not_found", `wallet ${walletId} was retired in this enclave`);
  }

  isRetired(walletId: string): boolean {
    return this.ids.has(walletId);
  }

  retire(req: RetireWalletRequest): RetireWalletReply {
    needOnlyFields(req, RETIRE_WALLET_FIELDS, "RETIRE_WALLET");
    const walletId = needWalletId(req.walletId);
    this.refuse(walletId);
    const loaded = this.shares.current(walletId);
    if (!loaded)
      throw new EnclaveError(
        "share_not_loaded",
        `no share of wallet ${walletId} is loaded in this enclave`,
      );
    const signers = this.checkApprovals(req, walletId, loaded.policy);
    this.ids.add(walletId);
    if (this.ids.size > MAX_RETIRED_WALLETS)
      this.ids.delete(this.ids.values().next().value as string);
    const reply: RetireWalletReply = {
      walletId,
      partyIndex: loaded.partyIndex,
      generation: loaded.generation,
      ...(loaded.policy === null ? {} : { policyHash: loaded.policy.hash }),
      approverKeyIds: signers.map((id) => fromHex(id, 32)),
    };
    this.shares.forget(walletId);
    this.log("wallet_retired", {
      walletId,
      generation: loaded.generation,
      approvers: signers.length,
    });
    return reply;
  }

  /** The approver key ids (hex) that approved, or none for a development wallet without a policy. */
  private checkApprovals(
    req: RetireWalletRequest,
    walletId: string,
    sealed: TrustedPolicy | null,
  ): string[] {
    try {
      if (sealed === null) {
        if (!this.approvals.requireApprovals) return [];
        throw new ApprovalError(
          "policy_mismatch",
          "this wallet's share was sealed without an approval policy: it cannot be approved",
        );
      }
      if (typeof req.requestId !== "string")
        throw new ApprovalError("malformed", "an approved retirement must carry the request id");
      return verifyApprovals({
        policy: sealed,
        expected: { operation: "retire", walletId, requestId: req.requestId },
        request: req.approvalRequest as Uint8Array,
        approvals: req.approvals ?? [],
        nowSeconds: Math.floor(Date.now() / 1000),
      }).signers;
    } catch (e) {
      if (!(e instanceof ApprovalError)) throw e;
      this.log("retire_refused", { walletId, code: e.code, reason: e.reason });
      throw new EnclaveError(e.code, e.message, null, e.reason);
    }
  }
}
