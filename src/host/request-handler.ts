/**
 * What a node does with a client request it took from the shared
 * subscription: it becomes the coordinator. It finds the nodes it needs among
 * the live ones, drives the ceremony, records the outcome under the client's
 * request id (a repeated id returns the stored result, never a second
 * signature), and answers with a result or an error that names the reason
 * and, where known, the node to blame.
 */
import { randomBytes } from "node:crypto";
import { CeremonyError, createWallet, refreshWallet, signDigest, type CoordinatorOptions } from "./coordinator.ts";
import { startCeremony, finishCeremony } from "./store/index.ts";
import type { NodeHost, HeldWallet } from "./node-host.ts";
import type { Participant, WalletRecord } from "./participant.ts";
import { derivePublicKey, ethAddress } from "../enclave/dkls23/binding.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { signatureForms } from "../shared/signature.ts";

export interface PeerDirectory {
  /** Node ids currently online, this node included. */
  liveNodes(): { nodeId: string; since: number; pcr0?: string }[];
  /** A participant handle for `nodeId` (this node's NodeHost for itself). */
  participant(nodeId: string): Participant;
  /** Asks a node; resolves null when it does not answer in time. */
  ask<T>(nodeId: string, op: string, args: unknown): Promise<T | null>;
}

export interface Reply {
  progress(p: { stage: string; phase?: number; of?: number }): void;
  done(result: unknown): void;
  fail(error: { code: string; message: string; node?: string | null }): void;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly node: string | null = null,
  ) {
    super(message);
  }
}

