/**
 * The host's KMS relay: TLS from a client on the relay's Unix socket to a
 * TLS server behind it ends at the two ends, so the relay (and anyone
 * recording it) carries only ciphertext; it counts every byte, and its
 * bounds (connections, idle time, byte budget) close what exceeds them
 * while the relay keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect, createServer as netServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, createServer as tlsServer, type Server } from "node:tls";
import { createDevTls, type DevTls } from "../../src/harness/dev-tls.ts";
import {
  awsKmsTarget,
  parseRelayListenAddress,
  parseRelayTarget,
  startKmsRelay,
  type KmsRelay,
  type RelayDirection,
} from "../../src/host/kms-relay.ts";

let dir: string;
let tls: DevTls;
let server: Server;
let serverPort: number;
const received: string[] = [];

const SECRET = "secret-data-key-0123456789abcdef-never-in-the-clear";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kms-relay-test-"));
  tls = createDevTls(join(dir, "tls"));
  server = tlsServer(
    { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
    (sock) => {
      let text = "";
      sock.on("data", (d: Buffer) => {
        text += d.toString();
        if (text.endsWith("\n")) {
          received.push(text);
          sock.end(`echo:${text}`);
        }
      });
      sock.on("error", () => {});
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  serverPort = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function relayAt(
  name: string,
  extra: Partial<Parameters<typeof startKmsRelay>[0]> = {},
): { relay: KmsRelay; path: string } {
  const path = join(dir, `${name}.sock`);
  const relay = startKmsRelay({
    listen: { kind: "unix", path },
    target: { host: "127.0.0.1", port: serverPort },
    ...extra,
  });
  return { relay, path };
}

/** TLS over the relay's Unix socket, verifying the server as an enclave does (dev CA, servername). */
function tlsRoundTrip(path: string, line: string, ca = tls.caPem): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ path });
    const t = tlsConnect({ socket: raw, servername: "localhost", ca, rejectUnauthorized: true });
    let reply = "";
    t.on("secureConnect", () => t.write(line));
    t.on("data", (d: Buffer) => (reply += d.toString()));
    t.on("end", () => resolve(reply));
    t.on("error", reject);
  });
}

/** Resolves once the peer closes the plain connection (with what it had received). */
function closedBy(sock: Socket, timeoutMs = 5_000): Promise<"closed" | "timeout"> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("timeout"), timeoutMs);
    sock.on("error", () => {});
    sock.once("close", () => {
      clearTimeout(t);
      resolve("closed");
    });
  });
}

