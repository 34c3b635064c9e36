#!/usr/bin/env bash
# npm test: set up, then the Rust core's native tests, then the vitest suite
# (real wasm, real processes) under Bun.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/build/setup.sh"
echo "[test] cargo test (crates/dkls23-wasm, native, Debian rustc)" >&2
(
  cd "$ROOT/crates/dkls23-wasm"
  env -u RUSTUP_TOOLCHAIN RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR=target/debian-native \
    /usr/bin/cargo test --release --locked --tests
)
echo "[test] vitest (bun --bun vitest run --pool=threads)" >&2
cd "$ROOT"
exec node_modules/.bin/bun --bun vitest run --pool=threads "$@"
