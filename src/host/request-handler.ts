/**
 * What a node does with a client request it took from the shared
 * subscription: it becomes the coordinator. It finds the nodes it needs among
 * the live ones (planning.ts: one round of node RPCs per request), drives the ceremony, records the outcome under the client's
 * request id (a repeated id returns the stored result, never a second
 * signature), and answers with a result or an error that names the reason
 * and, where known, the node to blame.
 */
import { randomBytes } from "node:crypto";
import {
  CeremonyError,
  createWallet,
  refreshWallet,
  signDigest,
  type ApprovalRelay,
  type CoordinatorOptions,
} from "./coordinator.ts";
import {
  APPROVAL_BYTES,
  MAX_APPROVALS,
  MAX_POLICY_BYTES,
  MAX_REQUEST_BYTES,
  policyHash,
} from "../shared/wire/approval.ts";
import {
  appendAudit,
  finishCeremony,
  requesterOf,
  startCeremony,
  type HeldWalletStatement,
} from "./store/index.ts";
import type { NodeHost, HeldWallet } from "./node-host.ts";
import type { WalletRecord } from "./participant.ts";
import type { PeerDirectory } from "./peer-directory.ts";
import { keepPeerStatements, keptStatements, walletVouchers } from "./wallet-vouchers.ts";
import { coordinateRetirement } from "./wallet-retirement.ts";
import { importTarget, planImport, runImport, type ImportPlan } from "./key-import.ts";
import { coordinateRepair, replacedHolders } from "./share-repair.ts";
import { coordinateReshare } from "./wallet-reshare.ts";
import { signResult } from "./sign-result.ts";
import { CeremonyEnds } from "./ceremony-ends.ts";
import {
  currentHolders,
  gatherRequestContext,
  HolderView,
  nodesByParty,
  planDkg,
  planRefresh,
  planSign,
  RequestError,
  requestParamsHash,
  walletHolders,
  type PreparedSigner,
  type RequestIdentity,
} from "./planning.ts";
import type { LiveNode } from "./mqtt/bus.ts";
import { ethAddress } from "../shared/public-key.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { DIGEST_HEX, ID_RULE, isId, isNonHardenedPath } from "../shared/wire/patterns.ts";
import { DEFAULT_KEY_TYPE, requestedKeyType, withKeyType } from "../shared/wire/key-type.ts";

import { RateLimitError, type Admission, type ClientLimits } from "./rate-limits.ts";
import { isPowerOfTwo } from "./mqtt/requests.ts";
import type { HostMetrics } from "./metrics.ts";

export type { PeerDirectory } from "./peer-directory.ts";

export interface Reply {
  /** The client user the answer goes to, from the request's Response Topic (see RequestReply.client); request ids are scoped to it. */
  readonly client?: string;
  progress(p: { stage: string; phase?: number; of?: number; coordinator?: string }): void;
  done(result: unknown): void;
  fail(error: { code: string; message: string; node?: string | null; reason?: string }): void;
}

function need(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RequestError("bad_request", message);
}

/**
 * The client's approvals (`approval: {request, approvals}`, hex) and a DKG's
 * `policy` (hex), as the enclaves will read them; only their shape is
 * checked here (bounds of approval.ts): whether they authorise anything is
 * for every participating enclave to decide.
 */
function approvalRelay(requestId: string, b: Record<string, unknown>): ApprovalRelay {
  if (b.approval === undefined) return { requestId };
  const a = b.approval as Record<string, unknown>;
  need(
    a !== null && typeof a === "object" && !Array.isArray(a),
    "approval must be {request, approvals}",
  );
  need(
    typeof a.request === "string" &&
      HEX.test(a.request) &&
      a.request.length <= 2 * MAX_REQUEST_BYTES,
    "approval.request must be the approvable request encoding as hex",
  );
  need(
    Array.isArray(a.approvals) &&
      a.approvals.length <= MAX_APPROVALS &&
      a.approvals.every(
        (x) => typeof x === "string" && x.length === 2 * APPROVAL_BYTES && HEX.test(x),
      ),
    `approval.approvals must be at most ${MAX_APPROVALS} approvals of ${APPROVAL_BYTES} bytes as hex`,
  );
  return {
    requestId,
    approvalRequest: fromHex(a.request),
    approvals: (a.approvals as string[]).map((x) => fromHex(x, APPROVAL_BYTES)),
  };
}

