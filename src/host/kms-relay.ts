/**
 * The host's KMS relay: the enclave has no network, so it dials this relay
 * (development: a Unix socket; production: a VSOCK port on the parent) and
 * the relay opens one TCP connection to the KMS endpoint per accepted
 * connection and copies bytes both ways. The enclave runs TLS to KMS over
 * it and verifies KMS's certificate itself, so everything passing here is
 * TLS ciphertext: the relay never parses it, never terminates TLS and has
 * no code path that could return key material to the host. The same
 * pattern as AWS's vsock-proxy.
 *
 * Bounded so a misbehaving enclave or endpoint cannot exhaust the host:
 * MAX connections at once (more are accepted and closed), an idle timeout
 * per connection, a total byte budget per connection, and a bound on bytes
 * waiting for the TCP side. Counters are kept per direction for operators.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { listenUnix } from "../shared/channel/unix-transport.ts";
import { listenVsock } from "../shared/channel/vsock-transport.ts";
import type { ChannelConnection, ChannelListener } from "../shared/channel/transport.ts";

/** Concurrent relayed connections; the enclave's KMS client needs one or two. */
export const DEFAULT_MAX_RELAY_CONNECTIONS = 16;
/** A connection with no bytes either way for this long is closed (both sides). */
export const DEFAULT_RELAY_IDLE_MS = 60_000;
/** Bytes one connection may carry in total (both directions): many KMS calls, never a bulk transfer. */
export const DEFAULT_MAX_RELAY_CONNECTION_BYTES = 16 * 1024 * 1024;
/** Bytes from the enclave held while the TCP connection is opening or not draining. */
export const MAX_RELAY_PENDING_BYTES = 1024 * 1024;
/** How long opening the TCP connection to KMS may take. */
export const RELAY_CONNECT_TIMEOUT_MS = 10_000;

export type RelayListenAddress = { kind: "unix"; path: string } | { kind: "vsock"; port: number };

/** Where the relay listens: `unix:PATH` (development) or `vsock:PORT` (production, any CID). */
export function parseRelayListenAddress(s: string): RelayListenAddress {
  if (s.startsWith("unix:") && s.length > 5) return { kind: "unix", path: s.slice(5) };
  const m = /^vsock:(\d{1,10})$/.exec(s);
  if (m && Number(m[1]) <= 0xffff_ffff) return { kind: "vsock", port: Number(m[1]) };
  throw new Error(`KMS relay address must be unix:PATH or vsock:PORT, got ${JSON.stringify(s)}`);
}

export interface RelayTarget {
  host: string;
  port: number;
}

/** `HOST:PORT`, or `[IPv6]:PORT`. */
export function parseRelayTarget(s: string): RelayTarget {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new Error(`KMS target must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** AWS KMS's regional endpoint, what production relays to unless configured otherwise. */
export const awsKmsTarget = (region: string): RelayTarget => ({
  host: `kms.${region}.amazonaws.com`,
  port: 443,
});

export type RelayDirection = "to-kms" | "to-enclave";

export interface KmsRelayOptions {
  listen: RelayListenAddress;
  target: RelayTarget;
  maxConnections?: number;
  idleTimeoutMs?: number;
  maxConnectionBytes?: number;
  /** Sees every chunk relayed (tests record the traffic to search it); must not keep borrowed chunks. */
  onBytes?: (direction: RelayDirection, chunk: Uint8Array) => void;
  /** Public facts only: counts, durations, why a connection ended. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export interface KmsRelayStats {
  accepted: number;
  open: number;
  bytesToKms: number;
  bytesToEnclave: number;
}

export interface KmsRelay {
  /** What the enclave dials: "unix:/…/kms.sock" or "vsock:any:8000". */
  readonly address: string;
  stats(): KmsRelayStats;
  close(): Promise<void>;
}

export function startKmsRelay(o: KmsRelayOptions): KmsRelay {
  const maxConnections = o.maxConnections ?? DEFAULT_MAX_RELAY_CONNECTIONS;
  const idleMs = o.idleTimeoutMs ?? DEFAULT_RELAY_IDLE_MS;
  const maxBytes = o.maxConnectionBytes ?? DEFAULT_MAX_RELAY_CONNECTION_BYTES;
  const log = o.log ?? (() => {});
  const stats: KmsRelayStats = { accepted: 0, open: 0, bytesToKms: 0, bytesToEnclave: 0 };
  const tcpSockets = new Set<Socket>();
  const listener: ChannelListener =
    o.listen.kind === "unix"
      ? listenUnix(o.listen.path, { maxConnections, removeStale: true })
      : listenVsock(o.listen.port, { maxConnections });

  listener.onConnection((enclave) => {
    stats.accepted++;
    stats.open++;
    relayOne(enclave);
  });

  function relayOne(enclave: ChannelConnection): void {
    const started = Date.now();
    let carried = 0;
    let ended = false;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let connected = false;
    const tcp = tcpConnect({ host: o.target.host, port: o.target.port });
    tcpSockets.add(tcp);
    tcp.setNoDelay(true);
    const connectTimer = setTimeout(() => end("connect_timeout"), RELAY_CONNECT_TIMEOUT_MS);
    let idleTimer = setTimeout(() => end("idle"), idleMs);
    const touch = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => end("idle"), idleMs);
    };
    const end = (reason: string) => {
      if (ended) return;
      ended = true;
      stats.open--;
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      pending = [];
      tcp.destroy();
      tcpSockets.delete(tcp);
      enclave.close();
      log("kms_relay_closed", { reason, bytes: carried, ms: Date.now() - started });
    };
    const count = (direction: RelayDirection, n: number): boolean => {
      carried += n;
      if (direction === "to-kms") stats.bytesToKms += n;
      else stats.bytesToEnclave += n;
      touch();
      if (carried <= maxBytes) return true;
      end("byte_budget");
      return false;
    };

    enclave.onData((chunk) => {
      if (ended || !count("to-kms", chunk.length)) return;
      o.onBytes?.("to-kms", chunk);
      if (!connected) {
        pendingBytes += chunk.length;
        if (pendingBytes > MAX_RELAY_PENDING_BYTES) return end("pending_bound");
        pending.push(new Uint8Array(chunk)); // copy: the chunk is borrowed
        return;
      }
      tcp.write(new Uint8Array(chunk));
      if (tcp.writableLength > MAX_RELAY_PENDING_BYTES) end("kms_not_reading");
    });
    enclave.onClose(() => end("enclave_closed"));

    tcp.on("connect", () => {
      clearTimeout(connectTimer);
      connected = true;
      for (const c of pending) tcp.write(c);
      pending = [];
      pendingBytes = 0;
    });
    tcp.on("data", (chunk: Buffer) => {
      if (ended || !count("to-enclave", chunk.length)) return;
      o.onBytes?.("to-enclave", chunk);
      try {
        enclave.write(new Uint8Array(chunk));
      } catch {
        end("enclave_closed");
      }
    });
    tcp.on("error", () => end("kms_error"));
    tcp.on("close", () => end("kms_closed"));
  }

  return {
    address: listener.address,
    stats: () => ({ ...stats }),
    close: async () => {
      for (const s of tcpSockets) s.destroy();
      tcpSockets.clear();
      await listener.close();
    },
  };
}
