/**
 * The host's typed handle on its enclave, over the framed channel. Dials a
 * Unix socket in development or the enclave's VSOCK CID:port in production.
 */
import { FrameType, type RequestType } from "../shared/wire/frame.ts";
import { RpcClient } from "../shared/channel/rpc-client.ts";
import { RpcRemoteError } from "../shared/channel/rpc-errors.ts";
import { dialUnix } from "../shared/channel/unix-transport.ts";
import { dialVsock } from "../shared/channel/vsock-transport.ts";
import { fromBody, toBody } from "../shared/wire/enclave-codec.ts";
import type * as Api from "../shared/wire/enclave-ops.ts";
import { CodedError } from "../shared/wire/errors.ts";

/** An error the enclave reported: its code, sentence (never secret) and the party it blamed, if any. */
export class EnclaveRequestError extends CodedError {
  override name = "EnclaveRequestError";
}

export type EnclaveAddress =
  | { kind: "unix"; path: string }
  | { kind: "vsock"; cid: number; port: number };

export function parseEnclaveAddress(s: string): EnclaveAddress {
  if (s.startsWith("unix:") && s.length > 5) return { kind: "unix", path: s.slice(5) };
  const m = /^vsock:(\d+):(\d+)$/.exec(s);
  if (m) return { kind: "vsock", cid: Number(m[1]), port: Number(m[2]) };
  throw new Error(`enclave address must be unix:PATH or vsock:CID:PORT, got ${JSON.stringify(s)}`);
}

export class EnclaveClient {
  private constructor(private readonly rpc: RpcClient) {}

  static async connect(
    addr: EnclaveAddress,
    opts: { timeoutMs?: number } = {},
  ): Promise<EnclaveClient> {
    const conn =
      addr.kind === "unix" ? await dialUnix(addr.path) : await dialVsock(addr.cid, addr.port);
    return new EnclaveClient(
      new RpcClient(conn, { timeoutMs: opts.timeoutMs ?? 180_000, maxInFlight: 256 }),
    );
  }

  private async call<Rep>(type: RequestType, req: object): Promise<Rep> {
    try {
      const reply = await this.rpc.request(type, toBody(req));
      return fromBody<Rep>(reply.body);
    } catch (e) {
      if (e instanceof RpcRemoteError) throw new EnclaveRequestError(e.code, e.message, e.blame);
      throw e;
    }
  }

  health(): Promise<Api.HealthReply> {
    return this.call(FrameType.HEALTH, {});
  }
  attest(req: Api.AttestRequest = {}): Promise<Api.AttestReply> {
    return this.call(FrameType.ATTEST, req);
  }
  loadShare(req: Api.LoadShareRequest): Promise<Api.LoadShareReply> {
    return this.call(FrameType.LOAD_SHARE, req);
  }
  startCeremony(req: Api.CeremonyStartRequest): Promise<Api.CeremonyReply> {
    return this.call(FrameType.CEREMONY_START, req);
  }
  stepCeremony(req: Api.CeremonyStepRequest): Promise<Api.CeremonyReply> {
    return this.call(FrameType.CEREMONY_STEP, req);
  }
  abortCeremony(req: Api.CeremonyAbortRequest): Promise<{ dropped: boolean }> {
    return this.call(FrameType.CEREMONY_ABORT, req);
  }
  sealShare(req: Api.SealShareRequest): Promise<Api.SealShareReply> {
    return this.call(FrameType.SEAL_SHARE, req);
  }
  activateShare(req: Api.ActivateShareRequest): Promise<Api.LoadShareReply> {
    return this.call(FrameType.ACTIVATE_SHARE, req);
  }
  close(): void {
    this.rpc.close();
  }
}
