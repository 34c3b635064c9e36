/**
 * Node configuration: the KMS part is the relay (where it listens, what it
 * connects to) and the credentials to hand the enclave; the KMS key and
 * endpoint are the enclave's own configuration, and --help says exactly the
 * flags loadConfig reads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_HELP, loadConfig } from "../../src/host/config.ts";
import { DEFAULT_CLIENT_LIMITS, DEFAULT_MAX_CEREMONIES } from "../../src/host/rate-limits.ts";

const required = [
  "--node-id",
  "node-1",
  "--mqtt",
  "mqtt://127.0.0.1:1883",
  "--enclave",
  "unix:/run/e.sock",
  "--database",
  "/tmp/n.db",
];

describe("node configuration", () => {
  it("takes the relay address, target and region from flags; the target defaults to AWS", () => {
    const c = loadConfig([...required, "--kms-relay", "vsock:8000"], {});
    expect(c.kms).toMatchObject({ relay: "vsock:8000", region: "us-east-1" });
    expect(c.kms.target).toBeUndefined();
    const d = loadConfig(
      [
        ...required,
        "--kms-relay",
        "unix:/run/kms.sock",
        "--kms-target",
        "127.0.0.1:4443",
        "--kms-region",
        "eu-west-1",
      ],
      {},
    );
    expect(d.kms).toMatchObject({
      relay: "unix:/run/kms.sock",
      target: "127.0.0.1:4443",
      region: "eu-west-1",
    });
  });

  it("gives each node its own broker user: the username defaults to, and must be, the node id", () => {
    const relay = ["--kms-relay", "vsock:8000"];
    expect(loadConfig([...required, ...relay], {}).mqtt.username).toBe("node-1");
    expect(loadConfig([...required, ...relay, "--mqtt-username", "node-1"], {}).mqtt.username).toBe(
      "node-1",
    );
    expect(() => loadConfig([...required, ...relay], { TSS_MQTT_USERNAME: "tss-node" })).toThrow(
      /mqtt\.username must be the node id node-1/,
    );
  });

  it("requires kms.relay, and static credentials only as a pair", () => {
    expect(() => loadConfig(required, {})).toThrow(/missing configuration: kms\.relay/);
    const dir = mkdtempSync(join(tmpdir(), "tss-config-"));
    try {
      const file = join(dir, "node.json");
      writeFileSync(file, JSON.stringify({ kms: { relay: "vsock:8000", accessKeyId: "AKIA1" } }));
      expect(() => loadConfig([...required, "--config", file], {})).toThrow(/go together/);
      writeFileSync(
        file,
        JSON.stringify({
          kms: {
            relay: "vsock:8000",
            accessKeyId: "AKIA1",
            secretAccessKey: "s",
            sessionToken: "t",
          },
        }),
      );
      expect(loadConfig([...required, "--config", file], {}).kms).toMatchObject({
        accessKeyId: "AKIA1",
        secretAccessKey: "s",
        sessionToken: "t",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--help lists exactly the flags loadConfig reads", () => {
    const source = readFileSync(new URL("../../src/host/config.ts", import.meta.url), "utf8");
    const read = [...source.matchAll(/flag\(argv, "(--[a-z-]+)"\)/g)].map((m) => m[1]!);
    const listed = [...CONFIG_HELP.matchAll(/\s(--[a-z-]+)\s/g)].map((m) => m[1]!);
    expect(new Set(listed)).toEqual(new Set(read.filter((f) => f !== "--config")));
    // The host no longer has a KMS key or endpoint of its own.
    expect(CONFIG_HELP).not.toMatch(/--kms-key-id|--kms-endpoint/);
  });
});

describe("limits configuration", () => {
  const withRelay = [...required, "--kms-relay", "vsock:8000"];

  it("defaults to rate-limits.ts's values, and --help says them", () => {
    expect(loadConfig(withRelay, {}).limits).toEqual({
      requestsPerSecond: DEFAULT_CLIENT_LIMITS.requestsPerSecond,
      requestBurst: DEFAULT_CLIENT_LIMITS.burst,
      maxInFlight: DEFAULT_CLIENT_LIMITS.maxInFlight,
      maxCeremonies: DEFAULT_MAX_CEREMONIES,
    });
    expect(CONFIG_HELP).toContain(`default ${DEFAULT_CLIENT_LIMITS.requestsPerSecond}\n`);
    expect(CONFIG_HELP).toContain(`default ${DEFAULT_MAX_CEREMONIES}`);
  });

  it("takes each limit from its flag and refuses values that would disable it", () => {
    const c = loadConfig(
      [
        ...withRelay,
        ...["--rate-limit", "2.5", "--rate-burst", "4", "--max-in-flight", "3"],
        ...["--max-ceremonies", "9"],
      ],
      {},
    );
    expect(c.limits).toEqual({
      requestsPerSecond: 2.5,
      requestBurst: 4,
      maxInFlight: 3,
      maxCeremonies: 9,
    });
    expect(() => loadConfig([...withRelay, "--rate-limit", "0"], {})).toThrow(/requestsPerSecond/);
    expect(() => loadConfig([...withRelay, "--max-in-flight", "1.5"], {})).toThrow(/maxInFlight/);
    expect(() => loadConfig([...withRelay, "--max-ceremonies", "0"], {})).toThrow(/maxCeremonies/);
    expect(() => loadConfig([...withRelay, "--rate-burst", "x"], {})).toThrow(/requestBurst/);
  });
});
