/**
 * The MQTT layer tests of mqtt.test.ts, unchanged, against a second MQTT 5
 * broker implementation: mochi-mqtt/server/v2 (Go, test/brokers/mochi), with
 * the same users, ACL text and limits as the Mosquitto harness. So the bus
 * (shared subscriptions, Response Topic and Correlation Data, retained
 * presence, Last Will, per-user ACLs) is shown to rest on MQTT 5, not on
 * Mosquitto's behaviour.
 */
import { useBroker } from "../helpers/test-broker.ts";

useBroker("mochi");
await import("./mqtt.test.ts");
