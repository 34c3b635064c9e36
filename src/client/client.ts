/**
 * The TSS client: each call publishes one request (QoS 1) to
 * tss/v1/requests/<op> and waits for its answer on this client's responses
 * topic, matched by 16 random bytes of Correlation Data. Progress messages
 * go to the caller's onProgress; the one final answer resolves or rejects.
 */
import { randomBytes } from "node:crypto";
import type { IPublishPacket } from "mqtt";
import { fromHex, toHex } from "../shared/hex.ts";
import { policyHash } from "../shared/wire/approval.ts";
import { approvalFields, newWalletId, policyEncoding } from "./approval-request.ts";
import { importRecipient, sealKeyForEnclave, trustedEnclaveDocument } from "./key-import.ts";
import { repairTargetDigest } from "../shared/wire/repair.ts";
import { reshareCommitteeDigest, type ReshareMember } from "../shared/wire/reshare.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { checkAddress, checkSameKeyType, checkSameWallet, checkSignResult } from "./checks.ts";
import { Connection } from "./connection.ts";
import { CoordinatorWatch } from "./coordinator-watch.ts";
import { TssError } from "./errors.ts";
import {
  verifiedSigningKey,
  verifyAnswer,
  type VerifiedWallet,
  type WalletTrust,
} from "./wallet-verification.ts";
import {
  checkClientId,
  checkCount,
  checkKeyType,
  checkPath,
  checkRequestId,
  checkTimeout,
  checkWalletId,
  newRequestId,
  normalizeDigest,
} from "./inputs.ts";
import {
  ShapeError,
  parseCreateWallet,
  parseEnvelope,
  parseImport,
  parseImportTarget,
  parseNodes,
  parseRefresh,
  parseRepair,
  parseReshare,
  parseRetire,
  parseSign,
  parseWalletInfo,
  parseWallets,
} from "./responses.ts";
import { requestTopic, responsesFilter, responsesPrefix, type Op } from "../shared/wire/topics.ts";
import type {
  ConnectOptions,
  CreateWalletOptions,
  CreateWalletResult,
  ImportKeyOptions,
  ImportKeyResult,
  KeyType,
  NodesResult,
  Progress,
  QueryOptions,
  RefreshOptions,
  ChangePolicyOptions,
  RefreshResult,
  RequestOptions,
  RepairShareOptions,
  RepairShareResult,
  ReshareWalletOptions,
  ReshareWalletResult,
  RetireWalletOptions,
  RetireWalletResult,
  SignOptions,
  SignResult,
  WalletInfo,
  WalletsResult,
} from "./types.ts";

/** A 3-of-5 DKG across enclaves takes tens of seconds on small machines; this leaves room. */
export const DEFAULT_TIMEOUT_MS = 180_000;
const MAX_CONNECT_WAIT_MS = 30_000;

interface Pending {
  deliver(payload: Buffer): void;
  fail(e: TssError): void;
}

/** The username in an mqtt://user:pass@host URL, if any (Connection.open takes it from there too). */
function urlUsername(url: string): string | undefined {
  try {
    const u = new URL(url).username;
    return u ? decodeURIComponent(u) : undefined;
  } catch {
    return undefined; // Connection.open reports the bad URL
  }
}

export class TssClient {
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private coordinators: CoordinatorWatch | null = null;
  /** Wallets verified under `trust`: a wallet's key and chain code never change, so one verification serves every later sign. */
  private readonly verifiedWallets = new Map<string, VerifiedWallet>();

  private constructor(
    private readonly conn: { current: Connection | null },
    /** The MQTT client id (the username when one is given); replies arrive on tss/v1/responses/<clientId>/#. */
    readonly clientId: string,
    private readonly timeoutMs: number,
    /** Without it answers are checked only against themselves (checks.ts). */
    private readonly trust: WalletTrust | undefined,
  ) {}

