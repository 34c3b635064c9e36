/**
 * A client user speaking raw MQTT 5 to the cluster (no SDK): for tests that
 * need to send exact bytes (the same approvals from two users, a flood) and
 * see every answer on the wire. Also the approvals of a sign request, built
 * once so that several senders can relay them byte for byte.
 */
import { randomBytes } from "node:crypto";
import mqtt from "mqtt";
import type { ClientCredentials } from "../../src/cluster/local-cluster.ts";
import { approve, validity, type KeySigner } from "../../src/client/signers.ts";
import { toHex } from "../../src/shared/hex.ts";
import { encodeApproval } from "../../src/shared/wire/approval.ts";

export interface RawFinal {
  ok: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string; node: string | null; reason?: string };
  /** The coordinator its progress messages named, if any. */
  coordinator?: string;
  /** Every final answer that came for the request (more than one would be a bug). */
  finals: number;
}

export interface RawClient {
  /** Publishes `body` to tss/v1/requests/<op> and resolves with its (first) final answer. */
  request(op: string, body: Record<string, unknown>): Promise<RawFinal>;
  close(): Promise<void>;
}

export async function rawClient(user: ClientCredentials): Promise<RawClient> {
  const conn = await mqtt.connectAsync(user.url, {
    protocolVersion: 5,
    // Its own client user (one connection per user); its responses topic is its username's.
    clientId: user.username,
    username: user.username,
    password: user.password,
  });
  const waiting = new Map<string, { resolve: (f: RawFinal) => void; final?: RawFinal }>();
  const coordinators = new Map<string, string>();
  conn.on("message", (_t, payload, packet) => {
    const j = JSON.parse(payload.toString()) as RawFinal & { progress?: { coordinator?: string } };
    const corr = Buffer.from(packet.properties!.correlationData!).toString("hex");
    if (j.progress?.coordinator) coordinators.set(corr, j.progress.coordinator);
    if (j.ok === undefined) return; // progress
    const w = waiting.get(corr);
    if (!w) return;
    if (w.final) {
      w.final.finals += 1;
      return;
    }
    w.final = { ...j, coordinator: coordinators.get(corr), finals: 1 };
    w.resolve(w.final);
  });
  await conn.subscribeAsync(`tss/v1/responses/${user.username}/#`, { qos: 1 });
  return {
    async request(op, body) {
      const corr = randomBytes(16);
      const answer = new Promise<RawFinal>((resolve) =>
        waiting.set(corr.toString("hex"), { resolve }),
      );
      await conn.publishAsync(`tss/v1/requests/${op}`, JSON.stringify(body), {
        qos: 1,
        properties: {
          responseTopic: `tss/v1/responses/${user.username}/${op}`,
          correlationData: corr,
        },
      });
      return answer;
    },
    close: () => conn.endAsync(),
  };
}

/** `signers`' approvals of signing `digest` with the wallet key ("m") under `requestId`, valid `seconds`, as CEREMONY_START carries them. */
export async function signApproval(
  signers: KeySigner[],
  walletId: string,
  requestId: string,
  digest: Uint8Array,
  seconds = 300,
): Promise<{ requestId: string; approvalRequest: Uint8Array; approvals: Uint8Array[] }> {
  const a = await approve(
    { operation: "sign", walletId, requestId, digest, path: "m", ...validity(seconds) },
    signers,
  );
  return { requestId, approvalRequest: a.request, approvals: a.approvals.map(encodeApproval) };
}

/** A sign request body carrying exactly `approval` (hex), as the SDK would send it. */
export function signBody(
  walletId: string,
  digest: Uint8Array,
  approval: { requestId: string; approvalRequest: Uint8Array; approvals: Uint8Array[] },
): Record<string, unknown> {
  return {
    requestId: approval.requestId,
    walletId,
    digest: toHex(digest),
    approval: {
      request: toHex(approval.approvalRequest),
      approvals: approval.approvals.map(toHex),
    },
  };
}
