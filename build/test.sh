#!/usr/bin/env bash
# npm test: set up; then the cheap checks that fail fast (format of the
# TypeScript and Rust, the typecheck); then the Rust core's native tests; then
# the vitest suite (real wasm, real processes) under Bun.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/build/setup.sh"
cd "$ROOT"
echo "[test] format check (biome; rustfmt)" >&2
node_modules/.bin/biome format . >&2 || { echo "[test] format check failed: run npm run format" >&2; exit 1; }
# crates/dkls23-core-fork keeps upstream dkls23-core's layout so that it diffs
# cleanly against 0.6.2 (see its NOTICE.md); every other crate is rustfmt'd.
for crate in crates/*/; do
  [ -f "$crate/Cargo.toml" ] || continue
  [ "$crate" = "crates/dkls23-core-fork/" ] && continue
  (cd "$crate" && cargo fmt --check) >&2 || { echo "[test] rustfmt check failed in $crate: run npm run format" >&2; exit 1; }
done
echo "[test] typecheck (tsc --noEmit)" >&2
node_modules/.bin/tsc --noEmit -p . >&2
echo "[test] cargo test (crates/dkls23-wasm, native, Debian rustc)" >&2
(
  cd "$ROOT/crates/dkls23-wasm"
  env -u RUSTUP_TOOLCHAIN RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR=target/debian-native \
    /usr/bin/cargo test --release --locked --tests
)
# The four-way SHA-256 runs only in the wasm build (simd128), where no
# upstream party checks its digests: compare it with sha2 under Bun.
echo "[test] wasm four-way SHA-256 against sha2 (crates/dkls23-core-fork/wasm-check)" >&2
bash "$ROOT/crates/dkls23-core-fork/wasm-check/run.sh" >&2
echo "[test] vitest (bun --bun vitest run --pool=threads)" >&2
exec node_modules/.bin/bun --bun vitest run --pool=threads "$@"