function need(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RequestError("bad_request", message);
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32BE() % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function walletView(w: HeldWallet, nodes: string[]) {
  return { walletId: w.walletId, publicKey: toHex(w.publicKey), address: ethAddress(w.publicKey), threshold: w.threshold, parties: w.parties, generation: w.generation, nodes };
}

export class RequestHandler {
  constructor(
    private readonly self: NodeHost,
    private readonly peers: PeerDirectory,
    private readonly opts: { phaseTimeoutMs: number; log?: (e: string, f: Record<string, unknown>) => void },
  ) {}

  async handle(op: string, body: unknown, reply: Reply): Promise<void> {
    const log = this.opts.log ?? (() => {});
    try {
      need(body && typeof body === "object" && !Array.isArray(body), "request body must be a JSON object");
      const b = body as Record<string, unknown>;
      need(typeof b.requestId === "string" && ID.test(b.requestId), "requestId must be 1-128 characters of [A-Za-z0-9._:-]");
      const requestId = b.requestId as string;
      log("request", { op, requestId });
      switch (op) {
        case "dkg":
        case "sign":
        case "refresh":
          return reply.done(await this.ceremony(op, requestId, b, reply));
        case "wallet": {
          need(typeof b.walletId === "string" && ID.test(b.walletId), "walletId is required");
          const holders = await this.holders(b.walletId as string);
          if (holders.length === 0) throw new RequestError("not_found", `no live node holds wallet ${b.walletId}`);
          const cur = holders.filter((h) => h.generation === Math.max(...holders.map((x) => x.generation)));
          return reply.done(walletView(cur[0]!, this.nodesByParty(cur)));
        }
        case "wallets": {
          const lists = await Promise.all(this.peers.liveNodes().map((n) => this.peers.ask<HeldWallet[]>(n.nodeId, "listWallets", {})));
          const byId = new Map<string, HeldWallet[]>();
          for (const l of lists) for (const w of l ?? []) byId.set(w.walletId, [...(byId.get(w.walletId) ?? []), w]);
          return reply.done({ wallets: [...byId.values()].map((hs) => walletView(hs[0]!, this.nodesByParty(hs))) });
        }
        case "nodes":
          return reply.done({ nodes: this.peers.liveNodes().map((n) => ({ nodeId: n.nodeId, status: "online", since: n.since, pcr0: n.pcr0 ?? null })) });
        default:
          throw new RequestError("bad_request", `unknown operation ${op}`);
      }
    } catch (e) {
      const err = e instanceof RequestError || e instanceof CeremonyError ? e : new RequestError("internal", (e as Error).message);
      log("request_failed", { op, code: err.code, error: err.message });
      reply.fail({ code: err.code, message: err.message, node: (err as { node?: string | null }).node ?? null });
    }
  }

  private nodesByParty(hs: HeldWallet[]): string[] {
    return [...hs].sort((a, b) => a.partyIndex - b.partyIndex).map((h) => h.nodeId);
  }

  private async holders(walletId: string): Promise<HeldWallet[]> {
    const answers = await Promise.all(this.peers.liveNodes().map((n) => this.peers.ask<HeldWallet | null>(n.nodeId, "walletInfo", { walletId })));
    return answers.filter((w): w is HeldWallet => w !== null && w !== undefined);
  }

  /** A result stored for this request id on any live node. */
  private async previous(kind: string, requestId: string): Promise<unknown | undefined> {
    const answers = await Promise.all(this.peers.liveNodes().map((n) => this.peers.ask<{ status: string; result: Uint8Array | null; error: string | null } | null>(n.nodeId, "lookupRequest", { kind, requestId })));
    for (const a of answers) {
      if (!a) continue;
      if (a.status === "succeeded" && a.result) return JSON.parse(new TextDecoder().decode(a.result));
      if (a.status === "running") throw new RequestError("bad_request", `request ${requestId} is still running`);
      if (a.status === "failed") throw new RequestError("ceremony_failed", `request ${requestId} already failed: ${a.error}`);
    }
    return undefined;
  }

  private async ceremony(kind: "dkg" | "sign" | "refresh", requestId: string, b: Record<string, unknown>, reply: Reply): Promise<unknown> {
    const prior = await this.previous(kind, requestId);
    if (prior !== undefined) return prior;
    const copts: CoordinatorOptions = {
      phaseTimeoutMs: this.opts.phaseTimeoutMs,
      onProgress: (stage, phase) => reply.progress({ stage, phase, of: 4 }),
    };
    const ceremonyId = randomBytes(32).toString("hex");
    let walletId: string | null = typeof b.walletId === "string" ? b.walletId : null;
    let run: () => Promise<{ result: unknown }>;
    let participants: string[];
    const me = this.self.nodeId;
    const live = this.peers.liveNodes().map((n) => n.nodeId);

    if (kind === "dkg") {
      const t = b.threshold ?? 3;
      const n = b.parties ?? 5;
      need(Number.isInteger(t) && Number.isInteger(n) && (t as number) >= 2 && (t as number) <= (n as number) && (n as number) <= 16, "need integers 2 <= threshold <= parties <= 16");
      if (live.length < (n as number)) throw new RequestError("not_enough_nodes", `a ${t}-of-${n} wallet needs ${n} live nodes; ${live.length} are online`);
      const chosen = [me, ...shuffle(live.filter((x) => x !== me))].slice(0, n as number);
      participants = chosen;
      run = async () => {
        const w = await createWallet(chosen.map((id) => this.peers.participant(id)), t as number, copts);
        walletId = w.walletId;
        return { result: { walletId: w.walletId, publicKey: toHex(w.publicKey), address: ethAddress(w.publicKey), threshold: w.threshold, parties: w.parties, generation: 0, nodes: chosen } };
      };
    } else {
      need(typeof walletId === "string" && ID.test(walletId), "walletId is required");
      const holders = await this.holders(walletId);
      if (holders.length === 0) throw new RequestError("not_found", `no live node holds wallet ${walletId}`);
      const gen = Math.max(...holders.map((h) => h.generation));
      const current = holders.filter((h) => h.generation === gen);
      const w = current[0]!;
      const record: WalletRecord = { walletId: w.walletId, threshold: w.threshold, parties: w.parties, publicKey: w.publicKey, publicPackage: w.publicPackage };
      if (kind === "sign") {
        need(typeof b.digest === "string" && /^(0x)?[0-9a-fA-F]{64}$/.test(b.digest), "digest must be 32 bytes of hex");
        need(b.path === undefined || (typeof b.path === "string" && /^m(\/\d{1,10}){0,32}$/.test(b.path)), "path must look like m/0/7 (non-hardened)");
        const digest = fromHex(b.digest as string, 32);
        const path = b.path as string | undefined;
        if (current.length < w.threshold) throw new RequestError("not_enough_nodes", `wallet ${walletId} needs ${w.threshold} signers; ${current.length} holders of generation ${gen} are online`);
        const mine = current.find((h) => h.nodeId === me);
        const chosen = [...(mine ? [mine] : []), ...shuffle(current.filter((h) => h.nodeId !== me))].slice(0, w.threshold).map((h) => h.nodeId);
        participants = chosen;
        run = async () => {
          const sig = await signDigest(chosen.map((id) => this.peers.participant(id)), record, gen, digest, { ...copts, path });
          const pk = path ? derivePublicKey(w.publicPackage, path).publicKey : w.publicKey;
          return { result: { walletId, digest: toHex(digest), path: path ?? null, publicKey: toHex(pk), address: ethAddress(pk), signature: signatureForms(sig), signers: chosen, coordinator: me } };
        };
      } else {
        if (current.length < w.parties) throw new RequestError("not_enough_nodes", `refresh needs all ${w.parties} holders online; ${current.length} are`);
        const chosen = this.nodesByParty(current);
        participants = chosen;
        run = async () => {
          const g = await refreshWallet(chosen.map((id) => this.peers.participant(id)), record, gen, copts);
          return { result: { walletId, generation: g, publicKey: toHex(w.publicKey), address: ethAddress(w.publicKey) } };
        };
      }
    }
    const db = this.self.db;
    startCeremony(db, { ceremonyId, kind, walletId, coordinator: me, participants, requestId });
    try {
      const { result } = await run();
      finishCeremony(db, ceremonyId, { status: "succeeded", result: new TextEncoder().encode(JSON.stringify(result)) });
      return result;
    } catch (e) {
      finishCeremony(db, ceremonyId, { status: "failed", error: (e as Error).message.slice(0, 500) });
      throw e;
    }
  }
}
