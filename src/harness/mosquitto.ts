/**
 * A real Mosquitto broker for tests and the demo: loopback only, password
 * authentication, the project's ACL (the same text as
 * deploy/mosquitto/acl.example) and no persistence, in its own directory.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface BrokerUser {
  username: string;
  password: string;
}

export interface AclUsers {
  /** The username every signing node's host logs in with. */
  node: string;
  /** The username clients (the SDK) log in with. */
  client: string;
}

export const DEFAULT_ACL_USERS: AclUsers = { node: "tss-node", client: "tss-client" };

/**
 * The ACL for MQTT API v1. deploy/mosquitto/acl.example is this text with
 * DEFAULT_ACL_USERS (a test keeps the two equal).
 */
export function aclText(users: AclUsers = DEFAULT_ACL_USERS): string {
  for (const u of [users.node, users.client]) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(u))
      throw new Error(
        `ACL username ${JSON.stringify(u)} must be 1-64 characters of [A-Za-z0-9._-]`,
      );
  }
  return `# Mosquitto ACL for the TSS signing layer, MQTT API v1 (docs/mqtt-api.md).
# Generated from src/harness/mosquitto.ts (aclText); keep the two identical.
#
# Anything not granted here is denied. Mosquitto checks a shared subscription
# ($share/<group>/<filter>) against <filter> itself, so the nodes' read grant
# on tss/v1/requests/# covers $share/tss-nodes/tss/v1/requests/+.

# Signing nodes: take client requests through the shared subscription, answer
# on any client's response topic, and use presence and node-to-node RPC.
user ${users.node}
topic read tss/v1/requests/#
topic write tss/v1/responses/#
topic readwrite tss/v1/nodes/#

# Clients: submit requests, and read node presence (the SDK watches its
# request's coordinator: its Last Will ends the wait); no node inboxes.
user ${users.client}
topic write tss/v1/requests/#
topic read tss/v1/nodes/+/presence

# Every authenticated user may read the responses addressed to its own client
# id and no one else's. Pattern lines apply to all users. Mosquitto refuses
# pattern access to a client id containing +, # or /, so an id cannot widen it.
# A client id is not a secret: where clients do not trust each other, give
# each its own username and use tss/v1/responses/%u/# instead.
pattern read tss/v1/responses/%c/#
`;
}

/** Largest MQTT packet the broker accepts: node RPC payloads (8 MiB) plus headers and properties. */
export const MAX_PACKET_BYTES = (8 << 20) + (64 << 10);

export interface MosquittoOptions {
  node: BrokerUser;
  client: BrokerUser;
  /** Directory for config, password and ACL files; a fresh temp dir (removed on stop) by default. */
  dataDir?: string;
  startTimeoutMs?: number;
}

export interface Mosquitto {
  url: string;
  host: string;
  port: number;
  proc: ChildProcess;
  dir: string;
  /** What the broker logged so far (errors, warnings, notices; never payloads). */
  log(): string;
  stop(): Promise<void>;
}

const MOSQUITTO = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD = "mosquitto_passwd";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() =>
        port ? resolve(port) : reject(new Error("could not find a free loopback port")),
      );
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

function addUser(passwdFile: string, u: BrokerUser, create: boolean): void {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(u.username))
    throw new Error(
      `broker username ${JSON.stringify(u.username)} must be 1-64 characters of [A-Za-z0-9._-]`,
    );
  // mosquitto_passwd -b takes the password as an argument; it never reaches a log here.
  const r = spawnSync(
    MOSQUITTO_PASSWD,
    [...(create ? ["-c"] : []), "-b", passwdFile, u.username, u.password],
    { encoding: "utf8" },
  );
  if (r.status !== 0)
    throw new Error(
      `mosquitto_passwd failed for ${u.username}: ${(r.stderr || r.error?.message || "").trim()}`,
    );
}

/**
 * When run as root Mosquitto drops to the "mosquitto" user before it reads the
 * password and ACL files, so they must be readable by that user.
 */
function handOverToBrokerUser(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const r = spawnSync("id", ["-u", "mosquitto"], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", "mosquitto"], { encoding: "utf8" });
  if (r.status !== 0 || g.status !== 0) return;
  const uid = Number(r.stdout.trim());
  const gid = Number(g.stdout.trim());
  chownSync(dir, uid, gid);
  for (const f of readdirSync(dir)) chownSync(join(dir, f), uid, gid);
}

function startOnce(dir: string, port: number): ChildProcess {
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous false",
      `password_file ${join(dir, "passwd")}`,
      `acl_file ${join(dir, "acl")}`,
      "persistence false",
      `max_packet_size ${MAX_PACKET_BYTES}`,
      "set_tcp_nodelay true",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_timestamp false",
      "",
    ].join("\n"),
  );
  handOverToBrokerUser(dir);
  return spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
}

export async function startMosquitto(o: MosquittoOptions): Promise<Mosquitto> {
  const ownDir = o.dataDir === undefined;
  const dir = o.dataDir ?? mkdtempSync(join(tmpdir(), "tss-mosquitto-"));
  const cleanup = () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    addUser(join(dir, "passwd"), o.node, true);
    addUser(join(dir, "passwd"), o.client, false);
    writeFileSync(join(dir, "acl"), aclText({ node: o.node.username, client: o.client.username }));
  } catch (e) {
    cleanup();
    throw e;
  }
  const deadline = Date.now() + (o.startTimeoutMs ?? 10_000);
  let lastErr = "";
  // The free port is only free until someone else takes it; retry on a lost race.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = startOnce(dir, port);
    let log = "";
    proc.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.length > 1 << 20) log = log.slice(-(512 << 10));
    });
    let exited = false;
    proc.once("exit", () => (exited = true));
    while (!exited && Date.now() < deadline) {
      if (await accepts(port)) {
        const stop = () =>
          new Promise<void>((resolve) => {
            const done = () => {
              cleanup();
              resolve();
            };
            if (proc.exitCode !== null || proc.signalCode !== null) return done();
            const t = setTimeout(() => proc.kill("SIGKILL"), 3_000);
            proc.once("exit", () => {
              clearTimeout(t);
              done();
            });
            proc.kill("SIGTERM");
          });
        return {
          url: `mqtt://127.0.0.1:${port}`,
          host: "127.0.0.1",
          port,
          proc,
          dir,
          log: () => log,
          stop,
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) {
      const gone = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await gone;
    }
    lastErr = log.trim().slice(-2000);
    if (!/address already in use/i.test(log)) break;
  }
  cleanup();
  throw new Error(`mosquitto did not start on 127.0.0.1: ${lastErr || "no output"}`);
}
