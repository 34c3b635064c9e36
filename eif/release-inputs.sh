# Sourced by eif/build.sh (which build/package.sh runs), so the pins live in
# one place: the enclave release's flags, checked, and its CA roots,
# checked against their pins. The caller sets RELEASE_TOOL (for messages) and
# OUT (the default --out), then calls release_parse_args "$@".
#
# The AWS Nitro root certificate goes into the image (so it is measured into
# PCR0) only if its SHA-256 fingerprint is the pinned one; so do the Amazon
# Trust Services roots KMS's TLS certificate must chain to (Debian's
# /usr/share/ca-certificates/mozilla/Amazon_Root_CA_{1..4}.crt, each pinned;
# src/attestation/aws-root.ts AMAZON_TRUST_ROOTS_SHA256). The enclave checks
# every pin again when it loads them.
AWS_ROOT_PIN="641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"
AMAZON_DIR="/usr/share/ca-certificates/mozilla"
AMAZON_PINS=(
  8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E
  1BA5B2AA8C65401A82960118F80BEC4F62304D83CEC4713A19C39C011EA46DB4
  18CE6CFE7BF14E60B2E347B8DFE868CB31D02EBB3ADA271569F50343B46DB3A4
  E35D28419ED02025CFA69038CD623962458DA5C695FBDEA3C22B0BFB25897092
)
AWS_ROOT=""
KMS_REGION=""
KMS_KEY_ID=""
KMS_RELAY_PORT="8000"
PEER_IMAGES=()

sha256_fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' || true; }

# --aws-root PATH --kms-region R --kms-key-id ARN [--kms-relay-port N]
# [--peer-image-sha384 HEX]... [--out DIR]; -h prints the caller's header.
release_parse_args() {
  local usage=2 fp img
  while [ $# -gt 0 ]; do
    case "$1" in
      --aws-root) AWS_ROOT="$2"; shift 2 ;;
      --kms-region) KMS_REGION="$2"; shift 2 ;;
      --kms-key-id) KMS_KEY_ID="$2"; shift 2 ;;
      --kms-relay-port) KMS_RELAY_PORT="$2"; shift 2 ;;
      --peer-image-sha384) PEER_IMAGES+=("${2,,}"); shift 2 ;;
      --out) OUT="$2"; shift 2 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "$RELEASE_TOOL: unknown option $1 (see --help)" >&2; exit $usage ;;
    esac
  done
  [ -n "$AWS_ROOT" ] || { echo "$RELEASE_TOOL: --aws-root PATH (the AWS Nitro Enclaves root PEM) is required" >&2; exit $usage; }
  fp="$(sha256_fingerprint "$AWS_ROOT")"
  [ "$fp" = "$AWS_ROOT_PIN" ] || { echo "$RELEASE_TOOL: $AWS_ROOT is not the pinned AWS Nitro root certificate (SHA-256 fingerprint ${fp:-unreadable})" >&2; exit 1; }
  [[ "$KMS_REGION" =~ ^[a-z]{2}(-[a-z0-9]+){1,4}$ ]] || { echo "$RELEASE_TOOL: --kms-region REGION is required (e.g. eu-west-1)" >&2; exit $usage; }
  [[ "$KMS_KEY_ID" =~ ^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$ ]] || { echo "$RELEASE_TOOL: --kms-key-id must be the share-wrapping key's ARN" >&2; exit $usage; }
  [[ "$KMS_RELAY_PORT" =~ ^[0-9]{1,10}$ ]] || { echo "$RELEASE_TOOL: --kms-relay-port must be a number" >&2; exit $usage; }
  for img in "${PEER_IMAGES[@]}"; do
    [[ "$img" =~ ^[0-9a-f]{96}$ ]] || { echo "$RELEASE_TOOL: --peer-image-sha384 takes 96 hex digits" >&2; exit $usage; }
  done
}

# Writes Amazon Root CA 1..4, each checked against its pin, to FILE.
release_amazon_bundle() {
  local i crt afp
  : > "$1"
  for i in 1 2 3 4; do
    crt="$AMAZON_DIR/Amazon_Root_CA_$i.crt"
    afp="$(sha256_fingerprint "$crt")"
    [ "$afp" = "${AMAZON_PINS[$((i - 1))]}" ] || { echo "$RELEASE_TOOL: $crt is not the pinned Amazon Root CA $i (install ca-certificates; fingerprint ${afp:-unreadable})" >&2; exit 1; }
    cat "$crt" >> "$1"
  done
}

# The enclave's arguments, one a line (the image's /cmdline), for an
# executable at $1.
release_enclave_args() {
  local img
  printf '%s\n' "$1" --listen vsock:5000 --kms-relay "vsock:3:$KMS_RELAY_PORT" \
    --kms-endpoint "https://kms.$KMS_REGION.amazonaws.com" --kms-region "$KMS_REGION" --kms-key-id "$KMS_KEY_ID"
  for img in "${PEER_IMAGES[@]}"; do printf '%s\n' --peer-image-sha384 "$img"; done
}
