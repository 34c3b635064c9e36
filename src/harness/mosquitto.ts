/**
 * A real Mosquitto broker for tests and the demo: loopback only, password
 * authentication with one broker user per node and per client, client id
 * bound to username, the project's ACL (the text of
 * deploy/mosquitto/acl.example for EXAMPLE_ACL_USERS) and no persistence, in
 * its own directory.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_ID_PATTERN } from "../shared/wire/patterns.ts";

export interface BrokerUser {
  username: string;
  password: string;
}

/** Who may log in, by role. Usernames are unique across roles. */
export interface AclUsers {
  /** Signing nodes: each node's username is its node id (src/host/config.ts). */
  nodes: string[];
  /** Clients (the SDK): its response topic is tss/v1/responses/<username>/... */
  clients: string[];
  /**
   * Test-only users that read every tss/v1 topic (to observe node traffic);
   * never part of a deployment's ACL.
   */
  observers?: string[];
}

/** The users deploy/mosquitto/acl.example is written for. */
export const EXAMPLE_ACL_USERS: AclUsers = {
  nodes: ["node-1", "node-2", "node-3"],
  clients: ["wallet-service"],
};

/** Mosquitto usernames here are also topic levels: no separators, wildcards or spaces. */
const USERNAME = /^[A-Za-z0-9._-]{1,64}$/;

function checkUsers(users: AclUsers): void {
  const all = [...users.nodes, ...users.clients, ...(users.observers ?? [])];
  for (const u of all)
    if (!USERNAME.test(u))
      throw new Error(
        `broker username ${JSON.stringify(u)} must be 1-64 characters of [A-Za-z0-9._-]`,
      );
  for (const u of users.nodes)
    if (!NODE_ID_PATTERN.test(u)) throw new Error(`node username ${u} must be a node id`);
  // A client named like a node would read that node's inbox through the %u patterns.
  if (new Set(all).size !== all.length) throw new Error("broker usernames must be unique");
}

/**
 * The ACL for MQTT API v1 with one broker user per node and per client.
 * Mosquitto binds client id to username (use_username_as_clientid), so %u is
 * the identity a password proved and %c cannot be chosen apart from it.
 */