  /** Connects and subscribes to this client's responses; rejects with `connection_failed` or `bad_request`. */
  static async connect(o: ConnectOptions): Promise<TssClient> {
    // The broker binds client id to username (use_username_as_clientid) and lets a user read
    // only tss/v1/responses/<username>/#, so with a username the client id is that username.
    const username = o.username ?? urlUsername(o.url);
    const clientId =
      username !== undefined
        ? checkClientId(username)
        : o.clientId === undefined
          ? `tss-${randomBytes(12).toString("hex")}`
          : checkClientId(o.clientId);
    const timeoutMs = checkTimeout(o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    // The message handler needs the client and the client needs the connection; the box breaks the cycle.
    const box: { current: Connection | null } = { current: null };
    const client = new TssClient(box, clientId, timeoutMs, o.trust);
    box.current = await Connection.open({
      url: o.url,
      clientId,
      username: o.username,
      password: o.password,
      tls: o.tls,
      connectTimeoutMs: Math.min(timeoutMs, MAX_CONNECT_WAIT_MS),
      subscribe: responsesFilter(clientId),
      onMessage: (topic, payload, packet) => client.route(topic, payload, packet),
    });
    client.coordinators = new CoordinatorWatch(box.current);
    return client;
  }

  /** Distributed key generation of a new wallet (the node defaults to 3-of-5). */
  async createWallet(o: CreateWalletOptions = {}): Promise<CreateWalletResult> {
    const keyType = checkKeyType(o.keyType);
    const body: Record<string, unknown> = { keyType };
    if (o.threshold !== undefined) body.threshold = checkCount(o.threshold, "threshold");
    if (o.parties !== undefined) body.parties = checkCount(o.parties, "parties");
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    if (o.policy !== undefined) {
      const policy = policyEncoding(o.policy);
      body.policy = toHex(policy);
      // The administrators approve this wallet id, policy and shape (the node's defaults, 3-of-5, made explicit).
      body.walletId = o.walletId === undefined ? newWalletId() : checkWalletId(o.walletId);
      body.threshold ??= 3;
      body.parties ??= 5;
      Object.assign(
        body,
        await approvalFields(
          {
            operation: "dkg",
            walletId: body.walletId as string,
            requestId,
            policyHash: policyHash(policy),
            threshold: body.threshold as number,
            parties: body.parties as number,
          },
          { signers: o.admins, approvalSeconds: o.approvalSeconds },
        ),
      );
    }
    return this.request("dkg", body, { ...o, requestId }, (v) => {
      const w = parseCreateWallet(v);
      checkSameKeyType(w, keyType);
      checkAddress(w);
      if (
        (o.threshold !== undefined && w.threshold !== o.threshold) ||
        (o.parties !== undefined && w.parties !== o.parties)
      ) {
        throw new TssError(
          "inconsistent_result",
          `The node created a ${w.threshold}-of-${w.parties} wallet, not the requested ${o.threshold ?? w.threshold}-of-${o.parties ?? w.parties}.`,
        );
      }
      return { ...w, ...this.vouched(v, w) };
    });
  }

  /**
   * Signs a 32-byte digest. The result is verified here before it is
   * returned: a signature that does not verify against the returned public
   * key rejects with `invalid_signature`.
   */
  async sign(o: SignOptions): Promise<SignResult> {
    const walletId = checkWalletId(o.walletId);
    const digest = normalizeDigest(o.digest);
    const path = o.path === undefined ? null : checkPath(o.path);
    const keyType = checkKeyType(o.keyType);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const approval = await approvalFields(
      { operation: "sign", walletId, requestId, digest: fromHex(digest, 32), path: path ?? "m" },
      o,
    );
    const body = { walletId, keyType, digest, ...(path === null ? {} : { path }), ...approval };
    // With trust configured, the signature must be by the key n attested enclaves vouch for.
    const verified = this.trust === undefined ? null : await this.verifiedWallet(walletId, o);
    return this.request("sign", body, { ...o, requestId }, (v) => {
      const r = checkSignResult(parseSign(v), { walletId, digest, path });
      checkSameKeyType(r, keyType);
      if (verified && r.publicKey !== verifiedSigningKey(verified, path))
        throw new TssError(
          "invalid_signature",
          `The signature is by key ${r.publicKey.slice(0, 16)}…, not the verified key of wallet ${walletId}${path === null ? "" : ` at ${path}`}.`,
          r.coordinator,
        );
      return r;
    });
  }

  /** Re-randomises every share of a wallet; the key and address stay the same, the generation goes up. */
  async refresh(o: RefreshOptions): Promise<RefreshResult> {
    const walletId = checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const keyType = checkKeyType(o.keyType);
    const approval = await approvalFields({ operation: "refresh", walletId, requestId }, o);
    const body = { walletId, keyType, ...approval };
    return this.request("refresh", body, { ...o, requestId }, (v) => {
      const r = parseRefresh(v);
      checkSameWallet(r, walletId);
      checkSameKeyType(r, keyType);
      checkAddress(r);
      return { ...r, ...this.vouched(v, r) };
    });
  }

  /**
   * Replaces the wallet's approval policy: `signers` approve it under the current policy (a
   * quorum of its approvers), every holder's enclave checks that, and the change is applied as
   * a refresh whose new shares are sealed with the new policy, by all n holders or by none.
   * From then on only the new policy's approvers can approve the wallet's requests.
   */
  async changePolicy(o: ChangePolicyOptions): Promise<RefreshResult> {
    const walletId = checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const keyType = checkKeyType(o.keyType);
    const policy = policyEncoding(o.policy);
    const current = await this.currentPolicyHash(walletId, o);
    const approval = await approvalFields(
      {
        operation: "policy_change",
        walletId,
        requestId,
        policyHash: policyHash(policy),
        currentPolicyHash: current,
      },
      o,
    );
    const body = { walletId, keyType, policy: toHex(policy), ...approval };
    return this.request("policy", body, { ...o, requestId }, (v) => {
      const r = parseRefresh(v);
      checkSameWallet(r, walletId);
      checkSameKeyType(r, keyType);
      checkAddress(r);
      if (r.policyHash !== toHex(policyHash(policy)))
        throw new TssError(
          "bad_response",
          `The node answered a policy change to ${r.policyHash ?? "no policy"}, not to the policy asked for.`,
        );
      const vouched = this.vouched(v, r);
      // With trust: all n enclaves' statements of the new generation name the new policy.
      const verified = this.verifiedWallets.get(walletId);
      if (
        this.trust !== undefined &&
        verified &&
        toHex(verified.policyHash ?? new Uint8Array()) !== r.policyHash
      )
        throw new TssError(
          "unverified_wallet",
          `The holders' enclaves vouch for policy ${verified.policyHash === null ? "none" : toHex(verified.policyHash)} after the change, not ${r.policyHash}.`,
        );
      return { ...r, ...vouched };
    });
  }

  /** The hash a policy change's approvals name as replaced: given, verified, or the node's word. */
  private async currentPolicyHash(walletId: string, o: ChangePolicyOptions): Promise<Uint8Array> {
    if (o.currentPolicyHash !== undefined)
      return typeof o.currentPolicyHash === "string"
        ? fromHex(o.currentPolicyHash.replace(/^0x/, ""), 32)
        : o.currentPolicyHash;
    const hash =
      this.trust === undefined
        ? (await this.wallet(walletId, o)).policyHash
        : (await this.verifiedWallet(walletId, o)).policyHash;
    if (hash === null || hash === undefined)
      throw new TssError(
        "bad_request",
        `Wallet ${walletId} has no approval policy: nobody can approve changing it.`,
      );
    return typeof hash === "string" ? fromHex(hash, 32) : hash;
  }

  /**
   * Imports an existing secp256k1 key as a new wallet. The client fetches one node's enclave
   * attestation document, verifies it under `trust` (as wallet statements are), and seals the
   * key to that enclave with HPKE (key-import.ts); the administrators approve the import of
   * that exact envelope, `signers` the refresh that follows under the new wallet's `policy`.
   * The enclave deals the shares to n attested enclaves end to end and the cluster refreshes
   * at once. The answer must name the key's own public key and be vouched for by all n
   * enclaves. `secretKey` and `chainCode` are wiped whatever happens.
   */
  async importKey(o: ImportKeyOptions): Promise<ImportKeyResult> {
    let publicKey: string;
    let keyType: KeyType;
    let envelope: Uint8Array;
    let target: { nodeId: string; attestation: string };
    const walletId = o.walletId === undefined ? newWalletId() : checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const threshold = checkCount(o.threshold ?? 3, "threshold");
    const parties = checkCount(o.parties ?? 5, "parties");
    try {
      // Inside the try: a refused key type wipes the key too. Only secp256k1 keys can be sealed.
      keyType = checkKeyType(o.keyType);
      if (this.trust === undefined)
        throw new TssError("bad_request", "importing a key needs ConnectOptions.trust");
      if (!(o.secretKey instanceof Uint8Array) || o.secretKey.length !== 32)
        throw new TssError("bad_request", "secretKey must be 32 bytes");
      try {
        publicKey = toHex(secp256k1.getPublicKey(o.secretKey, true));
      } catch {
        throw new TssError("bad_request", "secretKey is not a secp256k1 secret key");
      }
      target = await this.request(
        "importTarget",
        o.nodeId === undefined ? {} : { nodeId: o.nodeId },
        { timeoutMs: o.timeoutMs },
        parseImportTarget,
      );
      const recipient = importRecipient(fromHex(target.attestation), this.trust);
      envelope = await sealKeyForEnclave({
        recipient,
        walletId,
        requestId,
        threshold,
        parties,
        secretKey: o.secretKey,
        ...(o.chainCode === undefined ? {} : { chainCode: o.chainCode }),
      });
    } finally {
      o.secretKey.fill(0);
      o.chainCode?.fill(0);
    }
    const policy = policyEncoding(o.policy);
    const seconds = { approvalSeconds: o.approvalSeconds };
    const importApproval = await approvalFields(
      {
        operation: "import",
        walletId,
        requestId,
        digest: sha256(envelope),
        policyHash: policyHash(policy),
        threshold,
        parties,
      },
      { signers: o.admins, ...seconds },
    );
    const refreshApproval = await approvalFields(
      { operation: "refresh", walletId, requestId },
      { signers: o.signers ?? o.admins, ...seconds },
    );
    const body = {
      walletId,
      keyType,
      threshold,
      parties,
      policy: toHex(policy),
      dealerNode: target.nodeId,
      envelope: toHex(envelope),
      ...importApproval,
      ...(refreshApproval.approval && { refreshApproval: refreshApproval.approval }),
    };
    return this.request("import", body, { ...o, requestId }, (v) => {
      const w = parseImport(v);
      checkSameWallet(w, walletId);
      checkSameKeyType(w, keyType);
      checkAddress(w);
      if (w.publicKey !== publicKey)
        throw new TssError(
          "inconsistent_result",
          `The cluster reports public key ${w.publicKey}, not the imported key's ${publicKey}.`,
        );
      if (w.threshold !== threshold || w.parties !== parties)
        throw new TssError(
          "inconsistent_result",
          `The cluster imported a ${w.threshold}-of-${w.parties} wallet, not ${threshold}-of-${parties}.`,
        );
      return { ...w, ...this.vouched(v, w) };
    });
  }

  /**
   * Retires a wallet for good: `signers` approve it under the wallet's policy, every holder's
   * enclave checks that, wipes its share and refuses the wallet from then on, and every host
   * deletes the wallet's rows. Afterwards the wallet answers not_found. Irreversible.
   */
  /**
   * Moves party `party` of the wallet to node `toNode` (share repair): t current holders rebuild
   * its share for the target's attested enclave, sealed end to end, and all n (the target in,
   * the previous holder out) refresh at once, so the previous holder's copy no longer combines.
   * The approval names the target machine by its PCR4: `targetPcr4` (the operator's inventory
   * value) and, with `trust`, the PCR4 in the target's attestation document, which this client
   * fetches and verifies; given both, they must be equal. Without `targetPcr4` the document alone
   * decides, and it shows only that some attested enclave answered for `toNode`.
   */
  async repairShare(o: RepairShareOptions): Promise<RepairShareResult> {
    const walletId = checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    if (!Number.isInteger(o.party) || o.party < 1 || o.party > 16)
      throw new TssError("bad_request", "party must be a party index (1..16)");
    if (typeof o.toNode !== "string" || o.toNode.length === 0)
      throw new TssError("bad_request", "toNode must be a node id");
    const keyType = checkKeyType(o.keyType);
    const pcr4 = await this.machineOf(o.toNode, o.targetPcr4, "repair", o.timeoutMs);
    const seconds = { approvalSeconds: o.approvalSeconds };
    const approval = await approvalFields(
      { operation: "repair", walletId, requestId, digest: repairTargetDigest(o.party, pcr4) },
      { signers: o.signers, ...seconds },
    );
    const refresh = await approvalFields(
      { operation: "refresh", walletId, requestId },
      { signers: o.refreshSigners ?? o.signers, ...seconds },
    );
    const body = {
      walletId,
      keyType,
      party: o.party,
      toNode: o.toNode,
      ...approval,
      ...(refresh.approval && { refreshApproval: refresh.approval }),
    };
    return this.request("repair", body, { ...o, requestId }, (v) => {
      const r = parseRepair(v);
      checkSameWallet(r, walletId);
      checkSameKeyType(r, keyType);
      checkAddress(r);
      if (r.partyIndex !== o.party || r.toNode !== o.toNode)
        throw new TssError(
          "inconsistent_result",
          `The cluster moved party ${r.partyIndex} to ${r.toNode}, not party ${o.party} to ${o.toNode}.`,
        );
      this.verifiedWallets.delete(walletId);
      return { ...r, targetPcr4: toHex(pcr4), ...this.vouched(v, r) };
    });
  }

  /**
   * The machine (PCR4) an approval names for `node`. The node's own document only shows that
   * some attested enclave answered for it (any node, or the broker relaying one, may answer with
   * its own): `given`, the operator's inventory value, is what ties it to that machine, and
   * is required for every node that holds no share yet. `holder`: with `trust`, the machine
   * whose verified wallet statement vouches for `node` as a current holder, which is used
   * (and must equal `given` when both are there). With `trust` a given PCR4 is also checked
   * against the node's freshly fetched, verified document.
   */
  private async machineOf(
    node: string,
    given: string | undefined,
    what: "repair" | "reshare",
    timeoutMs?: number,
    holder?: string,
  ): Promise<Uint8Array> {
    let pinned: Uint8Array | undefined;
    if (given !== undefined) {
      if (typeof given !== "string" || !/^[0-9a-f]{96}$/.test(given))
        throw new TssError("bad_request", "a PCR4 must be 48 bytes of lowercase hex");
      pinned = fromHex(given);
    }
    if (holder !== undefined && this.trust !== undefined) {
      if (pinned !== undefined && toHex(pinned) !== holder)
        throw new TssError(
          "unverified_wallet",
          `the enclave vouching for current holder ${node} is attested on machine PCR4 ${holder}, not the ${given} given: refusing to approve a ${what}`,
          node,
        );
      return fromHex(holder);
    }
    if (pinned === undefined)
      throw new TssError(
        "bad_request",
        this.trust === undefined
          ? `a ${what}'s approval names node ${node}'s PCR4: pass it (targetPcr4, --target-pcr4) or ConnectOptions.trust`
          : `node ${node} holds no share of the wallet yet: its machine (PCR4) must come from your inventory (targetPcr4, --target-pcr4 ${what === "reshare" ? `${node}=HEX` : "HEX"}); an attestation document alone does not tie a node id to a machine`,
        node,
      );
    if (this.trust === undefined) return pinned;
    const target = await this.request(
      "importTarget",
      { nodeId: node },
      { timeoutMs },
      parseImportTarget,
    );
    const doc = trustedEnclaveDocument(fromHex(target.attestation), this.trust);
    const p = doc.pcrs.get(4);
    if (p === undefined || p.length !== 48 || p.every((b) => b === 0))
      throw new TssError(
        "unverified_wallet",
        `node ${node}'s attestation document names no node identity (PCR4)`,
      );
    if (pinned !== undefined && toHex(p) !== toHex(pinned))
      throw new TssError(
        "unverified_wallet",
        `the enclave answering for node ${node} is attested on machine PCR4 ${toHex(p)}, not the ${toHex(pinned)} given: refusing to approve a ${what} to it`,
        node,
      );
    return p;
  }

  /**
   * Reshares a wallet to a new committee (issue 11 item 4, docs/RESHARING.md): `nodes` is the
   * whole new committee (the current holders that stay, each keeping its party index, and the
   * nodes to add, at the next indices in this order; a holder left out leaves, and must hold
   * one of the highest indices), `threshold` the new t. Same key and address. The
   * `reshare` approval names t and every member's machine (PCR4): each from `targetPcr4` (the
   * operator's inventory) and, with ConnectOptions.trust, the member's verified attestation
   * document (both must agree when both are there).
   */
  async reshareWallet(o: ReshareWalletOptions): Promise<ReshareWalletResult> {
    const walletId = checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const keyType = checkKeyType(o.keyType);
    const nodes = o.nodes;
    if (
      !Array.isArray(nodes) ||
      nodes.length < 2 ||
      nodes.length > 16 ||
      new Set(nodes).size !== nodes.length ||
      !nodes.every((n) => typeof n === "string" && n.length > 0)
    )
      throw new TssError("bad_request", "nodes must list 2..16 distinct node ids");
    if (!Number.isInteger(o.threshold) || o.threshold < 2 || o.threshold > nodes.length)
      throw new TssError("bad_request", `threshold must be 2..${nodes.length}`);
    // The generation reshared, which the approval names (one approval, one transition), and with
    // trust the current holders' machines from their verified statements.
    const current = await this.wallet(walletId, { timeoutMs: o.timeoutMs });
    const verified = this.trust === undefined ? undefined : this.verifiedWallets.get(walletId);
    const members: ReshareMember[] = [];
    for (const nodeId of nodes)
      members.push({
        nodeId,
        pcr4: await this.machineOf(
          nodeId,
          o.targetPcr4?.[nodeId],
          "reshare",
          o.timeoutMs,
          verified?.holderPcr4[nodeId],
        ),
      });
    let digest: Uint8Array;
    try {
      digest = reshareCommitteeDigest(
        verified?.generation ?? current.generation,
        o.threshold,
        members,
      );
    } catch (e) {
      // Two members on one machine, as the documents or the PCR4s given say.
      throw new TssError("bad_request", (e as Error).message);
    }
    const approval = await approvalFields(
      { operation: "reshare", walletId, requestId, digest },
      { signers: o.signers, approvalSeconds: o.approvalSeconds },
    );
    const body = {
      walletId,
      keyType,
      threshold: o.threshold,
      nodes,
      ...(o.allowOldQuorumLeaving === true ? { allowOldQuorumLeaving: true } : {}),
      ...(o.allowOfflineLeaving === true ? { allowOfflineLeaving: true } : {}),
      ...approval,
    };
    return this.request("reshare", body, { ...o, requestId }, (v) => {
      const r = parseReshare(v);
      checkSameWallet(r, walletId);
      checkSameKeyType(r, keyType);
      checkAddress(r);
      if (
        r.threshold !== o.threshold ||
        r.parties !== nodes.length ||
        r.generation !== (verified?.generation ?? current.generation) + 1 ||
        [...r.nodes].sort().join() !== [...nodes].sort().join()
      )
        throw new TssError(
          "inconsistent_result",
          `The cluster reshared to ${r.threshold}-of-${r.parties} on ${r.nodes.join(", ")}, not what was asked.`,
        );
      this.verifiedWallets.delete(walletId);
      return {
        ...r,
        committeePcr4: Object.fromEntries(members.map((m) => [m.nodeId, toHex(m.pcr4)])),
        ...this.vouched(v, r),
      };
    });
  }

  async retireWallet(o: RetireWalletOptions): Promise<RetireWalletResult> {
    const walletId = checkWalletId(o.walletId);
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const keyType = checkKeyType(o.keyType);
    const approval = await approvalFields({ operation: "retire", walletId, requestId }, o);
    return this.request("retire", { walletId, keyType, ...approval }, { ...o, requestId }, (v) => {
      const r = parseRetire(v);
      checkSameWallet(r, walletId);
      checkSameKeyType(r, keyType);
      checkAddress(r);
      this.verifiedWallets.delete(walletId);
      return r;
    });
  }

  async wallet(walletId: string, o: QueryOptions = {}): Promise<WalletInfo> {
    const id = checkWalletId(walletId);
    return this.request("wallet", { walletId: id }, o, (v) => {
      const w = parseWalletInfo(v);
      checkSameWallet(w, id);
      checkAddress(w);
      return { ...w, ...this.vouched(v, w) };
    });
  }

  async wallets(o: QueryOptions = {}): Promise<WalletsResult> {
    return this.request("wallets", {}, o, (v) => {
      const r = parseWallets(v);
      for (const w of r.wallets) checkAddress(w);
      const raw = (v as { wallets: unknown[] }).wallets;
      return { wallets: r.wallets.map((w, i) => ({ ...w, ...this.vouched(raw[i], w) })) };
    });
  }

  /** The wallet as its n attested enclaves vouch for it (needs `trust`); cached per wallet id. */
  async verifiedWallet(walletId: string, o: QueryOptions = {}): Promise<VerifiedWallet> {
    if (this.trust === undefined)
      throw new TssError("bad_request", "verifying a wallet needs ConnectOptions.trust");
    const id = checkWalletId(walletId);
    const known = this.verifiedWallets.get(id);
    if (known) return known;
    await this.wallet(id, o);
    return this.verifiedWallets.get(id)!;
  }

  /** Verifies an answer's vouchers when trust is configured: nothing, or who vouched. */
  private vouched(
    raw: unknown,
    w: {
      walletId: string;
      publicKey: string;
      generation: number;
      threshold?: number;
      parties?: number;
    },
  ): { vouchedBy?: VerifiedWallet["vouchedBy"] } {
    if (this.trust === undefined) return {};
    const verified = verifyAnswer(raw, w, this.trust);
    this.verifiedWallets.set(verified.walletId, verified);
    return { vouchedBy: verified.vouchedBy };
  }

  async nodes(o: QueryOptions = {}): Promise<NodesResult> {
    return this.request("nodes", {}, o, parseNodes);
  }

  /** Rejects pending requests with `closed` and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.pending.values()])
      p.fail(new TssError("closed", "The client was closed before the answer arrived."));
    await this.conn.current?.close();
  }

  private route(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.coordinators?.onMessage(topic, payload)) return;
    if (!topic.startsWith(responsesPrefix(this.clientId))) return;
    const correlation = packet.properties?.correlationData;
    if (!correlation || correlation.length !== 16) return;
    // Unknown correlation: a late or duplicate answer to a request already settled.
    this.pending.get(Buffer.from(correlation).toString("hex"))?.deliver(payload);
  }

  private async request<T>(
    op: Op,
    body: Record<string, unknown>,
    o: RequestOptions,
    accept: (result: unknown) => T,
  ): Promise<T> {
    if (this.closed || !this.conn.current) throw new TssError("closed", "The client is closed.");
    const conn = this.conn.current;
    const requestId = o.requestId === undefined ? newRequestId() : checkRequestId(o.requestId);
    const timeoutMs = checkTimeout(o.timeoutMs ?? this.timeoutMs);
    const correlation = randomBytes(16);
    const key = correlation.toString("hex");
    const responseTopic = `${responsesPrefix(this.clientId)}${randomBytes(8).toString("hex")}`;
    const failure = (
      code: string,
      message: string,
      node: string | null = null,
      reason: string | null = null,
    ) => new TssError(code, message, node, requestId, reason);

    return new Promise<T>((resolve, reject) => {
      const settle = (e: TssError | null, value?: T) => {
        if (!this.pending.delete(key)) return;
        clearTimeout(timer);
        this.coordinators?.forget(key);
        if (e) reject(e);
        else resolve(value as T);
      };
      const timer = setTimeout(
        () =>
          settle(
            failure(
              "deadline_exceeded",
              `No final answer to ${op} request ${requestId} within ${timeoutMs / 1000} s; it may still complete, and repeating it with the same requestId returns its result without running it twice.`,
            ),
          ),
        timeoutMs,
      );
      this.pending.set(key, {
        fail: (e) => settle(failure(e.code, e.message, e.node)),
        deliver: (payload) => {
          try {
            const env = parseEnvelope(payload);
            if (env.kind === "progress") {
              if (env.coordinator)
                this.coordinators?.watch(key, env.coordinator, (node) =>
                  settle(
                    failure(
                      "coordinator_lost",
                      `Node ${node}, which coordinated ${op} request ${requestId}, went offline before answering; the request may or may not have completed: repeat it with the same requestId.`,
                      node,
                    ),
                  ),
                );
              if (env.progress) report(o.onProgress, env.progress);
            } else if (env.kind === "error")
              settle(failure(env.code, env.message, env.node, env.reason ?? null));
            else settle(null, accept(env.result));
          } catch (e) {
            if (e instanceof TssError) settle(failure(e.code, e.message, e.node));
            else if (e instanceof ShapeError)
              settle(
                failure(
                  "bad_response",
                  `The answer to ${op} request ${requestId} is malformed: ${e.message}.`,
                ),
              );
            else
              settle(
                failure(
                  "bad_response",
                  `The answer to ${op} request ${requestId} could not be read: ${(e as Error).message}.`,
                ),
              );
          }
        },
      });
      conn
        .publish(requestTopic(op), JSON.stringify({ requestId, ...body }), {
          responseTopic,
          correlationData: correlation,
          contentType: "application/json",
          payloadFormatIndicator: true,
          // A request still queued when its caller has given up is dropped rather than run late.
          messageExpiryInterval: Math.ceil(timeoutMs / 1000),
        })
        .then(
          (delivered) => {
            if (!delivered)
              settle(
                failure(
                  "not_enough_nodes",
                  `No signing node is subscribed to requests, so the broker dropped ${op} request ${requestId}.`,
                ),
              );
          },
          (e: Error) =>
            settle(
              failure(
                "connection_failed",
                `The broker did not accept ${op} request ${requestId}: ${e.message.replace(/[.\s]+$/, "")}.`,
              ),
            ),
        );
    });
  }
}

/** A throwing progress callback must not break the request it reports on. */
function report(onProgress: ((p: Progress) => void) | undefined, p: Progress): void {
  try {
    onProgress?.(p);
  } catch {
    // ignored on purpose
  }
}
