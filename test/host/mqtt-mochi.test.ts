/**
 * The MQTT layer tests of mqtt.test.ts, unchanged, against a second MQTT 5
 * broker implementation: mochi-mqtt/server/v2 (Go, test/brokers/mochi), with
 * the same users, ACL text and limits as the Mosquitto harness. So the bus
 * (shared subscriptions, Response Topic and Correlation Data, retained
 * presence, Last Will, per-user ACLs) is shown to rest on MQTT 5, not on
 * Mosquitto's behaviour.
 */
import { describe, expect, it } from "vitest";
import { MOCHI_BROKER } from "../../src/harness/mochi.ts";
import { startedBrokers, useBroker } from "../helpers/test-broker.ts";

useBroker("mochi");
await import("./mqtt.test.ts");

// Registered after the shared suite, so it runs once the suite has started its broker.
describe("the broker under the shared suite", () => {
  it("is mochi-mqtt's executable, never Mosquitto", () => {
    expect(startedBrokers.length).toBeGreaterThan(0);
    for (const b of startedBrokers) {
      expect(b.kind).toBe("mochi");
      expect(b.executable).toBe(MOCHI_BROKER);
    }
  });
});
