/**
 * tss: the command line over the client SDK (src/client). Arguments are
 * checked before connecting, so a usage error never reaches the cluster.
 * Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
 * error, 130 interrupted.
 *
 * args.ts parses and checks the command line, help.ts holds the --help
 * texts, settings.ts finds the broker and credentials, render.ts formats
 * results and failures; this file runs the command.
 */
import {
  DEFAULT_TIMEOUT_MS,
  TssClient,
  TssError,
  checkPath,
  newRequestId,
  normalizeDigest,
  type NodeInfo,
  type Progress,
  type RefreshResult,
  type RepairShareResult,
  type ReshareWalletResult,
  type RetireWalletResult,
  type SignResult,
  type WalletInfo,
} from "../client/index.ts";
import {
  keyTypeArg,
  parseArgv,
  requestIdArg,
  timeoutMs,
  UsageError,
  walletIdArg,
  wholeNumber,
  type Command,
  type Invocation,
} from "./args.ts";
import { commandHelp, KEY_HELP, MAIN_HELP, WALLET_HELP } from "./help.ts";
import { keyFilesArg, walletPolicyArg } from "./approval-args.ts";
import { readImportedKeyFile, runKey } from "./key.ts";
import { runPolicy } from "./key-policy.ts";
import { KeyPolicyError, parsePcrHex } from "../shared/key-policy.ts";
import {
  asSentence,
  describeFailure,
  showNodes,
  showPolicyChange,
  showRefresh,
  showRepair,
  showReshare,
  showRetire,
  showSignature,
  showWallet,
  showWallets,
} from "./render.ts";
import { clientFileInUse, connectionSettings, type Env } from "./settings.ts";
import { walletTrustSettings } from "./trust.ts";
import { versionLine } from "../shared/version.ts";

type Run = (
  client: TssClient,
  requestId: string,
  onProgress: ((p: Progress) => void) | undefined,
) => Promise<unknown>;

/** Checks the command's own arguments and returns what to run; throws UsageError before anything connects. */
type RemoteCommand = Exclude<Command, "audit" | "key new" | "key show" | "policy">;

/** A --target-pcr4 value: a machine's PCR4 from the operator's inventory (96 hex characters). */
function pcr4Arg(value: string): string {
  try {
    return parsePcrHex(value, "--target-pcr4");
  } catch (e) {
    if (e instanceof KeyPolicyError) throw new UsageError(e.message);
    throw e;
  }
}