describe("KMS relay", () => {
  it("carries a verified TLS session end to end and sees only ciphertext, counting every byte", async () => {
    const seen: { direction: RelayDirection; bytes: Buffer }[] = [];
    const { relay, path } = relayAt("record", {
      onBytes: (direction, chunk) => seen.push({ direction, bytes: Buffer.from(chunk) }),
    });
    try {
      const reply = await tlsRoundTrip(path, `${SECRET}\n`);
      expect(reply).toBe(`echo:${SECRET}\n`);
      expect(received).toContain(`${SECRET}\n`);
      const toKms = Buffer.concat(seen.filter((s) => s.direction === "to-kms").map((s) => s.bytes));
      const toEnclave = Buffer.concat(
        seen.filter((s) => s.direction === "to-enclave").map((s) => s.bytes),
      );
      expect(toKms.length).toBeGreaterThan(SECRET.length);
      expect(toEnclave.length).toBeGreaterThan(SECRET.length);
      // TLS records: 0x16 handshake first, in both directions.
      expect(toKms[0]).toBe(0x16);
      expect(toEnclave[0]).toBe(0x16);
      for (const b of [toKms, toEnclave]) {
        expect(b.indexOf(SECRET)).toBe(-1);
        expect(b.indexOf(Buffer.from(SECRET).toString("hex"))).toBe(-1);
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(relay.stats()).toMatchObject({
        accepted: 1,
        open: 0,
        bytesToKms: toKms.length,
        bytesToEnclave: toEnclave.length,
      });
    } finally {
      await relay.close();
    }
  });

  it("does not make the server trusted: a client without the CA refuses the certificate", async () => {
    const { relay, path } = relayAt("untrusted");
    try {
      const other = createDevTls(join(dir, "other-ca"));
      await expect(tlsRoundTrip(path, "x\n", other.caPem)).rejects.toThrow();
    } finally {
      await relay.close();
    }
  });

  it("accepts at most maxConnections at once and closes the rest", async () => {
    const { relay, path } = relayAt("bounded", { maxConnections: 2 });
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = netConnect({ path });
        socks.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      await new Promise((r) => setTimeout(r, 50));
      const third = netConnect({ path });
      socks.push(third);
      expect(await closedBy(third)).toBe("closed");
      expect(relay.stats().open).toBe(2);
      // Freeing one makes room again; a full TLS session then works.
      socks[0]!.destroy();
      await new Promise((r) => setTimeout(r, 100));
      expect(await tlsRoundTrip(path, "again\n")).toBe("echo:again\n");
    } finally {
      for (const s of socks) s.destroy();
      await relay.close();
    }
  });

  it("closes an idle connection and one that exceeds its byte budget", async () => {
    const reasons: string[] = [];
    const log = (event: string, f: Record<string, unknown>) => {
      if (event === "kms_relay_closed") reasons.push(String(f.reason));
    };
    const idle = relayAt("idle", { idleTimeoutMs: 200, log });
    const budget = relayAt("budget", { maxConnectionBytes: 1000, log });
    try {
      const a = netConnect({ path: idle.path });
      expect(await closedBy(a, 3_000)).toBe("closed");
      const b = netConnect({ path: budget.path });
      await new Promise((r) => b.once("connect", r));
      b.write(Buffer.alloc(4000, 7));
      expect(await closedBy(b, 3_000)).toBe("closed");
      expect(reasons).toContain("idle");
      expect(reasons).toContain("byte_budget");
      expect(budget.relay.stats().bytesToKms).toBeLessThanOrEqual(4000);
    } finally {
      await idle.relay.close();
      await budget.relay.close();
    }
  });

  it("closes the enclave's connection when KMS is unreachable, and keeps listening", async () => {
    const dead = netServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise((r) => dead.close(r));
    const { relay, path } = relayAt("unreachable", {
      target: { host: "127.0.0.1", port: deadPort },
    });
    try {
      for (let i = 0; i < 3; i++) {
        const s = netConnect({ path });
        s.write("hello");
        expect(await closedBy(s)).toBe("closed");
      }
      expect(relay.stats()).toMatchObject({ accepted: 3, open: 0 });
    } finally {
      await relay.close();
    }
  });

  it("parses its addresses strictly", () => {
    expect(parseRelayListenAddress("unix:/run/kms.sock")).toEqual({
      kind: "unix",
      path: "/run/kms.sock",
    });
    expect(parseRelayListenAddress("vsock:8000")).toEqual({ kind: "vsock", port: 8000 });
    for (const bad of ["unix:", "vsock:3:8000", "tcp:1.2.3.4:443", "vsock:99999999999"])
      expect(() => parseRelayListenAddress(bad)).toThrow(/unix:PATH or vsock:PORT/);
    expect(parseRelayTarget("kms.eu-west-1.amazonaws.com:443")).toEqual({
      host: "kms.eu-west-1.amazonaws.com",
      port: 443,
    });
    expect(parseRelayTarget("[::1]:8443")).toEqual({ host: "::1", port: 8443 });
    for (const bad of ["kms.amazonaws.com", "host:0", "host:65536", "a b:443", "https://x:443"])
      expect(() => parseRelayTarget(bad)).toThrow(/HOST:PORT/);
    expect(awsKmsTarget("us-east-1")).toEqual({ host: "kms.us-east-1.amazonaws.com", port: 443 });
  });
});