function policyOf(b: Record<string, unknown>): Uint8Array | undefined {
  if (b.policy === undefined) return undefined;
  need(
    typeof b.policy === "string" && HEX.test(b.policy) && b.policy.length <= 2 * MAX_POLICY_BYTES,
    "policy must be an approval policy encoding as hex",
  );
  return fromHex(b.policy);
}

const HEX = /^([0-9a-f]{2})+$/;

/** A request body's id for a log line, when it has a well-formed one. */
const requestIdOf = (body: unknown): string | undefined => {
  const id = (body as { requestId?: unknown } | null)?.requestId;
  return isId(id) ? id : undefined;
};

function walletView(w: HeldWallet, holders: HeldWallet[], kept: HeldWalletStatement[] = []) {
  return {
    walletId: w.walletId,
    // Every wallet is threshold ECDSA over secp256k1 today (key-type.ts).
    keyType: DEFAULT_KEY_TYPE,
    publicKey: toHex(w.publicKey),
    address: ethAddress(w.publicKey),
    threshold: w.threshold,
    parties: w.parties,
    generation: w.generation,
    nodes: nodesByParty(holders),
    // The node's word (the SDK's default for a policy change's approvals; the enclaves check it).
    policyHash: w.policy === undefined ? null : toHex(policyHash(w.policy)),
    // For the SDK to verify (src/client/wallet-verification.ts); the host vouches for nothing.
    // An offline holder's statement is the copy this node keeps of it (wallet-vouchers.ts).
    vouchers: walletVouchers(holders, kept),
  };
}

/**
 * Whether a signature's planning round also prepares the expected signers (planning.ts). Off
 * only with TSS_PLANNING_PREPARE=off in the environment, to measure what it saves
 * (bench/cluster.ts --legacy-node-layer); the separate prepare and attestation rounds then run.
 */
const PREPARE_IN_PLANNING = process.env.TSS_PLANNING_PREPARE !== "off";

export class RequestHandler {
  /** Each wallet's holders as the last planning round saw them: who to prepare in the next one. */
  private readonly holderView = new HolderView();

  constructor(
    private readonly self: NodeHost,
    private readonly peers: PeerDirectory,
    private readonly opts: {
      phaseTimeoutMs: number;
      log?: (e: string, f: Record<string, unknown>) => void;
      /** Per client user requests/s and in flight (rate-limits.ts); absent: unlimited. */
      limits?: ClientLimits;
      /** Requests, ceremonies and phases for the Prometheus endpoint (metrics.ts); absent: off. */
      metrics?: Pick<HostMetrics, "requestTaken" | "ceremonyEnded" | "phaseObserved">;
    },
  ) {
    this.ceremonyEnds = new CeremonyEnds(self.db, self.nodeId, opts.log);
  }

  /** Ends of ceremonies this node coordinated that its database refused; `retry` when it is back (main.ts). */
  readonly ceremonyEnds: CeremonyEnds;

