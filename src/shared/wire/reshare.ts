/**
 * Resharing to a new committee (issue 11 item 4, docs/RESHARING.md),
 * version 1: the digest a `reshare` approval names (approval.ts operation 8).
 *
 * Committee digest (RESHARE_COMMITTEE_DIGEST_BYTES): SHA-256 of
 *
 *   lp("tss-reshare-v1")   domain label
 *   u32 from_generation    big-endian: the wallet's generation being reshared (the
 *                          dealers' shares'; the new shares get from_generation + 1)
 *   u8  t_new              the new threshold, 2..n_new
 *   u8  n_new              the new committee's size, 2..MAX_PARTIES
 *   n_new x {              one per seat, in increasing order of node id bytes
 *     lp(node id)          ASCII, patterns.ts NODE_ID_PATTERN
 *     lp(PCR4)             RESHARE_PCR_BYTES (48): the machine as its attestation
 *   }                      documents carry it (on Nitro the parent instance id's hash)
 *
 * lp(x) = u32 big-endian length, then x. So the approvers approve "this
 * wallet, from generation g, to t_new of exactly these n_new machines": one
 * approval covers exactly one transition (once it ran, the wallet is at
 * g + 1 and the same approval's digest no longer matches). Every participating
 * enclave recomputes it from the attestation documents it verified (its own
 * PCR4 for its own seat), the node ids the start names and the generation it
 * deals from (a dealer: its loaded share's; a new member: the old package's,
 * which every dealer's statement must name at phase 2): a host that puts
 * another machine in a seat, adds or drops a member, or changes t_new gets
 * a different digest and is refused. The seats' party indices are not in it:
 * which index a member gets decides nothing the approvers could judge, and a
 * digest over the sorted set lets a client compute it from the node list
 * alone. Node ids are distinct, and so are the PCR4s (the enclaves refuse two
 * seats on one machine).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { toHex } from "../hex.ts";
import { isNodeId } from "./patterns.ts";
import { MAX_PARTIES } from "./protocol-message.ts";

const utf8 = new TextEncoder();

export const RESHARE_LABEL = utf8.encode("tss-reshare-v1");
/** A PCR value (SHA-384) as Nitro attestation documents carry it. */
export const RESHARE_PCR_BYTES = 48;
export const RESHARE_COMMITTEE_DIGEST_BYTES = 32;

export class ReshareFormatError extends Error {
  override name = "ReshareFormatError";
}

/** One member of the new committee, as the approvers name it. */
export interface ReshareMember {
  nodeId: string;
  pcr4: Uint8Array;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** The `reshare` approval's digest: generation `fromGeneration` to t_new of exactly `members`. */
export function reshareCommitteeDigest(
  fromGeneration: number,
  threshold: number,
  members: readonly ReshareMember[],
): Uint8Array {
  if (!Number.isInteger(fromGeneration) || fromGeneration < 0 || fromGeneration > 0xffff_ffff)
    throw new ReshareFormatError("the generation reshared must be a u32");
  const parties = members.length;
  if (!Number.isInteger(parties) || parties < 2 || parties > MAX_PARTIES)
    throw new ReshareFormatError(`a committee has 2..${MAX_PARTIES} members`);
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > parties)
    throw new ReshareFormatError(`threshold must be 2..${parties}`);
  const ids = new Set<string>();
  const machines = new Set<string>();
  const entries = members.map((m) => {
    if (!isNodeId(m.nodeId)) throw new ReshareFormatError("a member's node id is malformed");
    if (!(m.pcr4 instanceof Uint8Array) || m.pcr4.length !== RESHARE_PCR_BYTES)
      throw new ReshareFormatError(`a member's PCR4 must be ${RESHARE_PCR_BYTES} bytes`);
    const machine = toHex(m.pcr4);
    if (ids.has(m.nodeId) || machines.has(machine))
      throw new ReshareFormatError("two members share a node id or a machine (PCR4)");
    ids.add(m.nodeId);
    machines.add(machine);
    return { nodeId: m.nodeId, id: utf8.encode(m.nodeId), pcr4: m.pcr4 };
  });
  // Node ids are ASCII: code-unit order is byte order.
  entries.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  return sha256(
    concatBytes(
      u32(RESHARE_LABEL.length),
      RESHARE_LABEL,
      u32(fromGeneration),
      Uint8Array.of(threshold, parties),
      ...entries.flatMap((e) => [u32(e.id.length), e.id, u32(e.pcr4.length), e.pcr4]),
    ),
  );
}

export const RESHARE_STATEMENT_LABEL = utf8.encode("tss-reshare-statement-v1");

/**
 * What a reshare dealer's share-state statement (share-state.ts, ceremony 6) names in its
 * session id field: SHA-256 of
 *
 *   lp("tss-reshare-statement-v1")
 *   session id (32)
 *   u8 t_new, u8 n_new, u8 |Q|
 *   |Q| x u8               the dealers' old indices, increasing
 *   |Q| x u8               their seats, same order
 *
 * so a statement also says which old index sits at which seat and who deals, as the dealer's
 * own start has it. A member whose start seats the dealers otherwise (a coordinator that told
 * members different stories, to get an honest dealer's commitment refused under another
 * index's Lagrange weight) refuses the statement, blaming no one, before its core reads a byte.
 */
export function reshareStatementTag(o: {
  sessionId: Uint8Array;
  dealers: readonly number[];
  seats: readonly number[];
  threshold: number;
  parties: number;
}): Uint8Array {
  const byte = (x: number) => {
    if (!Number.isInteger(x) || x < 0 || x > 255)
      throw new ReshareFormatError("a reshare's indices and sizes are bytes");
    return x;
  };
  if (o.dealers.length !== o.seats.length)
    throw new ReshareFormatError("every dealer has one seat");
  return sha256(
    concatBytes(
      u32(RESHARE_STATEMENT_LABEL.length),
      RESHARE_STATEMENT_LABEL,
      o.sessionId,
      Uint8Array.of(byte(o.threshold), byte(o.parties), byte(o.dealers.length)),
      Uint8Array.from(o.dealers.map(byte)),
      Uint8Array.from(o.seats.map(byte)),
    ),
  );
}
