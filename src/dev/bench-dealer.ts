/**
 * BENCHMARK ONLY: fills the nodes' databases with many wallets quickly, for
 * `npm run bench:scale` (bench/scale.ts). Never part of an enclave, a host or
 * the production bundle (test/enclave/production-bundle.test.ts).
 *
 * A real DKG costs seconds per wallet; 100,000 of them would take days on one
 * machine. The dealer instead runs one t-of-n DKG in this process (the same
 * wasm core, src/dev/in-process.ts) and seals a copy of each party's share
 * under every wallet id in the form that node's enclave seals it: the
 * sealed-share format and associated data of src/shared/wire/sealed-share.ts
 * (wallet id, node identity = PCR4, party, generation, group key), under a
 * data key from the cluster's KMS key with the encryption context
 * share-sealing.ts builds. The rows it writes (wallet, active share,
 * `wallet_created` audit row) are what a DKG leaves in a node's store minus
 * the wallet statement, which only the holder's own enclave can sign. Each
 * node's enclave later opens them through its own attested KMS Decrypt like
 * any other row: only the creation is simulated, never a load or a signature.
 *
 * The data keys: the key policy releases data keys only to an attested
 * enclave (in the clear to nobody), so while it deals the dealer adds one
 * statement, `BenchmarkDealer`, letting its caller GenerateDataKey in the
 * clear, and puts the original policy back when done (openDealingWindow).
 * That is a key administrator's power, available here only because the KMS
 * is the development stand-in; it spares each of the (wallets x nodes) calls
 * an attestation document and an RSA unwrap, which made dealing
 * KMS-bound. Every clone has the same group key: a load test, not a way to
 * make wallets.
 */
import {
  GenerateDataKeyCommand,
  GetKeyPolicyCommand,
  PutKeyPolicyCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { dkgInProcess } from "./in-process.ts";
import type { KeyShare } from "../enclave/dkls23/binding.ts";
import { packageInfo } from "../enclave/dkls23/public-data.ts";
import { sealShare } from "../enclave/seal.ts";
import { shareEncryptionContext } from "../enclave/share-sealing.ts";
import { appendAudit } from "../host/store/audit.ts";
import type { Db } from "../host/store/db.ts";
import { insertActiveShare } from "../host/store/shares-repo.ts";
import { getWallet, insertWallet } from "../host/store/wallets-repo.ts";
import { toHex } from "../shared/hex.ts";

/** One node the dealer writes for, and the identity its enclave attests. */
export interface DealerNode {
  nodeId: string;
  /** The node's PCR4 (lowercase hex): its enclave's node identity. */
  pcr4Hex: string;
}

export interface DealerOptions {
  /** A client of the KMS stand-in, inside a dealing window (openDealingWindow). */
  kms: KMSClient;
  kmsKeyArn: string;
  /** Node i + 1 holds party i + 1. */
  nodes: readonly DealerNode[];
  threshold: number;
  /** KMS calls in flight at once. */
  concurrency?: number;
}

/** One node's sealed clone of its party's share, as the node's store keeps it. */
interface SealedRow {
  sealed: Uint8Array;
  blob: Uint8Array;
  keyId: string;
}

const DEALER_SID = "BenchmarkDealer";

/**
 * Adds the BenchmarkDealer statement to the key's policy (GenerateDataKey in
 * the clear, for share data keys only); the returned function puts the policy
 * back as it was.
 */
export async function openDealingWindow(
  kms: KMSClient,
  keyId: string,
): Promise<() => Promise<void>> {
  const original = (
    await kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: "default" }))
  ).Policy;
  if (!original) throw new Error("the KMS key has no policy to extend");
  const policy = JSON.parse(original) as { Statement: Record<string, unknown>[] };
  policy.Statement.push({
    Sid: DEALER_SID,
    Effect: "Allow",
    Principal: { AWS: "*" },
    Action: ["kms:GenerateDataKey"],
    Resource: "*",
    Condition: { StringEquals: { "kms:EncryptionContext:purpose": "tss-share" } },
  });
  const put = (p: string) =>
    kms.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: p }));
  await put(JSON.stringify(policy));
  return async () => {
    await put(original);
  };
}

