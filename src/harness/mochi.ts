/**
 * A second MQTT 5 broker for tests: mochi-mqtt/server/v2 (Go), built by
 * build/build-mochi.sh from test/brokers/mochi, with the same interface and
 * the same configuration as the Mosquitto harness (src/harness/mosquitto.ts):
 * loopback only, one password per user, client id bound to username, the
 * project's ACL (the very text aclText writes, in Mosquitto's file format,
 * enforced by the broker's own hook), no persistence, the same packet limit.
 * So the MQTT layer and a cluster can run on either, and nothing in the
 * product leans on one implementation's quirks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_PACKET_BYTES, runBroker, type Mosquitto, type MosquittoOptions } from "./mosquitto.ts";

/** The broker harness interface both brokers implement. */
export type Broker = Mosquitto;
export type BrokerOptions = MosquittoOptions;

export const MOCHI_BROKER = new URL("../../test/brokers/mochi/target/mochi-broker", import.meta.url)
  .pathname;

function startOnce(dir: string, port: number): ChildProcess {
  return spawn(
    MOCHI_BROKER,
    [
      "--port",
      String(port),
      "--users",
      join(dir, "users.json"),
      "--acl",
      join(dir, "acl"),
      "--max-packet-size",
      String(MAX_PACKET_BYTES),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
}

export function startMochi(o: BrokerOptions): Promise<Broker> {
  if (!existsSync(MOCHI_BROKER))
    return Promise.reject(
      new Error(`${MOCHI_BROKER} is missing: run bash build/build-mochi.sh (npm run setup)`),
    );
  return runBroker(
    "mochi",
    o,
    (dir, users) =>
      writeFileSync(
        join(dir, "users.json"),
        JSON.stringify(Object.fromEntries(users.map((u) => [u.username, u.password]))),
        { mode: 0o600 },
      ),
    startOnce,
  );
}