function prepare(inv: Invocation & { command: RemoteCommand }): {
  run: Run;
  show: (r: unknown) => string;
} {
  const v = inv.values;
  switch (inv.command) {
    case "wallet create": {
      const threshold = wholeNumber(v.get("threshold"), "threshold");
      const parties = wholeNumber(v.get("parties"), "parties");
      const policy = walletPolicyArg(inv);
      const admins = keyFilesArg(inv, "admin-key");
      if (admins !== undefined && policy === undefined)
        throw new UsageError("--admin-key approves a wallet's policy: give it with --approver.");
      const walletId = v.has("wallet-id")
        ? walletIdArg(v.get("wallet-id"), "--wallet-id ID")
        : undefined;
      const keyType = keyTypeArg(v.get("key-type"));
      return {
        run: (c, requestId, onProgress) =>
          c.createWallet({
            threshold,
            parties,
            policy,
            admins,
            walletId,
            keyType,
            requestId,
            onProgress,
          }),
        show: (r) => showWallet("Created wallet", r as WalletInfo),
      };
    }
    case "wallet import": {
      const keyType = keyTypeArg(v.get("key-type"));
      const threshold = wholeNumber(v.get("threshold"), "threshold");
      const parties = wholeNumber(v.get("parties"), "parties");
      const policy = walletPolicyArg(inv);
      if (policy === undefined)
        throw new UsageError("tss wallet import needs the new wallet's policy: --approver PUB...");
      const admins = keyFilesArg(inv, "admin-key");
      if (admins === undefined)
        throw new UsageError(
          "tss wallet import needs --admin-key FILE...: administrators approving the import.",
        );
      const signers = keyFilesArg(inv, "key");
      const file = v.get("secret-key-file");
      if (file === undefined)
        throw new UsageError(
          "tss wallet import needs --secret-key-file FILE (the key in hex, never on the command line).",
        );
      const { secretKey, chainCode } = readImportedKeyFile(file);
      const walletId = v.has("wallet-id")
        ? walletIdArg(v.get("wallet-id"), "--wallet-id ID")
        : undefined;
      const nodeId = v.get("node");
      return {
        run: (c, requestId, onProgress) =>
          c.importKey({
            secretKey,
            ...(chainCode === undefined ? {} : { chainCode }),
            threshold,
            parties,
            policy,
            admins,
            signers,
            walletId,
            nodeId,
            keyType,
            requestId,
            onProgress,
          }),
        show: (r) => showWallet("Imported wallet", r as WalletInfo),
      };
    }
    case "wallet show": {
      const id = walletIdArg(inv.args[0], "a wallet id");
      return {
        run: (c, requestId) => c.wallet(id, { requestId }),
        show: (r) => showWallet("Wallet", r as WalletInfo),
      };
    }
    case "wallet list":
      return {
        run: (c, requestId) => c.wallets({ requestId }),
        show: (r) => showWallets((r as { wallets: WalletInfo[] }).wallets),
      };
    case "wallet refresh": {
      const walletId = walletIdArg(inv.args[0], "a wallet id");
      const signers = keyFilesArg(inv, "key");
      return {
        run: (c, requestId, onProgress) => c.refresh({ walletId, signers, requestId, onProgress }),
        show: (r) =>
          showRefresh(
            r as { walletId: string; generation: number; publicKey: string; address: string },
          ),
      };
    }
    case "wallet policy": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const policy = walletPolicyArg(inv);
      if (policy === undefined)
        throw new UsageError(
          "tss wallet policy needs the new policy: --approver PUB... [--quorum M].",
        );
      const signers = keyFilesArg(inv, "key");
      if (signers === undefined)
        throw new UsageError(
          "tss wallet policy needs --key FILE...: current approvers approving the change.",
        );
      return {
        run: (c, requestId, onProgress) =>
          c.changePolicy({ walletId, policy, signers, requestId, onProgress }),
        show: (r) => showPolicyChange(r as RefreshResult),
      };
    }
    case "wallet repair": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const party = wholeNumber(v.get("party"), "party");
      const toNode = v.get("to");
      if (party === undefined)
        throw new UsageError("tss wallet repair needs --party K: the party index to move.");
      if (toNode === undefined)
        throw new UsageError("tss wallet repair needs --to NODE: the node to move it to.");
      // The approval names NODE's machine: from the operator's inventory, never from whoever
      // answers for NODE (the fetched document must agree with it: client.ts repairShare).
      const given = inv.lists.get("target-pcr4") ?? [];
      if (given.length > 1) throw new UsageError("Option --target-pcr4 is given twice.");
      const pcr4 = given[0];
      if (pcr4 === undefined)
        throw new UsageError(
          "tss wallet repair needs --target-pcr4 HEX: NODE's machine identity (PCR4) from your inventory.",
        );
      const targetPcr4 = pcr4Arg(pcr4);
      const signers = keyFilesArg(inv, "key");
      if (signers === undefined)
        throw new UsageError(
          "tss wallet repair needs --key FILE...: approvers approving the repair and its refresh.",
        );
      return {
        run: (c, requestId, onProgress) =>
          c.repairShare({ walletId, party, toNode, targetPcr4, signers, requestId, onProgress }),
        show: (r) => showRepair(r as RepairShareResult),
      };
    }
    case "wallet reshare": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const threshold = wholeNumber(v.get("threshold"), "threshold");
      if (threshold === undefined)
        throw new UsageError(
          "tss wallet reshare needs --threshold T: the new committee's threshold.",
        );
      const list = v.get("nodes");
      if (list === undefined)
        throw new UsageError(
          "tss wallet reshare needs --nodes N1,N2,...: the whole new committee (every current holder and the nodes to add).",
        );
      const nodes = list.split(",").filter((n) => n.length > 0);
      // Each member's machine from the operator's inventory (client.ts reshareWallet checks each
      // against the member's verified attestation document).
      const targetPcr4: Record<string, string> = {};
      for (const entry of inv.lists.get("target-pcr4") ?? []) {
        const at = entry.indexOf("=");
        const node = entry.slice(0, at);
        if (at < 1 || !nodes.includes(node))
          throw new UsageError(
            `--target-pcr4 takes NODE=HEX for a node of --nodes, not ${JSON.stringify(entry.slice(0, 80))}.`,
          );
        if (targetPcr4[node] !== undefined)
          throw new UsageError(`--target-pcr4 names node ${node} twice.`);
        targetPcr4[node] = pcr4Arg(entry.slice(at + 1));
      }
      const signers = keyFilesArg(inv, "key");
      if (signers === undefined)
        throw new UsageError(
          "tss wallet reshare needs --key FILE...: approvers approving the reshare.",
        );
      return {
        run: (c, requestId, onProgress) =>
          c.reshareWallet({
            walletId,
            threshold,
            nodes,
            targetPcr4,
            ...(inv.allowLeaversQuorum ? { allowOldQuorumLeaving: true } : {}),
            ...(inv.allowOfflineLeavers ? { allowOfflineLeaving: true } : {}),
            signers,
            requestId,
            onProgress,
          }),
        show: (r) => showReshare(r as ReshareWalletResult),
      };
    }
    case "wallet retire": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const signers = keyFilesArg(inv, "key");
      if (signers === undefined)
        throw new UsageError(
          "tss wallet retire needs --key FILE...: approvers approving the retirement.",
        );
      return {
        run: (c, requestId, onProgress) =>
          c.retireWallet({ walletId, signers, requestId, onProgress }),
        show: (r) => showRetire(r as RetireWalletResult),
      };
    }
    case "sign": {
      const walletId = walletIdArg(v.get("wallet"), "--wallet ID");
      const hex = v.get("digest");
      if (hex === undefined)
        throw new UsageError("tss sign needs --digest HEX, the 32-byte hash to sign in hex.");
      let digest: string;
      let path: string | undefined;
      try {
        digest = normalizeDigest(hex);
      } catch {
        throw new UsageError("--digest must be 64 hex characters (32 bytes; 0x optional).");
      }
      try {
        path = v.has("path") ? checkPath(v.get("path")) : undefined;
      } catch {
        throw new UsageError(
          "--path must look like m/0/7: at most 32 non-hardened indices below 2^31.",
        );
      }
      const signers = keyFilesArg(inv, "key");
      return {
        run: (c, requestId, onProgress) =>
          c.sign({ walletId, digest, path, signers, requestId, onProgress }),
        show: (r) => showSignature(r as SignResult),
      };
    }
    case "nodes":
      return {
        run: (c, requestId) => c.nodes({ requestId }),
        show: (r) => showNodes((r as { nodes: NodeInfo[] }).nodes),
      };
  }
}

