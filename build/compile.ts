/**
 * One standalone executable: `bun build --compile` through Bun's JS API, for
 * the one thing the CLI cannot do. libsql picks its native addon at run time
 * with require(`@libsql/${target}`), which no bundler can follow, so a
 * compiled host would look for node_modules beside itself; the plugin below
 * makes that require name this platform's addon, which Bun then embeds (and
 * loads from memory at run time). Called by build/build-executables.sh:
 *
 *   bun build/compile.ts ENTRY OUTFILE VERSION COMMIT
 *
 * ENTRY is relative to the repository root (the working directory), so no
 * absolute path of the checkout is written into the executable.
 */
import type { BunPlugin } from "bun";

const [entry, outfile, version, commit] = process.argv.slice(2);
if (!entry || !outfile || !version || !commit) {
  console.error("usage: bun build/compile.ts ENTRY OUTFILE VERSION COMMIT");
  process.exit(2);
}

/** libsql's own choice (node_modules/libsql/index.js): glibc on Linux, which Bun's runtime is built for. */
function libsqlAddon(): string {
  if (process.platform !== "linux" || !["x64", "arm64"].includes(process.arch))
    throw new Error(`no libsql addon mapping for ${process.platform}-${process.arch}`);
  return `@libsql/linux-${process.arch}-gnu`;
}

const DYNAMIC_REQUIRE = "require(`@libsql/${target}`)";
const libsqlStatic: BunPlugin = {
  name: "libsql-static-addon",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/]index\.js$/ }, async (args) => {
      const src = await Bun.file(args.path).text();
      // Fail loudly if a libsql upgrade changes the line, rather than compile a host that cannot start.
      if (!src.includes(DYNAMIC_REQUIRE))
        throw new Error(`${args.path}: libsql no longer loads its addon with ${DYNAMIC_REQUIRE}`);
      return {
        contents: src.replace(DYNAMIC_REQUIRE, `require(${JSON.stringify(libsqlAddon())})`),
        loader: "js",
      };
    });
  },
};

const r = await Bun.build({
  entrypoints: [entry],
  target: "bun",
  plugins: [libsqlStatic],
  define: {
    __TSS_VERSION__: JSON.stringify(version),
    __TSS_COMMIT__: JSON.stringify(commit),
  },
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
});
if (!r.success) {
  for (const l of r.logs) console.error(String(l));
  process.exit(1);
}