export class BenchDealer {
  private readonly shares: KeyShare[];
  private readonly shareBytes: Uint8Array[];
  readonly publicKey: Uint8Array;
  readonly publicPackage: Uint8Array;
  readonly chainCode: Uint8Array;
  readonly threshold: number;
  readonly parties: number;

  /** Runs the one DKG (seconds) whose shares every wallet clones. */
  constructor(private readonly o: DealerOptions) {
    this.parties = o.nodes.length;
    this.threshold = o.threshold;
    this.shares = dkgInProcess(o.threshold, this.parties);
    this.shareBytes = this.shares.map((s) => s.toBytes());
    this.publicKey = this.shares[0]!.publicKey;
    this.publicPackage = this.shares[0]!.publicPackage();
    this.chainCode = packageInfo(this.publicPackage).chainCode;
  }

  /** Serialised length of each party's share (what one sealed row carries, less 29 bytes). */
  get shareLengths(): number[] {
    return this.shareBytes.map((b) => b.length);
  }

  /**
   * Seals and stores every party's clone under each wallet id. Batches of
   * `batch` wallets are sealed with up to `concurrency` KMS calls in flight
   * and written in one transaction per node (a transaction per row would pay
   * synchronous=FULL's fsync for every row).
   */
  async deal(walletIds: readonly string[], stores: readonly Db[], batch = 256): Promise<void> {
    const nodes = this.o.nodes;
    if (stores.length !== nodes.length)
      throw new Error(`the dealer writes ${nodes.length} stores, given ${stores.length}`);
    const concurrency = this.o.concurrency ?? 16;
    for (let start = 0; start < walletIds.length; start += batch) {
      const ids = walletIds.slice(start, start + batch);
      const jobs = ids.flatMap((walletId) => nodes.map((_, i) => ({ walletId, i })));
      const sealed: SealedRow[] = new Array(jobs.length);
      let next = 0;
      const worker = async () => {
        while (next < jobs.length) {
          const k = next++;
          const job = jobs[k]!;
          sealed[k] = await this.sealFor(nodes[job.i]!, job.i, job.walletId);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      nodes.forEach((node, i) =>
        stores[i]!.transaction(() => {
          jobs.forEach((job, k) => {
            if (job.i === i) this.store(stores[i]!, node, i + 1, job.walletId, sealed[k]!);
          });
        }),
      );
    }
  }

  /** Wipes the plaintext shares. */
  close(): void {
    for (const b of this.shareBytes) b.fill(0);
    for (const s of this.shares) s.free();
  }

  private async sealFor(node: DealerNode, i: number, walletId: string): Promise<SealedRow> {
    const binding = {
      walletId,
      nodeId: node.pcr4Hex,
      partyIndex: i + 1,
      generation: 0,
      publicKey: this.publicKey,
    };
    const out = await this.o.kms.send(
      new GenerateDataKeyCommand({
        KeyId: this.o.kmsKeyArn,
        KeySpec: "AES_256",
        EncryptionContext: shareEncryptionContext(binding),
      }),
    );
    if (!out.CiphertextBlob || !out.Plaintext || !out.KeyId)
      throw new Error("the KMS stand-in returned an incomplete GenerateDataKey answer");
    const dataKey = out.Plaintext;
    try {
      const sealed = sealShare({ dataKey, shareBytes: this.shareBytes[i]!, binding });
      return { sealed, blob: out.CiphertextBlob, keyId: out.KeyId };
    } finally {
      dataKey.fill(0);
    }
  }

  private store(
    db: Db,
    node: DealerNode,
    partyIndex: number,
    walletId: string,
    row: SealedRow,
  ): void {
    if (!getWallet(db, walletId)) {
      insertWallet(db, {
        walletId,
        threshold: this.threshold,
        parties: this.parties,
        publicKey: this.publicKey,
        publicPackage: this.publicPackage,
        chainCode: this.chainCode,
        generation: 0,
      });
      appendAudit(db, node.nodeId, {
        event: "wallet_created",
        walletId,
        threshold: this.threshold,
        parties: this.parties,
        publicKeyHex: toHex(this.publicKey),
      });
    }
    insertActiveShare(db, {
      walletId,
      nodeId: node.nodeId,
      partyIndex,
      generation: 0,
      sealedShare: row.sealed,
      kmsCiphertextBlob: row.blob,
      kmsKeyId: row.keyId,
    });
  }
}
