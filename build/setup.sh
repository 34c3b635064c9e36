#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine and builds
# the wasm core. Idempotent: each step is skipped when already satisfied, so
# `npm test` and `npm run demo` can call it every time.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { printf '[setup] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# 1. Debian packages: Rust toolchain that can build std for wasm32 (rustc-web
#    + its std source), the wasm linker, Mosquitto (wasm-opt comes from npm binaryen).
DEB_PKGS=(rustc-web cargo-web rust-web-src lld mosquitto mosquitto-clients)
missing=()
for p in "${DEB_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# 2. npm dependencies (Bun itself comes from the `bun` npm package).
if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
fi

# 3. wasm-bindgen-cli, exactly the crate's wasm-bindgen version. The registry
#    mirror lacks one crate pinned by its lock file, so --locked is not used;
#    the CLI version itself is pinned and checked by build-wasm.sh.
WBG_VERSION="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' crates/dkls23-wasm/Cargo.toml)"
WBG="$HOME/.cargo/bin/wasm-bindgen"
if ! { [ -x "$WBG" ] && [ "$("$WBG" --version | awk '{print $2}')" = "$WBG_VERSION" ]; }; then
  log "cargo install wasm-bindgen-cli $WBG_VERSION (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "=$WBG_VERSION" >&2
fi

# 4. The wasm core, rebuilt when any crate source (the binding crate or the
#    DKLs23 fork it builds on) is newer than the output.
WASM="src/enclave/dkls23/wasm/dkls23_bg.wasm"
if [ ! -f "$WASM" ] || [ -n "$(find crates/dkls23-wasm/src crates/dkls23-wasm/Cargo.toml crates/dkls23-wasm/Cargo.lock crates/dkls23-core-fork/src crates/dkls23-core-fork/Cargo.toml build/build-wasm.sh -newer "$WASM" 2>/dev/null | head -1)" ]; then
  bash build/build-wasm.sh
fi

# 5. The second MQTT 5 broker the MQTT layer is also tested against (mochi-mqtt, Go).
bash build/build-mochi.sh
log "ready"
