/** What tss prints for people: a result as aligned fields or a table, a failure as one sentence. */
import type {
  NodeInfo,
  RepairShareResult,
  ReshareWalletResult,
  RetireWalletResult,
  SignResult,
  TssError,
  WalletInfo,
} from "../client/index.ts";
import type { AuditChainReport, AuditEntry } from "../host/store/audit.ts";

function fields(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n");
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "))
    .join("\n");
}

export function showWallet(title: string, w: WalletInfo): string {
  return `${title} ${w.walletId} (${w.threshold}-of-${w.parties}, share generation ${w.generation})
${fields([
  ["key type", w.keyType],
  ["public key", w.publicKey],
  ["address", w.address],
  ["nodes", `${w.nodes.join(", ")} (by party index)`],
  ...vouchedLine(w),
])}`;
}

/** Present only when the SDK verified the wallet (ConnectOptions.trust). */
function vouchedLine(w: WalletInfo): [string, string][] {
  if (w.vouchedBy === undefined) return [];
  const images = [...new Set(w.vouchedBy.map((v) => `${v.imageHash.slice(0, 16)}…`))].join(", ");
  const development = w.vouchedBy.some((v) => v.development)
    ? "; DEVELOPMENT root: proves nothing about real enclaves"
    : "";
  return [
    [
      "vouched for",
      `by ${w.vouchedBy.length} attested enclaves (all ${w.parties} holders; image ${images}${development})`,
    ],
  ];
}

export function showWallets(ws: WalletInfo[]): string {
  if (ws.length === 0) return "No wallets.";
  return table(
    ["WALLET", "KEY TYPE", "T-OF-N", "GENERATION", "ADDRESS"],
    ws.map((w) => [
      w.walletId,
      w.keyType,
      `${w.threshold}-of-${w.parties}`,
      String(w.generation),
      w.address,
    ]),
  );
}

export function showPolicyChange(r: {
  walletId: string;
  generation: number;
  policyHash?: string;
  address: string;
}): string {
  return `Changed the approval policy of wallet ${r.walletId}: every holder re-sealed a new share with it (generation ${r.generation}).
${fields([
  ["policy hash", r.policyHash ?? "-"],
  ["address", r.address],
])}`;
}

export function showRefresh(r: {
  walletId: string;
  generation: number;
  publicKey: string;
  address: string;
}): string {
  return `Refreshed wallet ${r.walletId}: every share is new (generation ${r.generation}); the key and address are unchanged.
${fields([
  ["public key", r.publicKey],
  ["address", r.address],
])}`;
}

export function showRepair(r: RepairShareResult): string {
  return `Moved party ${r.partyIndex} of wallet ${r.walletId} to ${r.toNode}${r.fromNode ? ` (from ${r.fromNode})` : ""}; every holder refreshed to generation ${r.generation}.
${fields([
  ["key type", r.keyType],
  ["public key", r.publicKey],
  ["address", r.address],
  ["target PCR4", r.targetPcr4],
  ["helpers", r.helpers.join(", ")],
  ["nodes", r.nodes.map((n, k) => `${k + 1}: ${n}`).join(", ")],
])}`;
}

export function showReshare(r: ReshareWalletResult): string {
  return `Reshared wallet ${r.walletId} from ${r.fromThreshold}-of-${r.fromParties} to ${r.threshold}-of-${r.parties} at generation ${r.generation}; same key and address.
${fields([
  ["key type", r.keyType],
  ["public key", r.publicKey],
  ["address", r.address],
  ["added", r.added.length > 0 ? r.added.join(", ") : "(none)"],
  [
    "left",
    r.leaving.length > 0
      ? r.leaving
          .map(
            (l) =>
              `${l.partyIndex}: ${l.nodeId ?? "(unknown node)"} ${l.replaced ? "deleted its old share" : l.online ? "STILL HOLDS its old share (checks again later)" : "offline, STILL HOLDS its old share"}`,
          )
          .join(", ")
      : "(none)",
  ],
  ["nodes", r.nodes.map((n, k) => `${k + 1}: ${n}`).join(", ")],
  [
    "PCR4 approved",
    Object.entries(r.committeePcr4)
      .map(([n, p]) => `${n}=${p}`)
      .join(", "),
  ],
])}`;
}

