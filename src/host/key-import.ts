/**
 * Key import across the cluster (issue 11 item 2), the host's part: it only
 * relays. `importTarget` answers one live node's fresh attestation
 * document, which the client verifies like a wallet statement's and seals
 * the key to (src/client/key-import.ts); `import` runs a DKG start that
 * carries the envelope (the enclave it is sealed to deals the shares over
 * the end-to-end peer channel: src/enclave/lifecycle-import.ts), commits the
 * dealt shares like a DKG's, and then, at once, a complete refresh of all n,
 * since the dealing enclave saw every share. The envelope is HPKE ciphertext
 * to one enclave boot; nothing here can open it.
 *
 * Approvals: the administrators' `import` approval of the envelope's hash
 * (`approval`), checked by every participant's enclave; the refresh that
 * follows is an ordinary refresh under the new wallet's policy
 * (`refreshApproval`, same request id). Should the refresh fail, the wallet
 * exists at generation 0 with the dealt shares, and a later `refresh`
 * (approved under its policy) completes it; the answer says so. Until then
 * the enclaves that took part refuse to sign it (while they run: the sealed
 * share does not say it was imported; docs/ARCHITECTURE.md "Key import").
 */
import { fromHex, toHex } from "../shared/hex.ts";
import { ethAddress } from "../shared/public-key.ts";
import { KEY_IMPORT_ENVELOPE_BYTES, MAX_IMPORT_PARTIES } from "../shared/wire/key-import.ts";
import { isNodeId } from "../shared/wire/patterns.ts";
import {
  CeremonyError,
  createWallet,
  refreshWallet,
  type CoordinatorOptions,
} from "./coordinator.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import { planDkg, RequestError } from "./planning.ts";

const ENVELOPE_HEX = new RegExp(
  `^([0-9a-f]{${2 * KEY_IMPORT_ENVELOPE_BYTES[0]}}|[0-9a-f]{${2 * KEY_IMPORT_ENVELOPE_BYTES[1]}})$`,
);

function need(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RequestError("bad_request", message);
}

/** A live node (this one first) and its enclave's fresh attestation document, for the client to seal to. */
export async function importTarget(
  peers: PeerDirectory,
  self: string,
  asked: unknown,
): Promise<{ nodeId: string; attestation: string }> {
  need(asked === undefined || isNodeId(asked), "nodeId must be a node id");
  const live = peers.liveNodes().filter((n) => n.status !== "degraded");
  const nodeId = asked ?? (live.some((n) => n.nodeId === self) ? self : live[0]?.nodeId);
  if (nodeId === undefined || !live.some((n) => n.nodeId === nodeId))
    throw new RequestError("not_enough_nodes", `node ${String(nodeId)} is not online`);
  let document: Uint8Array;
  try {
    document = await peers.participant(nodeId).attestation();
  } catch (e) {
    // Its enclave is down or restarting: the client may ask again, or name another node.
    throw new RequestError(
      "not_enough_nodes",
      `node ${nodeId} could not attest its enclave: ${(e as Error).message}`.slice(0, 300),
      nodeId,
    );
  }
  return { nodeId, attestation: toHex(document) };
}

export interface ImportPlan {
  envelope: Uint8Array;
  /** The node whose enclave the envelope is sealed to: party 1. */
  dealerNode: string;
  participants: string[];
}

/** Checks an import request's own fields and picks its n nodes, the dealer first. */
export function planImport(
  peers: PeerDirectory,
  b: Record<string, unknown>,
  threshold: number,
  parties: number,
): ImportPlan {
  need(
    typeof b.envelope === "string" && ENVELOPE_HEX.test(b.envelope),
    `envelope must be a key import envelope (${KEY_IMPORT_ENVELOPE_BYTES.join(" or ")} bytes) as hex`,
  );
  need(isNodeId(b.dealerNode), "dealerNode must name the node whose enclave the key is sealed to");
  need(
    parties <= MAX_IMPORT_PARTIES,
    `an import deals to at most ${MAX_IMPORT_PARTIES} parties (one share must fit one peer message)`,
  );
  const live = peers
    .liveNodes()
    .filter((x) => x.status !== "degraded")
    .map((x) => x.nodeId);
  if (!live.includes(b.dealerNode))
    throw new RequestError("not_enough_nodes", `dealer node ${b.dealerNode} is not online`);
  return {
    envelope: fromHex(b.envelope),
    dealerNode: b.dealerNode,
    participants: planDkg(b.dealerNode, live, threshold, parties),
  };
}

/** Deals the imported key (a DKG start with the envelope), commits it, then refreshes all n at once. */
export async function runImport(
  peers: PeerDirectory,
  plan: ImportPlan,
  o: {
    walletId: string;
    threshold: number;
    policy?: Uint8Array;
    copts: CoordinatorOptions;
    /** The refresh's own approvals (under the new wallet's policy). */
    refreshApproval: CoordinatorOptions["approval"];
  },
): Promise<{ publicKey: Uint8Array; generation: number }> {
  const nodes = plan.participants.map((id) => peers.participant(id));
  const wallet = await createWallet(nodes, o.threshold, {
    ...o.copts,
    walletId: o.walletId,
    ...(o.policy === undefined ? {} : { policy: o.policy }),
    importKey: { envelope: plan.envelope, dealer: 1 },
  });
  try {
    const generation = await refreshWallet(nodes, wallet, 0, {
      ...o.copts,
      approval: o.refreshApproval,
    });
    return { publicKey: wallet.publicKey, generation };
  } catch (e) {
    const err = e instanceof CeremonyError ? e : null;
    throw new CeremonyError(
      `wallet ${o.walletId} was imported (generation 0, address ${ethAddress(wallet.publicKey)}) but its ` +
        `refresh failed, so the dealing enclave's copies still combine: refresh it before use. ` +
        `${(e as Error).message}`,
      err?.code ?? "ceremony_failed",
      err?.blame ?? {},
      err?.reason,
    );
  }
}
