/** The shared JSON-lines log writer (src/shared/log.ts). */
import { describe, expect, it } from "vitest";
import { jsonLogger, logLine } from "../../src/shared/log.ts";

describe("log lines", () => {
  it("write one JSON line with at, src, event first, which fields cannot overwrite", () => {
    const lines: string[] = [];
    jsonLogger("host", (l) => lines.push(l))("ready", {
      node: "node-1",
      event: "forged",
      src: "enclave",
    });
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!);
    expect(Object.keys(o).slice(0, 3)).toEqual(["at", "src", "event"]);
    expect(o).toMatchObject({ src: "host", event: "ready", node: "node-1" });
    expect(Number.isNaN(Date.parse(o.at))).toBe(false);
  });

  it("never write byte values, only their length, however deep", () => {
    const secret = new Uint8Array([0xc0, 0xff, 0xee, 0x11]);
    const line = logLine("enclave", "oops", {
      share: secret,
      nested: { key: Buffer.from("c0ffee11", "hex"), list: [secret.buffer] },
    });
    expect(line).not.toMatch(/192|c0ffee|255,238/);
    expect(JSON.parse(line)).toMatchObject({
      share: "[4 bytes]",
      nested: { key: "[4 bytes]", list: ["[4 bytes]"] },
    });
  });

  it("never throw: bigints become strings, circular fields become a note", () => {
    expect(JSON.parse(logLine("devkms", "n", { n: 2n ** 70n })).n).toBe("1180591620717411303424");
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(JSON.parse(logLine("devkms", "loop", { loop }))).toMatchObject({
      event: "loop",
      log_error: "fields not serialisable",
    });
  });
});