  async handle(op: string, body: unknown, reply: Reply): Promise<void> {
    const log = this.opts.log ?? (() => {});
    // Keyed by the client user (the broker binds the Response Topic's client id to it).
    const client = reply.client ?? "";
    let admission: Admission | undefined;
    let answered: (() => void) | undefined;
    try {
      // Before anything else: a refused request costs no parsing and no node RPC.
      admission = this.opts.limits?.admit(client);
      answered = this.opts.metrics?.requestTaken(op);
      need(
        body && typeof body === "object" && !Array.isArray(body),
        "request body must be a JSON object",
      );
      const b = body as Record<string, unknown>;
      need(isId(b.requestId), `requestId must be ${ID_RULE}`);
      const requestId = b.requestId;
      // Whatever the operation: a key type this node does not support is refused before any work.
      const keyType = requestedKeyType(b.keyType);
      if (keyType instanceof Error) throw new RequestError("bad_request", keyType.message);
      log("request", { op, requestId, client, inFlight: this.opts.limits?.inFlight(client) });
      switch (op) {
        case "dkg":
        case "sign":
        case "refresh":
          return reply.done(await this.ceremony(op, requestId, b, reply));
        // A policy change is a refresh whose new shares are sealed with the new policy.
        case "policy":
          need(b.policy !== undefined, "policy is required: the new policy's encoding as hex");
          return reply.done(await this.ceremony("refresh", requestId, b, reply, true));
        // A key import is a DKG whose key the client brought (key-import.ts).
        case "import":
          need(isId(b.walletId), "walletId is required: the envelope is sealed for it");
          return reply.done(await this.ceremony("dkg", requestId, b, reply, false, true));
        case "importTarget":
          return reply.done(await importTarget(this.peers, this.self.nodeId, b.nodeId));
        // Party K of a wallet moved to another node (share-repair.ts).
        case "repair": {
          need(isId(b.walletId), "walletId is required");
          need(
            Number.isInteger(b.party) && (b.party as number) >= 1 && (b.party as number) <= 16,
            "party must be a party index (1..16)",
          );
          need(typeof b.toNode === "string", "toNode is required: the node to move the party to");
          this.holderView.forget(b.walletId);
          reply.progress({ stage: "prepare", phase: 1, of: 1, coordinator: this.self.nodeId });
          const who = reply.client === undefined ? {} : { client: reply.client };
          return reply.done(
            await coordinateRepair(
              this.peers,
              // Its end recorded as every ceremony's: a retried request id gets the stored result.
              { nodeId: this.self.nodeId, db: this.self.db, ends: this.ceremonyEnds },
              {
                walletId: b.walletId,
                party: b.party as number,
                toNode: b.toNode,
                requestId,
                approval: { ...approvalRelay(requestId, b), ...who },
                refreshApproval: {
                  ...approvalRelay(requestId, { approval: b.refreshApproval }),
                  ...who,
                },
                ...who,
              },
              {
                phaseTimeoutMs: this.opts.phaseTimeoutMs,
                onProgress: (stage, phase) =>
                  reply.progress({ stage, phase, of: 4, coordinator: this.self.nodeId }),
              },
            ),
          );
        }
        // The wallet's key reshared to a new committee (wallet-reshare.ts).
        case "reshare": {
          need(isId(b.walletId), "walletId is required");
          need(
            Number.isInteger(b.threshold) && (b.threshold as number) >= 2,
            "threshold is required: the new committee's threshold",
          );
          need(
            Array.isArray(b.nodes) &&
              b.nodes.length <= 16 &&
              b.nodes.every((n) => typeof n === "string"),
            "nodes is required: the whole new committee's node ids",
          );
          this.holderView.forget(b.walletId);
          reply.progress({ stage: "prepare", phase: 1, of: 1, coordinator: this.self.nodeId });
          const who = reply.client === undefined ? {} : { client: reply.client };
          return reply.done(
            await coordinateReshare(
              this.peers,
              this.self,
              {
                walletId: b.walletId,
                threshold: b.threshold as number,
                nodes: b.nodes as string[],
                // Only a literal true weakens the leaving checks (wallet-reshare.ts planReshare).
                allowOldQuorumLeaving: b.allowOldQuorumLeaving === true,
                allowOfflineLeaving: b.allowOfflineLeaving === true,
                requestId,
                approval: { ...approvalRelay(requestId, b), ...who },
                ...who,
              },
              {
                phaseTimeoutMs: this.opts.phaseTimeoutMs,
                onProgress: (stage, phase) =>
                  reply.progress({ stage, phase, of: 4, coordinator: this.self.nodeId }),
              },
            ),
          );
        }
        case "retire": {
          need(isId(b.walletId), "walletId is required");
          this.holderView.forget(b.walletId);
          reply.progress({ stage: "prepare", phase: 1, of: 1, coordinator: this.self.nodeId });
          return reply.done(
            await coordinateRetirement(
              this.peers,
              b.walletId,
              requestId,
              approvalRelay(requestId, b),
              reply.client,
            ),
          );
        }
        case "wallet": {
          need(isId(b.walletId), "walletId is required");
          const holders = await walletHolders(this.peers, b.walletId);
          for (const node of replacedHolders(holders))
            void this.peers.ask(node, "checkReplaced", { walletId: b.walletId }).catch(() => null);
          const { current } = currentHolders(b.walletId, holders);
          return reply.done(
            walletView(current[0]!, current, this.keepStatements(b.walletId, current)),
          );
        }
        case "wallets": {
          const lists = await Promise.all(
            this.peers.liveNodes().map((n) => this.peers.ask(n.nodeId, "listWallets", {})),
          );
          const byId = new Map<string, HeldWallet[]>();
          for (const l of lists)
            for (const w of l ?? []) byId.set(w.walletId, [...(byId.get(w.walletId) ?? []), w]);
          return reply.done({
            // The newest generation's holders: a repaired party's lost node is none of them.
            wallets: [...byId.entries()].map(([id, hs]) => {
              const { current } = currentHolders(id, hs);
              return walletView(current[0]!, current, this.keepStatements(id, current));
            }),
          });
        }
        case "nodes":
          return reply.done({
            nodes: this.peers.liveNodes().map((n) => ({
              nodeId: n.nodeId,
              status: n.status ?? "online",
              since: n.since,
              pcr0: n.pcr0 ?? null,
            })),
          });
        default:
          throw new RequestError("bad_request", `unknown operation ${op}`);
      }
    } catch (e) {
      const err =
        e instanceof RequestError || e instanceof CeremonyError || e instanceof RateLimitError
          ? e
          : // This node itself failed (its database locked, say): it names itself.
            new RequestError(
              "internal",
              `node ${this.self.nodeId}: ${(e as Error).message}`,
              this.self.nodeId,
            );
      // A flood is counted by the limits; its refusals are logged sparsely.
      if (!(e instanceof RateLimitError) || isPowerOfTwo(this.opts.limits?.refused ?? 1))
        log("request_failed", {
          op,
          requestId: requestIdOf(body),
          code: err.code,
          error: err.message,
        });
      reply.fail({
        code: err.code,
        message: err.message,
        node: (err as { node?: string | null }).node ?? null,
        ...(err instanceof CeremonyError && err.reason !== undefined ? { reason: err.reason } : {}),
      });
    } finally {
      admission?.release();
      answered?.();
    }
  }