export function aclText(users: AclUsers): string {
  checkUsers(users);
  const nodes = users.nodes.map(
    (u) => `user ${u}
topic read tss/v1/requests/#
topic write tss/v1/responses/#
topic write tss/v1/nodes/+/inbox
topic write tss/v1/nodes/+/replies
topic read tss/v1/nodes/+/presence
topic write tss/v1/nodes/${u}/presence
`,
  );
  const clients = users.clients.map(
    (u) => `user ${u}
topic write tss/v1/requests/#
topic read tss/v1/nodes/+/presence
`,
  );
  const observers = (users.observers ?? []).map(
    (u) => `user ${u}
topic read tss/v1/#
`,
  );
  return `# Mosquitto ACL for the TSS signing layer, MQTT API v1 (docs/mqtt-api.md).
# Generated from src/harness/mosquitto.ts (aclText); keep the two identical.
# One broker user per node (username = node id) and per client; the broker
# binds client id to username (use_username_as_clientid true), so a client id
# can no longer be borrowed: connecting as a user needs that user's password,
# and a second connection of one user replaces the first.
#
# Anything not granted here is denied. Mosquitto checks a shared subscription
# ($share/<group>/<filter>) against <filter> itself, so the nodes' read grant
# on tss/v1/requests/# covers $share/tss-nodes/tss/v1/requests/+.

# Every user reads only what is addressed to its own username: a client its
# responses, a node its RPC inbox and the replies to its calls. Pattern lines
# apply to all users; usernames are unique across nodes and clients, and
# Mosquitto refuses pattern access to a username containing + or #.
pattern read tss/v1/responses/%u/#
pattern read tss/v1/nodes/%u/inbox
pattern read tss/v1/nodes/%u/replies

# Signing nodes: take client requests through the shared subscription, answer
# on a client's response topic, call other nodes (their inboxes) and answer
# calls (the caller's replies), read presence, and announce only their own
# presence (and Last Will). Presence is per user, not a %u pattern, so a client
# cannot announce itself as a node.
${nodes.join("\n")}
# Clients: submit requests, and read node presence (the SDK watches its
# request's coordinator: its Last Will ends the wait); no node inboxes.
${clients.join("\n")}${
  observers.length
    ? `\n# Test-only observers (src/harness): read everything, write nothing.\n${observers.join("\n")}`
    : ""
}`;
}

/** Largest MQTT packet the broker accepts: node RPC payloads (8 MiB) plus headers and properties. */
export const MAX_PACKET_BYTES = (8 << 20) + (64 << 10);

export interface MosquittoOptions {
  /** One per node; username = node id. */
  nodes: BrokerUser[];
  /** One per client process that is connected at a time (a user has one connection). */
  clients: BrokerUser[];
  /** Test-only readers of every tss/v1 topic. */
  observers?: BrokerUser[];
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
  /**
   * Kills the broker (SIGKILL: no Last Will is sent, nothing is flushed) and, after `downMs`,
   * starts it again on the same port with the same users and ACL (fault tests). Persistence
   * is off, so what it held (retained presence, sessions, queued messages) is gone.
   */
  restart(downMs?: number): Promise<void>;
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

/** Users with fresh random passwords (what the harness hands out). */
export function generatedUsers(usernames: readonly string[]): BrokerUser[] {
  return usernames.map((username) => ({
    username,
    password: randomBytes(18).toString("base64url"),
  }));
}

function addUser(passwdFile: string, u: BrokerUser, create: boolean): void {
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
      // The client id is the username: %u in the ACL is who proved a password.
      "use_username_as_clientid true",
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

export function startMosquitto(o: MosquittoOptions): Promise<Mosquitto> {
  return runBroker(
    "mosquitto",
    o,
    (dir, users) => users.forEach((u, i) => addUser(join(dir, "passwd"), u, i === 0)),
    startOnce,
  );
}

/**
 * Runs a broker process for `o`, shared by both broker harnesses (src/harness/mochi.ts): its
 * directory (a fresh temp dir, removed on stop, unless o.dataDir), the ACL (aclText, checked
 * before `writeUsers` writes any password) in `acl` there, then the process (`spawnOn` starts
 * one listening on the port, logging to stderr) on a free loopback port until it accepts
 * connections, retrying on a lost port race, with stop and restart (same port).
 */
export async function runBroker(
  name: string,
  o: MosquittoOptions,
  writeUsers: (dir: string, users: BrokerUser[]) => void,
  spawnOn: (dir: string, port: number) => ChildProcess,
): Promise<Mosquitto> {
  const ownDir = o.dataDir === undefined;
  const dir = o.dataDir ?? mkdtempSync(join(tmpdir(), `tss-${name}-`));
  const cleanup = () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const observers = o.observers ?? [];
    const names = (us: BrokerUser[]) => us.map((u) => u.username);
    // Checked before any password is written.
    const acl = aclText({
      nodes: names(o.nodes),
      clients: names(o.clients),
      observers: names(observers),
    });
    writeUsers(dir, [...o.nodes, ...o.clients, ...observers]);
    writeFileSync(join(dir, "acl"), acl);
  } catch (e) {
    cleanup();
    throw e;
  }
  const startTimeoutMs = o.startTimeoutMs ?? 10_000;
  const deadline = Date.now() + startTimeoutMs;
  let lastErr = "";
  // The free port is only free until someone else takes it; retry on a lost race.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let proc = spawnOn(dir, port);
    let log = "";
    const capture = (p: ChildProcess) =>
      p.stderr!.on("data", (d: Buffer) => {
        log += d.toString();
        if (log.length > 1 << 20) log = log.slice(-(512 << 10));
      });
    capture(proc);
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
        const restart = async (downMs = 0) => {
          if (proc.exitCode === null && proc.signalCode === null) {
            const gone = new Promise((r) => proc.once("exit", r));
            proc.kill("SIGKILL");
            await gone;
          }
          await new Promise((r) => setTimeout(r, downMs));
          proc = spawnOn(dir, port);
          capture(proc);
          const until = Date.now() + startTimeoutMs;
          while (!(await accepts(port))) {
            if (Date.now() > until || proc.exitCode !== null)
              throw new Error(`${name} did not restart on port ${port}: ${log.trim().slice(-500)}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        };
        return {
          url: `mqtt://127.0.0.1:${port}`,
          host: "127.0.0.1",
          port,
          get proc() {
            return proc;
          },
          dir,
          log: () => log,
          restart,
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
  throw new Error(`${name} did not start on 127.0.0.1: ${lastErr || "no output"}`);
}
