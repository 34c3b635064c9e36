#!/usr/bin/env bash
# Builds the second MQTT 5 broker the tests run the MQTT layer against
# (test/brokers/mochi: mochi-mqtt/server/v2 with the project's ACL), from the
# Go module proxy, pinned by the committed go.sum (-mod=readonly: nothing is
# resolved anew). Cached: rebuilt only when its sources are newer than the
# binary. Prints nothing on success but one log line when it builds.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/test/brokers/mochi"
OUT="$SRC/target/mochi-broker"
log() { printf '[setup] %s\n' "$*" >&2; }

if [ -x "$OUT" ] && [ -z "$(find "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" "$0" -newer "$OUT" 2>/dev/null | head -1)" ]; then
  exit 0
fi
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing Debian package golang-go (for the mochi test broker)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go >&2
  GO="$(command -v go)"
fi
# mochi-mqtt/server/v2 declares go 1.21.
ver="$("$GO" env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n1.21\n' "${ver%%[!0-9.]*}" | sort -V | head -1)" != "1.21" ]; then
  echo "[setup] Go $ver is too old for the mochi test broker (needs 1.21 or later): install a newer Go from https://go.dev/dl/" >&2
  exit 1
fi
log "go build test/brokers/mochi (mochi-mqtt/server/v2, Go $ver)"
mkdir -p "$SRC/target"
(cd "$SRC" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 "$GO" build -trimpath -o "$OUT.tmp" .)
mv "$OUT.tmp" "$OUT"