  /** The signers a signature of `walletId` would take by the holder view, or undefined when it has none to offer. */
  private expectedSigners(walletId: string, live: readonly LiveNode[]): string[] | undefined {
    const seen = this.holderView.get(walletId, live);
    if (!seen || seen.length === 0) return undefined;
    try {
      const { generation, current } = currentHolders(walletId, seen);
      return planSign(this.self.nodeId, walletId, generation, current, current[0]!.threshold);
    } catch {
      return undefined;
    }
  }

  /** The statements the holders stored for `generation` of the wallet they just produced. */
  private async vouchersOf(walletId: string, generation: number) {
    const holders = (await walletHolders(this.peers, walletId)).filter(
      (h) => h.generation === generation,
    );
    return walletVouchers(holders, this.keepStatements(walletId, holders));
  }

  /**
   * Keeps the live holders' statements this node relays (for when they are offline) and
   * returns what it keeps of the wallet; a store that refuses costs only the copies.
   */
  private keepStatements(walletId: string, holders: readonly HeldWallet[]): HeldWalletStatement[] {
    const { db, nodeId } = this.self;
    try {
      keepPeerStatements(
        db,
        nodeId,
        walletId,
        holders.flatMap((h) =>
          h.statement && h.attestation
            ? [{ nodeId: h.nodeId, statement: h.statement, attestation: h.attestation }]
            : [],
        ),
      );
      return keptStatements(db, walletId);
    } catch {
      return [];
    }
  }

