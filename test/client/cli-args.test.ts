/** The tss command line parser (src/cli/args.ts), without a broker: the CLI's end-to-end tests are in client.test.ts. */
import { describe, expect, it } from "vitest";
import { COMMANDS, keyTypeArg, parseArgv, requestIdArg, UsageError } from "../../src/cli/args.ts";
import { MAIN_HELP, WALLET_HELP } from "../../src/cli/help.ts";

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
    // Every wallet subcommand is named, repair and reshare included.
    expect(usage(["wallet", "drop"])).toMatch(
      /takes create, show, list, refresh, policy, retire, import, repair or reshare\.$/,
    );
    expect(usage(["wallet"])).toMatch(/import, repair or reshare\.$/);
    // --target-pcr4 is repeatable (reshare: NODE=HEX per member).
    expect(
      parseArgv(["wallet", "reshare", "--target-pcr4", "a=1", "--target-pcr4", "b=2"]).lists.get(
        "target-pcr4",
      ),
    ).toEqual(["a=1", "b=2"]);
  });

  it("lists in the help exactly the commands that exist", () => {
    // "  wallet create [--threshold…": a command line of the main help starts with its name.
    const listed = (help: string, prefix: string) =>
      [...help.matchAll(/^  ([a-z]+(?: [a-z]+)?)(?= |$)/gm)]
        .map((m) => `${prefix}${m[1]}`)
        .filter((c) => !c.endsWith(" SUBCOMMAND"));
    const commands = Object.keys(COMMANDS).sort();
    expect([...new Set(listed(MAIN_HELP.split("Global options:")[0]!, ""))].sort()).toEqual(
      commands,
    );
    expect(listed(WALLET_HELP, "wallet ").sort()).toEqual(
      commands.filter((c) => c.startsWith("wallet ")),
    );
  });

  it("takes --key-type secp256k1-ecdsa on wallet create and import, and nothing else", () => {
    expect(keyTypeArg(undefined)).toBeUndefined();
    expect(keyTypeArg("secp256k1-ecdsa")).toBe("secp256k1-ecdsa");
    expect(() => keyTypeArg("ed25519")).toThrow(
      '--key-type "ed25519" is not supported: it must be one of "secp256k1-ecdsa".',
    );
    expect(parseArgv(["wallet", "create", "--key-type", "x"]).values.get("key-type")).toBe("x");
    expect(parseArgv(["wallet", "import", "--key-type=x"]).values.get("key-type")).toBe("x");
    expect(usage(["sign", "--key-type", "secp256k1-ecdsa"])).toBe(
      "Option --key-type does not apply to tss sign.",
    );
  });

  it("takes --allow-leavers-quorum and --allow-offline-leavers on wallet reshare only", () => {
    const r = ["wallet", "reshare", "--allow-leavers-quorum", "--allow-offline-leavers"];
    expect(parseArgv(r)).toMatchObject({ allowLeaversQuorum: true, allowOfflineLeavers: true });
    expect(parseArgv(["wallet", "reshare"]).allowLeaversQuorum).toBeUndefined();
    expect(usage(["sign", "--allow-leavers-quorum"])).toBe(
      "Option --allow-leavers-quorum does not apply to tss sign.",
    );
    expect(usage(["wallet", "reshare", "--allow-offline-leavers=yes"])).toMatch(/takes no value/);
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