async function main(argv: string[], env: Env): Promise<number> {
  // Until the command line is parsed, a usage error is reported as JSON if --json appears at all.
  let json = argv.includes("--json");
  const fail = (
    status: number,
    code: string,
    sentence: string,
    node: string | null = null,
    requestId: string | null = null,
  ) => {
    process.stderr.write(`tss: ${sentence}\n`);
    if (json)
      process.stdout.write(
        `${JSON.stringify({ error: { code, message: sentence, node, requestId } }, null, 2)}\n`,
      );
    return status;
  };
  let client: TssClient | null = null;
  let requestId = "";
  let timeout = DEFAULT_TIMEOUT_MS;
  // `tss --version` (alone, before any command): the build's version and commit.
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    process.stdout.write(`${versionLine("tss")}\n`);
    return 0;
  }
  try {
    const inv = parseArgv(argv);
    json = inv.json;
    if (inv.help || inv.command === null || inv.command === "wallet" || inv.command === "key") {
      process.stdout.write(
        inv.command === null
          ? MAIN_HELP
          : inv.command === "wallet"
            ? WALLET_HELP
            : inv.command === "key"
              ? KEY_HELP
              : commandHelp(inv.command),
      );
      return 0;
    }
    // Local: reads this machine's database, never connects. Loaded only here, so the other
    // commands do not load the database driver.
    if (inv.command === "audit")
      return (await import("./audit.ts")).runAudit(inv, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    // Key files are local too, and small: no lazy load needed.
    if (inv.command === "key new" || inv.command === "key show")
      return runKey(inv as Invocation & { command: typeof inv.command }, {
        out: (t) => process.stdout.write(t),
      });
    // Local as well: prints a KMS key policy, reads and contacts nothing.
    if (inv.command === "policy")
      return runPolicy(inv, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    const { run, show } = prepare(inv as Invocation & { command: RemoteCommand });
    timeout = timeoutMs(inv.values.get("timeout"));
    requestId = requestIdArg(inv.values.get("request-id")) ?? newRequestId();
    const settings = connectionSettings(inv.values, env);
    const trust = walletTrustSettings(
      inv.values,
      inv.lists,
      inv.allowDevelopment === true,
      env,
      clientFileInUse(inv.values, env),
    );
    // Showing a wallet means vouching for its key: never without a verification.
    if (trust === null && inv.command === "wallet show")
      throw new UsageError(
        "Showing a wallet verifies it against attested enclaves: give --aws-root FILE and --image PCR0 (a local cluster: --allow-development).",
      );
    if (trust === null && inv.command === "wallet reshare")
      throw new UsageError(
        "A reshare's approval names every member's machine from its attestation document, which must be verified first: give --aws-root FILE and --image PCR0 (a local cluster: --allow-development).",
      );
    if (trust === null && inv.command === "wallet repair")
      throw new UsageError(
        "A repair's approval names the target machine from its attestation document, which must be verified first: give --aws-root FILE and --image PCR0 (a local cluster: --allow-development).",
      );
    if (trust === null && inv.command === "wallet import")
      throw new UsageError(
        "Importing a key seals it to an attested enclave, which must be verified first: give --aws-root FILE and --image PCR0 (a local cluster: --allow-development).",
      );
    client = await TssClient.connect({
      ...settings,
      timeoutMs: timeout,
      ...(trust === null ? {} : { trust }),
    });
    const started = Date.now();
    const onProgress = json
      ? undefined
      : (p: Progress) =>
          process.stderr.write(
            `${p.stage} phase ${p.phase} of ${p.of} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
          );
    process.once("SIGINT", () => {
      process.stderr.write(
        `\ntss: Interrupted; the request may still complete, so run the same command with --request-id ${requestId} to get its result.\n`,
      );
      process.exit(130);
    });
    const result = await run(client, requestId, onProgress);
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${show(result)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(2, "usage", e.message);
    // Refused by the SDK before anything was sent (no request id yet): a mistake in the arguments, such as the URL.
    if (e instanceof TssError && e.code === "bad_request" && e.requestId === null)
      return fail(2, "usage", asSentence(e.message) + ".");
    if (e instanceof TssError)
      return fail(1, e.code, describeFailure(e, requestId, timeout / 1000), e.node, e.requestId);
    return fail(
      1,
      "internal",
      `Unexpected failure: ${asSentence((e as Error).message ?? String(e))}.`,
    );
  } finally {
    await client?.close();
  }
}

process.exitCode = await main(process.argv.slice(2), process.env);
