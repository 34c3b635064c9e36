#!/usr/bin/env bash
# Builds crates/dkls23-wasm to WebAssembly and generates its JS bindings into
# src/enclave/dkls23/wasm/ (git-ignored).
#
# Toolchain: Debian's rustc-web (rustup has no wasm32 std on these machines and
# none can be downloaded), with std rebuilt for wasm32 via -Zbuild-std and
# linked by wasm-ld. wasm-pack refuses a toolchain whose sysroot lacks a
# prebuilt wasm32 std, so this script drives cargo, wasm-bindgen and wasm-opt
# itself (see README, "Toolchain").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CRATE="$ROOT/crates/dkls23-wasm"
OUT="$ROOT/src/enclave/dkls23/wasm"
TARGET_DIR="${DKLS_TARGET_DIR:-$CRATE/target/debian}"
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$CRATE/Cargo.toml")"

log() { printf '[build-wasm] %s\n' "$*" >&2; }

command -v /usr/bin/rustc >/dev/null || { log "Debian rustc-web missing: run build/setup.sh"; exit 1; }
command -v wasm-ld >/dev/null || { log "wasm-ld missing: run build/setup.sh"; exit 1; }
WBG="$(command -v wasm-bindgen || true)"
[ -n "$WBG" ] || WBG="$HOME/.cargo/bin/wasm-bindgen"
[ -x "$WBG" ] || { log "wasm-bindgen missing: run build/setup.sh"; exit 1; }
have="$("$WBG" --version | awk '{print $2}')"
[ "$have" = "$WASM_BINDGEN_VERSION" ] || { log "wasm-bindgen-cli $have != crate's $WASM_BINDGEN_VERSION"; exit 1; }

# SIMD128 lets LLVM vectorise the field arithmetic loops; wide-arithmetic
# turns k256's 64x64->128-bit limb products into i64.mul_wide_u instead of
# __multi3 calls (rustc 1.96 has the feature unstable, hence RUSTC_BOOTSTRAP).
# Bun's JavaScriptCore runs both; BENCHMARKS.md has the numbers.
RUSTFLAGS_WASM="${DKLS_RUSTFLAGS:--C target-feature=+simd128,+wide-arithmetic -C panic=abort}"
# Panic and debug strings carry source paths; remapping the checkout and the
# cargo home makes the wasm (and so the enclave executable and PCR0) the same
# bytes whichever directory or user builds it.
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
RUSTFLAGS_WASM="$RUSTFLAGS_WASM --remap-path-prefix=$ROOT=/src --remap-path-prefix=$CARGO_HOME_DIR=/cargo"

log "cargo build (release, wasm32-unknown-unknown, -Zbuild-std) with $(/usr/bin/rustc --version)"
(
  cd "$CRATE"
  env -u RUSTUP_TOOLCHAIN \
    PATH="/usr/bin:$PATH" \
    RUSTC=/usr/bin/rustc \
    RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$TARGET_DIR" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$RUSTFLAGS_WASM" \
    /usr/bin/cargo build --lib --release --locked \
      --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort
)
RAW="$TARGET_DIR/wasm32-unknown-unknown/release/dkls23_wasm.wasm"

# wasm-opt from npm's binaryen (a devDependency, pinned): Debian's binaryen
# 108 cannot parse wide-arithmetic instructions. It optimises the raw cargo
# output and wasm-bindgen runs last (binaryen 108 also mis-rewrote
# wasm-bindgen's externref table; keeping that order costs nothing).
OPT="$TARGET_DIR/dkls23_wasm.opt.wasm"
WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"
if [ -x "$WASM_OPT" ] && [ "${DKLS_WASM_OPT:-1}" = 1 ]; then
  log "wasm-opt -O3 ($("$WASM_OPT" --version))"
  "$WASM_OPT" -O3 --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    --enable-wide-arithmetic "$RAW" -o "$OPT"
else
  log "wasm-opt skipped (npm binaryen missing or DKLS_WASM_OPT=0)"
  cp "$RAW" "$OPT"
fi

log "wasm-bindgen $have --target web"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
"$WBG" --target web --out-dir "$OUT.tmp" --out-name dkls23 --weak-refs "$OPT"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "wrote $OUT ($(du -h "$OUT/dkls23_bg.wasm" | cut -f1) wasm)"
