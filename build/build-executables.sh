#!/usr/bin/env bash
# npm run build: the four standalone executables (bun build --compile, the
# DKLs23 wasm embedded), written to dist/ or --out DIR:
#
#   tss-host         one signing node's host (src/host/main.ts)
#   tss-enclave      the PRODUCTION enclave (src/enclave/main.ts): /dev/nsm,
#                    VSOCK, pinned AWS roots read from beside itself; what
#                    eif/build.sh puts into the image. It cannot run here.
#   tss              the operator's CLI (src/cli/tss.ts)
#   tss-enclave-dev  DEVELOPMENT ONLY: the enclave with a simulated NSM
#                    (src/dev/enclave-main.ts), for tests, the demo and
#                    npm run smoke. Never ship it.
#
#   bash build/build-executables.sh [--out DIR] [--only NAME]... [--print-stamp]
#
# Each answers --version with the package version and the git commit, which
# is fixed at build time (--define): `git rev-parse HEAD` (with "-dirty" when
# the tree has uncommitted changes), or in a `git archive` tarball the commit
# git wrote into build/commit.txt (export-subst, .gitattributes), else
# "unknown". The executables are byte-reproducible: same tree, same bytes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
ONLY=()
STAMP_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --only) ONLY+=("$2"); shift 2 ;;
    --print-stamp) STAMP_ONLY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-executables: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
VERSION="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$ROOT/package.json" | head -1)"
[ -n "$VERSION" ] || { echo "build-executables: no version in package.json" >&2; exit 1; }
COMMIT="unknown"
# Only this checkout's own repository counts (a tarball unpacked inside another one does not).
if [ "$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null)" = "$ROOT" ]; then
  COMMIT="$(git -C "$ROOT" rev-parse HEAD)"
  [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || COMMIT="$COMMIT-dirty"
else
  c="$(tr -d '[:space:]' < "$ROOT/build/commit.txt" 2>/dev/null || true)"
  [[ "$c" =~ ^[0-9a-f]{40}$ ]] && COMMIT="$c"
fi

# --print-stamp: just "VERSION COMMIT", what the executables would report (a cache key).
[ "$STAMP_ONLY" = 0 ] || { echo "$VERSION $COMMIT"; exit 0; }
bash "$ROOT/build/setup.sh"
BUN="$ROOT/node_modules/.bin/bun"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

build_one() { # name entry
  local name="$1" entry="$2" t0
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " =~ " $name " ]]; then return 0; fi
  t0=$(date +%s%N)
  # Built from the repository root with a relative entry, so no absolute path of this
  # checkout ends up in the executable; .env and bunfig.toml are not read at run time
  # (build/compile.ts: bun build --compile, plus embedding libsql's native addon.)
  (cd "$ROOT" && "$BUN" build/compile.ts "./$entry" "$OUT/$name" "$VERSION" "$COMMIT" >&2)
  printf '[build] %-16s %4s MB  %6s ms\n' "$name" "$(( $(stat -c %s "$OUT/$name") / 1048576 ))" \
    "$(( ($(date +%s%N) - t0) / 1000000 ))" >&2
}
echo "[build] tss $VERSION ($COMMIT) into $OUT" >&2
build_one tss-host src/host/main.ts
build_one tss-enclave src/enclave/main.ts
build_one tss src/cli/tss.ts
build_one tss-enclave-dev src/dev/enclave-main.ts
