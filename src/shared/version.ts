/**
 * The version every executable reports (--version) and the host announces in
 * its presence. build/build-executables.sh fixes both at build time with
 * `bun build --define` (package.json's version; the git commit, or the one
 * `git archive` wrote into build/commit.txt, or "unknown"), so a compiled
 * executable never reads them at run time. Run from the sources, nothing is
 * defined and the commit says so.
 */
declare const __TSS_VERSION__: string | undefined;
declare const __TSS_COMMIT__: string | undefined;

/** package.json's version when run from the sources; a build defines it. */
const SOURCE_VERSION = "0.1.0";

export const VERSION: string =
  typeof __TSS_VERSION__ === "string" ? __TSS_VERSION__ : SOURCE_VERSION;
export const COMMIT: string =
  typeof __TSS_COMMIT__ === "string" ? __TSS_COMMIT__ : "unknown (run from the sources)";

/** The --version line: `NAME VERSION (commit COMMIT)`. */
export function versionLine(name: string): string {
  return `${name} ${VERSION} (commit ${COMMIT})`;
}