  private async ceremony(
    kind: "dkg" | "sign" | "refresh",
    requestId: string,
    b: Record<string, unknown>,
    reply: Reply,
    /** A refresh that changes the wallet's policy to `b.policy` (the `policy` operation). */
    policyChange = false,
    /** A DKG whose key is the client's, sealed in `b.envelope` (the `import` operation). */
    importing = false,
  ): Promise<unknown> {
    // One round to every live node: an earlier run of this request id, and who holds the wallet.
    const named = kind !== "dkg" && isId(b.walletId) ? b.walletId : undefined;
    // Request ids are unique per client user: the broker user of the Response Topic (requests.ts).
    need(
      reply.client === undefined || isId(reply.client),
      `the Response Topic's user must be ${ID_RULE}`,
    );
    const who: RequestIdentity | undefined =
      reply.client === undefined
        ? undefined
        : {
            client: reply.client,
            // A plain refresh ignores a stray policy field; a policy change is told apart by it.
            paramsHash: requestParamsHash(
              kind,
              kind === "refresh" && !policyChange ? { ...b, policy: undefined } : b,
            ),
          };
    // A signature's expected signers, from the holder view, are prepared in the same round.
    const live = this.peers.liveNodes();
    const expected =
      kind === "sign" && named && PREPARE_IN_PLANNING
        ? this.expectedSigners(named, live)
        : undefined;
    const context = await gatherRequestContext(
      this.peers,
      kind,
      requestId,
      named,
      who,
      expected && new Set(expected),
      { timeoutMs: this.opts.phaseTimeoutMs },
    );
    if (named !== undefined) {
      // A repaired party's lost node come back: it confirms with its peers and drops its rows.
      for (const node of replacedHolders(context.holders))
        void this.peers.ask(node, "checkReplaced", { walletId: named }).catch(() => null);
      // Refresh and retirement change who holds what: the next request asks afresh.
      if (kind === "sign") this.holderView.set(named, live, context.holders);
      else this.holderView.forget(named);
    }
    // Answered as now, also when it was stored before answers named their key type.
    if (context.prior !== undefined) return withKeyType(context.prior);
    const copts: CoordinatorOptions = {
      phaseTimeoutMs: this.opts.phaseTimeoutMs,
      // Relayed to every participant as the client sent it; each enclave checks it before phase 1.
      approval: { ...approvalRelay(requestId, b), ...(who && { client: who.client }) },
      // The coordinator's id lets the SDK watch its presence (Last Will) while it waits.
      onProgress: (stage, phase) =>
        reply.progress({ stage, phase, of: 4, coordinator: this.self.nodeId }),
      // The log line that ties the client's request id to the session id every node logs.
      onSession: (k, s) =>
        this.opts.log?.("ceremony_session", {
          requestId,
          ceremonyId,
          kind: k,
          session: toHex(s).slice(0, 16),
        }),
      onPhase: this.opts.metrics?.phaseObserved,
    };
    reply.progress({ stage: "prepare", phase: 1, of: 1, coordinator: this.self.nodeId });
    const ceremonyId = randomBytes(32).toString("hex");
    let walletId: string | null = typeof b.walletId === "string" ? b.walletId : null;
    // A DKG's wallet id is the client's when its approvals name one.
    need(kind !== "dkg" || walletId === null || isId(walletId), `walletId must be ${ID_RULE}`);
    const policy = kind === "dkg" || policyChange ? policyOf(b) : undefined;
    let run: () => Promise<{ result: unknown }>;
    let participants: string[];
    const me = this.self.nodeId;

    if (kind === "dkg") {
      const t = b.threshold ?? 3;
      const n = b.parties ?? 5;
      need(
        Number.isInteger(t) &&
          Number.isInteger(n) &&
          (t as number) >= 2 &&
          (t as number) <= (n as number) &&
          (n as number) <= 16,
        "need integers 2 <= threshold <= parties <= 16",
      );
      const imported: ImportPlan | undefined = importing
        ? planImport(this.peers, b, t as number, n as number)
        : undefined;
      const chosen =
        imported?.participants ??
        planDkg(
          me,
          this.peers
            .liveNodes()
            .filter((x) => x.status !== "degraded")
            .map((x) => x.nodeId),
          t as number,
          n as number,
        );
      participants = chosen;
      if (imported)
        run = async () => {
          const { publicKey, generation } = await runImport(this.peers, imported, {
            walletId: walletId as string,
            threshold: t as number,
            ...(policy === undefined ? {} : { policy }),
            copts,
            refreshApproval: {
              ...approvalRelay(requestId, { approval: b.refreshApproval }),
              ...(who && { client: who.client }),
            },
          });
          return {
            result: {
              walletId,
              keyType: DEFAULT_KEY_TYPE,
              publicKey: toHex(publicKey),
              address: ethAddress(publicKey),
              threshold: t,
              parties: n,
              generation,
              nodes: chosen,
              imported: true,
              dealerNode: imported.dealerNode,
              vouchers: await this.vouchersOf(walletId as string, generation),
            },
          };
        };
      else
        run = async () => {
          const w = await createWallet(
            chosen.map((id) => this.peers.participant(id)),
            t as number,
            { ...copts, policy, ...(walletId === null ? {} : { walletId }) },
          );
          walletId = w.walletId;
          return {
            result: {
              walletId: w.walletId,
              keyType: DEFAULT_KEY_TYPE,
              publicKey: toHex(w.publicKey),
              address: ethAddress(w.publicKey),
              threshold: w.threshold,
              parties: w.parties,
              generation: 0,
              nodes: chosen,
              vouchers: await this.vouchersOf(w.walletId, 0),
            },
          };
        };
    } else {
      need(named !== undefined, "walletId is required");
      const { generation: gen, current } = currentHolders(named, context.holders);
      const w = current[0]!;
      const record: WalletRecord = {
        walletId: w.walletId,
        threshold: w.threshold,
        parties: w.parties,
        publicKey: w.publicKey,
        publicPackage: w.publicPackage,
        chainCode: w.chainCode,
      };
      if (kind === "sign") {
        need(
          typeof b.digest === "string" && DIGEST_HEX.test(b.digest.replace(/^0x/, "")),
          "digest must be 32 bytes of hex",
        );
        need(
          b.path === undefined || isNonHardenedPath(b.path),
          "path must look like m/0/7 (non-hardened)",
        );
        const digest = fromHex(b.digest, 32);
        const path = b.path;
        // The expected signers stand when the fresh answers agree: every one a current holder
        // that loaded the current generation. Otherwise plan from the answers and prepare anew.
        const prepared = expected?.map((id) => context.prepared?.get(id));
        // (A reshare changes t: a view from before it names the old number of signers.)
        const agreed =
          expected !== undefined &&
          expected.length === w.threshold &&
          prepared!.every((p) => p !== undefined && p.generation === gen) &&
          expected.every((id) => current.some((h) => h.nodeId === id));
        const chosen = agreed ? expected : planSign(me, named, gen, current, w.threshold);
        participants = chosen;
        run = async () => {
          const sig = await signDigest(
            chosen.map((id) => this.peers.participant(id)),
            record,
            gen,
            digest,
            {
              ...copts,
              path,
              ...(agreed ? { prepared: prepared as PreparedSigner[] } : {}),
              // Written once the signers' starts are sent (coordinator.ts onDispatched).
              onDispatched: recordStart,
            },
          );
          // The same answer every signer kept (sign-result.ts), should this node die before sending it.
          const result = signResult({
            walletId: named,
            publicKey: w.publicKey,
            chainCode: w.chainCode,
            digest,
            path,
            sig,
            signers: chosen,
            coordinator: me,
          });
          return { result };
        };
      } else {
        const chosen = planRefresh(current, w.parties);
        participants = chosen;
        run = async () => {
          const g = await refreshWallet(
            chosen.map((id) => this.peers.participant(id)),
            record,
            gen,
            { ...copts, ...(policy === undefined ? {} : { newPolicy: policy }) },
          );
          return {
            result: {
              walletId,
              keyType: DEFAULT_KEY_TYPE,
              generation: g,
              ...(policy === undefined ? {} : { policyHash: toHex(policyHash(policy)) }),
              publicKey: toHex(w.publicKey),
              address: ethAddress(w.publicKey),
              threshold: w.threshold,
              parties: w.parties,
              vouchers: await this.vouchersOf(walletId as string, g),
            },
          };
        };
      }
    }
    const db = this.self.db;
    let recorded = false;
    let recordFailure: unknown;
    // Recorded and audited together: the log names every ceremony the node started.
    const recordStart = () => {
      if (recorded) return;
      try {
        db.transaction(() => {
          startCeremony(db, {
            ceremonyId,
            kind,
            walletId,
            coordinator: me,
            participants,
            requestId,
            ...(who && { clientUser: who.client, paramsHash: fromHex(who.paramsHash, 32) }),
          });
          appendAudit(db, me, {
            event: "ceremony_started",
            ceremonyId,
            ...(walletId === null ? {} : { walletId }),
            kind,
            participants,
            requestId,
            ...requesterOf(reply),
          });
        });
      } catch (e) {
        recordFailure = e;
        throw e;
      }
      recorded = true;
    };
    // A signature's record is written once phase 1's starts are sent, its fsync overlapping the
    // signers' phase 1 instead of preceding it; still before any phase 2, so no signature exists
    // without it. Every other ceremony's is written before it starts.
    if (kind !== "sign") recordStart();
    try {
      const { result } = await run();
      recordStart();
      this.opts.metrics?.ceremonyEnded(kind);
      db.transaction(() => {
        finishCeremony(db, ceremonyId, {
          status: "succeeded",
          result: new TextEncoder().encode(JSON.stringify(result)),
        });
        appendAudit(db, me, {
          event: "ceremony_finished",
          ceremonyId,
          ...(walletId === null ? {} : { walletId }),
          kind,
          status: "succeeded",
          requestId,
        });
      });
      return result;
    } catch (e) {
      // The record itself was refused: answered with that, as when it was written first.
      if (recordFailure !== undefined) throw recordFailure;
      this.opts.metrics?.ceremonyEnded(kind, e);
      // A signature that failed before its record (preparation): recorded now, so the request
      // id answers the failure as before.
      recordStart();
      // A refused write of the end throws (the client is told `internal`, nothing released) and
      // is kept to be written when the database is back (ceremony-ends.ts).
      this.ceremonyEnds.failed({ ceremonyId, kind, requestId, walletId }, e);
      throw e;
    }
  }
}
