#!/usr/bin/env bash
# Packages a release: the host executable and the CLI (build/build-executables.sh)
# and the enclave image (eif/build.sh: the production enclave executable
# src/enclave/main.ts in a reproducible Nitro EIF, with its PCRs). Never the
# development enclave (tss-enclave-dev, simulated NSM).
#
#   build/package.sh --aws-root PATH --kms-region R --kms-key-id ARN
#                    [--kms-relay-port 8000] [--peer-image-sha384 HEX]... [--out dist]
#
# The flags are eif/build.sh's and are checked there (eif/release-inputs.sh
# holds the pins): they become the enclave's arguments inside the image, so they
# are measured into PCR0 and a host cannot point the enclave at another key.
# Writes OUT/tss-host, OUT/tss, OUT/tss-enclave.eif and OUT/tss-enclave.pcrs.json.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case " $* " in *" -h "*|*" --help "*) sed -n '2,13p' "$0"; exit 0 ;; esac
OUT="$ROOT/dist"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--out" ] && [ $((i + 1)) -lt ${#args[@]} ] && OUT="${args[$((i + 1))]}"
done
# `npm run build` writes the development enclave into dist/ too: a release
# directory must never hold it (simulated NSM), so a stale one goes first.
if [ -e "$OUT/tss-enclave-dev" ] || [ -L "$OUT/tss-enclave-dev" ]; then
  echo "[package] removing $OUT/tss-enclave-dev (the development enclave, left by npm run build): a release never holds it" >&2
  rm -f "$OUT/tss-enclave-dev"
fi
# The image first: it checks every flag and pin before anything is written.
bash "$ROOT/eif/build.sh" "$@"
bash "$ROOT/build/build-executables.sh" --out "$OUT" --only tss-host --only tss
echo "[package] done: $OUT/tss-host, $OUT/tss, $OUT/tss-enclave.eif (PCRs in $OUT/tss-enclave.pcrs.json)" >&2
