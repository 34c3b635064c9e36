/**
 * Which MQTT 5 broker a test file runs against: Mosquitto by default, or
 * mochi-mqtt (src/harness/mochi.ts) when a sibling file chose it before
 * loading the shared tests (test/host/mqtt-mochi.test.ts). Both harnesses
 * take the same options and give the same interface.
 */
import { startMochi } from "../../src/harness/mochi.ts";
import {
  startMosquitto,
  type Mosquitto,
  type MosquittoOptions,
} from "../../src/harness/mosquitto.ts";

export type BrokerKind = "mosquitto" | "mochi";
let chosen: BrokerKind = "mosquitto";

/** Call before importing the shared tests. */
export function useBroker(kind: BrokerKind): void {
  chosen = kind;
}

export const brokerKind = (): BrokerKind => chosen;

/** Every broker this test file started: which harness, and the executable it ran. */
export const startedBrokers: { kind: BrokerKind; executable: string }[] = [];

export async function startTestBroker(o: MosquittoOptions): Promise<Mosquitto> {
  const kind = chosen;
  const broker = await (kind === "mochi" ? startMochi(o) : startMosquitto(o));
  startedBrokers.push({ kind, executable: broker.proc.spawnfile });
  return broker;
}
