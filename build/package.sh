#!/usr/bin/env bash
# Packages a release: the executables of build/build-executables.sh
# (npm run build) except the development enclave: the enclave (tss-enclave,
# wasm embedded) staged with eif/ into an EIF build context, the host
# dist/tss-host and the CLI dist/tss. The enclave is the production entry
# src/enclave/main.ts: /dev/nsm and VSOCK only, no development stand-in
# (test/enclave/production-bundle.test.ts checks its bundle).
#
#   build/package.sh --aws-root PATH --kms-region R --kms-key-id ARN
#                    [--kms-relay-port 8000] [--peer-image-sha384 HEX]... [--out dist]
#
# The AWS Nitro root certificate is copied into the image (so it is measured
# into PCR0) only if its SHA-256 fingerprint is the pinned one; so are the
# Amazon Trust Services roots KMS's TLS certificate must chain to (Debian's
# /usr/share/ca-certificates/mozilla/Amazon_Root_CA_{1..4}.crt, each pinned).
# The enclave checks every pin again when it loads them. The ENTRYPOINT's
# flags (KMS relay on the parent, CID 3; endpoint kms.R.amazonaws.com; region;
# key ARN; other allowed peer images) are written into the Dockerfile, so they
# are measured into PCR0 too: a host cannot point the enclave at another key.
# Building the EIF itself needs Docker and nitro-cli (not on this machine):
#   nitro-cli build-enclave --docker-uri tss-enclave:latest --output-file dist/tss-enclave.eif
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
AWS_ROOT=""
KMS_REGION=""
KMS_KEY_ID=""
KMS_RELAY_PORT="8000"
PEER_IMAGES=()
PIN="641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"
# Amazon Root CA 1..4 (src/attestation/aws-root.ts AMAZON_TRUST_ROOTS_SHA256).
AMAZON_DIR="/usr/share/ca-certificates/mozilla"
AMAZON_PINS=(
  8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E
  1BA5B2AA8C65401A82960118F80BEC4F62304D83CEC4713A19C39C011EA46DB4
  18CE6CFE7BF14E60B2E347B8DFE868CB31D02EBB3ADA271569F50343B46DB3A4
  E35D28419ED02025CFA69038CD623962458DA5C695FBDEA3C22B0BFB25897092
)
while [ $# -gt 0 ]; do
  case "$1" in
    --aws-root) AWS_ROOT="$2"; shift 2 ;;
    --kms-region) KMS_REGION="$2"; shift 2 ;;
    --kms-key-id) KMS_KEY_ID="$2"; shift 2 ;;
    --kms-relay-port) KMS_RELAY_PORT="$2"; shift 2 ;;
    --peer-image-sha384) PEER_IMAGES+=("$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "package: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$AWS_ROOT" ] || { echo "package: --aws-root PATH (the AWS Nitro Enclaves root PEM) is required" >&2; exit 2; }
fp="$(openssl x509 -in "$AWS_ROOT" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' || true)"
[ "$fp" = "$PIN" ] || { echo "package: $AWS_ROOT is not the pinned AWS Nitro root certificate (SHA-256 fingerprint ${fp:-unreadable})" >&2; exit 1; }
[[ "$KMS_REGION" =~ ^[a-z]{2}(-[a-z0-9]+){1,4}$ ]] || { echo "package: --kms-region REGION is required (e.g. eu-west-1)" >&2; exit 2; }
[[ "$KMS_KEY_ID" =~ ^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$ ]] || { echo "package: --kms-key-id must be the share-wrapping key's ARN" >&2; exit 2; }
[[ "$KMS_RELAY_PORT" =~ ^[0-9]{1,10}$ ]] || { echo "package: --kms-relay-port must be a number" >&2; exit 2; }
for img in "${PEER_IMAGES[@]}"; do
  [[ "$img" =~ ^[0-9a-fA-F]{96}$ ]] || { echo "package: --peer-image-sha384 takes 96 hex digits" >&2; exit 2; }
done
AMAZON_BUNDLE="$(mktemp)"
trap 'rm -f "$AMAZON_BUNDLE"' EXIT
for i in 1 2 3 4; do
  crt="$AMAZON_DIR/Amazon_Root_CA_$i.crt"
  afp="$(openssl x509 -in "$crt" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' || true)"
  [ "$afp" = "${AMAZON_PINS[$((i - 1))]}" ] || { echo "package: $crt is not the pinned Amazon Root CA $i (install ca-certificates; fingerprint ${afp:-unreadable})" >&2; exit 1; }
  cat "$crt" >> "$AMAZON_BUNDLE"
done

# The release executables, byte-reproducible and stamped with version and commit; never the
# development enclave (tss-enclave-dev, simulated NSM).
bash "$ROOT/build/build-executables.sh" --out "$OUT" --only tss-enclave --only tss-host --only tss
mkdir -p "$OUT/eif-context"
cp "$OUT/tss-enclave" "$OUT/eif-context/enclave"
cp "$AWS_ROOT" "$OUT/eif-context/aws-nitro-root.pem"
cp "$AMAZON_BUNDLE" "$OUT/eif-context/amazon-trust-roots.pem"
# The ENTRYPOINT is part of the image, so these flags are measured into PCR0.
entry="\"/enclave\", \"--listen\", \"vsock:5000\", \"--kms-relay\", \"vsock:3:$KMS_RELAY_PORT\""
entry+=", \"--kms-endpoint\", \"https://kms.$KMS_REGION.amazonaws.com\", \"--kms-region\", \"$KMS_REGION\""
entry+=", \"--kms-key-id\", \"$KMS_KEY_ID\""
for img in "${PEER_IMAGES[@]}"; do entry+=", \"--peer-image-sha384\", \"${img,,}\""; done
sed "s|^ENTRYPOINT .*|ENTRYPOINT [$entry]|" "$ROOT/eif/Dockerfile" > "$OUT/eif-context/Dockerfile"
grep -q -- "--kms-key-id" "$OUT/eif-context/Dockerfile" || { echo "package: eif/Dockerfile has no ENTRYPOINT line to fill in" >&2; exit 1; }
echo "[package] done: $OUT/tss-host, $OUT/tss and the EIF build context $OUT/eif-context" >&2
echo "[package] next (on a Nitro-capable build host): docker build -t tss-enclave $OUT/eif-context && nitro-cli build-enclave --docker-uri tss-enclave:latest --output-file $OUT/tss-enclave.eif" >&2
