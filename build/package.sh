#!/usr/bin/env bash
# Packages a release: the enclave as one standalone Bun executable (wasm
# embedded) staged with eif/ into an EIF build context, and the host as one
# standalone executable. The enclave is the production entry
# src/enclave/main.ts: /dev/nsm and VSOCK only, no development stand-in
# (test/enclave/production-bundle.test.ts checks its bundle).
#
#   build/package.sh --aws-root PATH [--out dist]
#
# The AWS Nitro root certificate is copied into the image (so it is measured
# into PCR0) only if its SHA-256 fingerprint is the pinned one; the enclave
# checks the pin again when it loads it.
# Building the EIF itself needs Docker and nitro-cli (not on this machine):
#   nitro-cli build-enclave --docker-uri tss-enclave:latest --output-file dist/tss-enclave.eif
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
AWS_ROOT=""
PIN="641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"
while [ $# -gt 0 ]; do
  case "$1" in
    --aws-root) AWS_ROOT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "package: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$AWS_ROOT" ] || { echo "package: --aws-root PATH (the AWS Nitro Enclaves root PEM) is required" >&2; exit 2; }
fp="$(openssl x509 -in "$AWS_ROOT" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' || true)"
[ "$fp" = "$PIN" ] || { echo "package: $AWS_ROOT is not the pinned AWS Nitro root certificate (SHA-256 fingerprint ${fp:-unreadable})" >&2; exit 1; }

bash "$ROOT/build/setup.sh"
BUN="$ROOT/node_modules/.bin/bun"
mkdir -p "$OUT/eif-context"
echo "[package] enclave executable" >&2
"$BUN" build --compile "$ROOT/src/enclave/main.ts" --outfile "$OUT/eif-context/enclave"
cp "$AWS_ROOT" "$OUT/eif-context/aws-nitro-root.pem"
cp "$ROOT/eif/Dockerfile" "$OUT/eif-context/Dockerfile"
echo "[package] host executable" >&2
"$BUN" build --compile "$ROOT/src/host/main.ts" --outfile "$OUT/tss-node"
echo "[package] done: $OUT/tss-node and the EIF build context $OUT/eif-context" >&2
echo "[package] next (on a Nitro-capable build host): docker build -t tss-enclave $OUT/eif-context && nitro-cli build-enclave --docker-uri tss-enclave:latest --output-file $OUT/tss-enclave.eif" >&2
