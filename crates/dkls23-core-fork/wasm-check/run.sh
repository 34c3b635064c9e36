#!/usr/bin/env bash
# Builds this check for wasm32 (+simd128, as build/build-wasm.sh builds the
# enclave's core) and runs it under the repository's Bun. Exit 0 = every
# digest of the four-way SHA-256 equals sha2's.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TARGET_DIR="${CHECK_TARGET_DIR:-$HERE/target}"
(
  cd "$HERE"
  env -u RUSTUP_TOOLCHAIN PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$TARGET_DIR" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128,+wide-arithmetic -C panic=abort" \
    /usr/bin/cargo build --release --locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort -q
)
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/sha256x4_wasm_check.wasm"
"$ROOT/node_modules/.bin/wasm-opt" -O3 --enable-simd --enable-bulk-memory --enable-sign-ext \
  --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue \
  --enable-reference-types "$WASM" -o "$TARGET_DIR/check.opt.wasm"
for w in "$WASM" "$TARGET_DIR/check.opt.wasm"; do
  "$ROOT/node_modules/.bin/bun" -e '
    const { instance } = await WebAssembly.instantiate(await Bun.file(process.argv[1]).arrayBuffer(), {});
    const bad = instance.exports.check();
    console.log(`${process.argv[1]}: ${bad === 0 ? "ok" : "FAILED"} (${bad} mismatching digests of 256)`);
    process.exit(bad === 0 ? 0 : 1);' "$w"
done
