/** The tss command line parser (src/cli/args.ts), without a broker: the CLI's end-to-end tests are in client.test.ts. */
import { describe, expect, it } from "vitest";
import { parseArgv, requestIdArg, UsageError } from "../../src/cli/args.ts";

const usage = (argv: string[]): string => {
  try {
    parseArgv(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(" ")}`);
};

describe("tss arguments", () => {
  it("takes values as --name VALUE and --name=VALUE, options anywhere", () => {
    const inv = parseArgv([
      "--url=mqtt://h:1",
      "sign",
      "--wallet",
      "w_1",
      "--digest",
      "ab",
      "--json",
    ]);
    expect(inv).toMatchObject({ command: "sign", args: [], json: true, help: false });
    expect(Object.fromEntries(inv.values)).toEqual({
      url: "mqtt://h:1",
      wallet: "w_1",
      digest: "ab",
    });
    expect(parseArgv(["nodes", "--password=--dash"]).values.get("password")).toBe("--dash");
  });

  it("ends the options at --, so an id may start with -", () => {
    expect(parseArgv(["wallet", "show", "--", "-w1"])).toMatchObject({
      command: "wallet show",
      args: ["-w1"],
    });
  });

  it("names each mistake in one sentence", () => {
    expect(usage(["nodes", "--bogus"])).toBe(
      "Unknown option --bogus; run tss --help for the options.",
    );
    expect(usage(["nodes", "-x"])).toBe("Unknown option -x; run tss --help for the options.");
    expect(usage(["nodes", "--url"])).toBe("Option --url needs a value.");
    expect(usage(["nodes", "--url", "--json"])).toBe("Option --url needs a value.");
    expect(usage(["nodes", "--url", "a", "--url", "b"])).toBe("Option --url is given twice.");
    expect(usage(["nodes", "--json=1"])).toBe("Option --json takes no value.");
    expect(usage(["nodes", "--digest", "ab"])).toBe("Option --digest does not apply to tss nodes.");
    expect(usage(["wallet", "show"])).toMatch(/needs a wallet id/);
    expect(usage(["wallet", "show", "a", "b"])).toMatch(/Unexpected argument "b"/);
    expect(usage(["wallet", "drop"])).toMatch(/Unknown subcommand "drop"/);
  });

  it("lets --help win over mistakes", () => {
    expect(parseArgv(["sign", "--bogus", "-h"])).toMatchObject({ command: "sign", help: true });
    expect(parseArgv(["help", "wallet", "create"])).toMatchObject({
      command: "wallet create",
      help: true,
    });
    expect(parseArgv(["frobnicate", "--help"])).toMatchObject({ command: null, help: true });
  });

  it("checks request ids with the shared id pattern", () => {
    expect(requestIdArg("req-1:a.b_c")).toBe("req-1:a.b_c");
    expect(requestIdArg(undefined)).toBeUndefined();
    expect(() => requestIdArg("has space")).toThrow(UsageError);
    expect(() => requestIdArg("x".repeat(129))).toThrow(/1-128 characters/);
  });
});
