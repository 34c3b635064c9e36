/**
 * How a holder settling its pending share follows a peer's "committed" (NodeHost.resolveOne):
 * only with the proof that travels with it, the seal receipts that peer's enclave activated
 * with (src/shared/wire/commit-proof.ts), checked by this node's own enclave at ACTIVATE_SHARE
 * (src/enclave/seal-receipts.ts: one valid receipt from every party of the session, each under
 * that party's channel key of the session). The host cannot check a peer's word; its enclave
 * can. A coordinator that skipped one holder's persist has no receipt of it, so its "committed"
 * commits no honest holder, even when the skipped holder is silent.
 */
import type { EnclaveClient } from "./enclave-client.ts";
import type { LoadShareReply } from "../shared/wire/enclave-ops.ts";
import { boundedProofReceipts } from "../shared/wire/commit-proof.ts";
import type { PeerOutcome } from "./node-host.ts";

export type ProvenCommit =
  | { activated: LoadShareReply; receipts: Uint8Array[]; from: string }
  | { refused: string };

/**
 * Tries each committed peer's proof in turn on this node's enclave; the first it accepts wins.
 * Refused (every proof missing or refused, or the enclave no longer holds the session's
 * pending share: restarted, or past its pending-share lifetime): the share stays pending.
 */
export async function activateWithPeerProof(
  enclave: Pick<EnclaveClient, "activateShare">,
  walletId: string,
  sessionId: Uint8Array,
  peers: readonly PeerOutcome[],
): Promise<ProvenCommit> {
  const why: string[] = [];
  for (const p of peers) {
    if (p.answer?.outcome !== "committed") continue;
    const receipts = boundedProofReceipts(p.answer.receipts);
    if (!receipts) {
      why.push(`${p.nodeId}: no proof`);
      continue;
    }
    try {
      const activated = await enclave.activateShare({
        sessionId,
        walletId,
        sealReceipts: receipts,
      });
      return { activated, receipts, from: p.nodeId };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      why.push(`${p.nodeId}: ${typeof code === "string" ? `${code} ` : ""}${(e as Error).message}`);
    }
  }
  return { refused: why.join("; ") || "no peer committed" };
}