export function showRetire(r: RetireWalletResult): string {
  const left =
    r.remaining.length === 0
      ? "no share of it is left on any node"
      : `the holders of parties ${r.remaining.join(", ")} were offline and keep their rows until the retirement is repeated (fewer than the threshold: they cannot sign)`;
  return `Retired wallet ${r.walletId}: ${r.retired.length} nodes wiped and deleted their shares; ${left}.
For good against backups, the KMS key policy must deny the encryption context wallet=${r.walletId} (docs/ARCHITECTURE.md, "Wallet retirement").
${fields([
  ["public key", r.publicKey],
  ["address", r.address],
  [
    "retired by",
    r.retired.map((x) => `${x.partyIndex}: ${x.nodeId}${x.earlier ? " (earlier)" : ""}`).join(", "),
  ],
  ["approved by", r.approverKeyIds.join(", ") || "(no policy: development wallet)"],
])}`;
}

export function showSignature(r: SignResult): string {
  const s = r.signature;
  return `Signature by wallet ${r.walletId}${r.path ? ` (key derived along ${r.path})` : ""}, verified here against the public key
${fields([
  ["digest", r.digest],
  ["key type", r.keyType],
  ["public key", r.publicKey],
  ["address", r.address],
  ["r", s.r],
  ["s", s.s],
  ["recovery id", String(s.recoveryId)],
  ["ethereum", `0x${s.ethereum} (r || s || v, v = ${27 + s.recoveryId})`],
  ["der", s.der],
  ["signers", r.signers.join(", ")],
  ["coordinator", r.coordinator],
])}`;
}

export function showNodes(ns: NodeInfo[]): string {
  if (ns.length === 0) return "No nodes are online.";
  return table(
    ["NODE", "STATUS", "SINCE", "PCR0"],
    ns.map((n) => [
      n.nodeId,
      n.status,
      new Date(n.since).toISOString(),
      n.pcr0 === null ? "-" : `${n.pcr0.slice(0, 16)}…`,
    ]),
  );
}

export function asSentence(message: string): string {
  const m = message.trim().replace(/[.\s]+$/, "");
  return m.charAt(0).toUpperCase() + m.slice(1);
}

/** One sentence for a failed operation, ending with its code and the node blamed. */
export function describeFailure(e: TssError, requestId: string, timeoutS: number): string {
  // The SDK's own deadline (no node named): the request may still finish, and its id fetches the result.
  if (e.code === "deadline_exceeded" && e.node === null) {
    return `No final answer within ${timeoutS} s (deadline_exceeded); the request may still complete, so run the same command with --request-id ${requestId} to get its result without running it twice.`;
  }
  return `${asSentence(e.message)} (${e.code}${e.node ? `, node ${e.node}` : ""}).`;
}

/** One audit detail as key=value pairs, in the order the event lists them. */
function auditDetail(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : String(v)}`)
    .join(" ");
}

export function showAuditEntries(entries: AuditEntry[]): string {
  if (entries.length === 0) return "No audit rows match.";
  return table(
    ["ID", "TIME", "NODE", "EVENT", "WALLET", "CEREMONY", "DETAIL"],
    entries.map((e) => [
      String(e.id),
      new Date(e.at).toISOString(),
      e.nodeId,
      e.event,
      e.walletId ?? "-",
      e.ceremonyId === null ? "-" : `${e.ceremonyId.slice(0, 12)}…`,
      auditDetail(e.detail),
    ]),
  );
}

/** The verdict on the chain, as one sentence (stdout when it holds, stderr when it does not). */
export function showAuditChain(c: AuditChainReport): string {
  if (!c.ok)
    return `The audit chain is broken at row ${c.broken.id}: ${c.broken.problem}; the ${c.rows} row(s) before it hold.`;
  if (c.head === null) return "The audit log is empty; there is no chain to check.";
  return `The audit chain holds: ${c.rows} row(s) from the genesis value to row ${c.head.id}, head hash ${c.head.hash}.`;
}
