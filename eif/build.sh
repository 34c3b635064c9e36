#!/usr/bin/env bash
# Builds the enclave image (a Nitro Enclaves EIF) without Docker or nitro-cli,
# and prints its PCRs. `npm run eif -- FLAGS` runs it.
#
#   eif/build.sh --aws-root PATH --kms-region R --kms-key-id ARN
#                [--kms-relay-port 8000] [--peer-image-sha384 HEX]... [--out dist]
#
# Writes OUT/tss-enclave.eif and OUT/tss-enclave.pcrs.json (PCR0, PCR1, PCR2,
# the file's SHA-256 and what went in). The flags (also
# build/package.sh's, which runs this): they become the enclave executable's arguments, stored
# in the image, so they are measured into PCR0 and PCR2 and no host can
# change them. Two builds from the same commit give the same bytes and PCRs
# (test/shipping/eif-reproducible.test.ts).
#
# The image (eif/README.md has the details):
#   kernel   Debian's linux-image-6.12 cloud kernel, exact version and .deb
#            SHA-256 pinned below (vsock, virtio-mmio and the mainline nsm
#            driver are modules there: loaded by init from the image)
#   cmdline  AWS's enclave command line, less "nomodules"
#   ramdisk1 (boot: PCR1) init (eif/init/init.c, gcc -static) and the modules
#   ramdisk2 (app: PCR2) tss-enclave (build/build-executables.sh), the glibc
#            it links (pinned libc6 and libgcc-s1 .debs, not the build
#            machine's), its flags, the pinned AWS Nitro root and Amazon roots
# assembled by AWS's eif_build 0.2.1 (crates.io; cargo install --locked,
# with the lock file the crate ships), and the PCRs checked again by
# eif/pcrs.ts, which computes them from the file independently.
#
# Fetched once into .tmp/eif/ (ignored): the .debs (apt-get download; Debian
# drops superseded versions from its mirrors, so a pin that is gone fails
# loudly: pick the current version, update VERSION and SHA-256 here, and the
# PCRs change) and the eif_build binary.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
CACHE="$ROOT/.tmp/eif"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
log() { printf '[eif] %s\n' "$*" >&2; }
die() { printf 'eif: %s\n' "$*" >&2; exit 1; }

# Pinned inputs. package=version sha256-of-the-.deb
KERNEL_DEB="linux-image-6.12.117+deb12-cloud-amd64=6.12.117-1~deb12u1 5195b288dec79e2981d6b84457f38b7ce7310a2d702930ec7d07209c7f78ce37"
LIBC_DEB="libc6=2.36-9+deb12u14 ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf"
LIBGCC_DEB="libgcc-s1=12.2.0-14+deb12u1 3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7"
EIF_BUILD_VERSION="0.2.1"
# Loaded by init in this order (dependencies first; no modules.dep in the image).
MODULES=(
  net/vmw_vsock/vsock
  net/vmw_vsock/vmw_vsock_virtio_transport_common
  net/vmw_vsock/vmw_vsock_virtio_transport
  drivers/misc/nsm
  drivers/virtio/virtio_mmio
)
# AWS's enclave kernel command line (aws-nitro-enclaves-cli blobs/x86_64/cmdline)
# without "nomodules". The hypervisor describes the virtio-mmio devices (vsock,
# NSM) itself: that line has no virtio_mmio.device=, which Debian's kernel
# could not parse anyway (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set).
CMDLINE="reboot=k panic=30 pci=off console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on"
# The shared libraries bun-compiled executables link (checked against the
# executable's DT_NEEDED below), plus libgcc_s, which glibc dlopens to unwind.
LIBS=(libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2)

# Flags and pins (eif/release-inputs.sh).
RELEASE_TOOL=eif
# shellcheck source=eif/release-inputs.sh
. "$ROOT/eif/release-inputs.sh"
release_parse_args "$@"
T0=$(date +%s)
mkdir -p "$OUT" "$CACHE/debs"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/app"

# The time every archive entry and the metadata carry: SOURCE_DATE_EPOCH if
# set, else the commit's time (so a rebuild of the commit matches), else 0.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=0
  if [ "$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null)" = "$ROOT" ]; then
    SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct)"
  fi
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be seconds since the epoch"
export SOURCE_DATE_EPOCH

# Set-up: Debian tools this needs (the project's Node/Bun come from build/setup.sh).
need=()
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v readelf >/dev/null || need+=(binutils)
command -v xz >/dev/null || need+=(xz-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev) # eif_build links OpenSSL (enclave signing)
[ -d "$AMAZON_DIR" ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
bash "$ROOT/build/setup.sh"
BUN="$ROOT/node_modules/.bin/bun"

# The cache is filled by one build at a time (two may run at once, e.g. tests).
exec 9>"$CACHE/.lock"
flock 9

# Pinned .debs: apt-get download (the package lists are refreshed once if the
# version is not known yet), then the SHA-256 must match, then unpacked.
APT_UPDATED=0
fetch_deb() { # "name=version sha256" dest-dir
  local spec="${1% *}" sha="${1#* }" dest="$2" name version file
  name="${spec%%=*}"; version="${spec#*=}"
  file="$CACHE/debs/${name}_${version//:/%3a}_amd64.deb"
  if [ ! -f "$file" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
    rm -f "$file"
    log "apt-get download $spec"
    if ! (cd "$CACHE/debs" && apt-get download -qq "$spec" 2>/dev/null); then
      [ "$APT_UPDATED" = 1 ] || { $SUDO apt-get update -qq >&2 || true; APT_UPDATED=1; }
      (cd "$CACHE/debs" && apt-get download -qq "$spec") ||
        die "cannot download $spec (Debian may have superseded it: pin the current version and its SHA-256 in eif/build.sh)"
    fi
  fi
  [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ] || die "$file does not have the pinned SHA-256 $sha"
  mkdir -p "$dest"
  dpkg-deb -x "$file" "$dest"
}
fetch_deb "$KERNEL_DEB" "$WORK/kernel"
fetch_deb "$LIBC_DEB" "$WORK/libc"
fetch_deb "$LIBGCC_DEB" "$WORK/libc"
KVER="$(basename "$(ls -d "$WORK"/kernel/lib/modules/*)")"
VMLINUZ="$WORK/kernel/boot/vmlinuz-$KVER"
KCONFIG="$WORK/kernel/boot/config-$KVER"
# What the image relies on, from the kernel's own config: built in (y) or a
# module (m) that init loads. Anything else fails the build.
for opt in VSOCKETS VIRTIO_VSOCKETS VIRTIO_VSOCKETS_COMMON NSM VIRTIO_MMIO; do
  grep -qE "^CONFIG_$opt=m$" "$KCONFIG" ||
    die "kernel $KVER: CONFIG_$opt is not =m (update MODULES in eif/build.sh to the config)"
done
for opt in VIRTIO DEVTMPFS BLK_DEV_INITRD RD_GZIP SERIAL_8250 UNIX HW_RANDOM ACPI MODULE_DECOMPRESS; do
  grep -qE "^CONFIG_$opt=y$" "$KCONFIG" || die "kernel $KVER: CONFIG_$opt is not built in"
done

# eif_build: AWS's assembler, built once from crates.io with its own lock file.
EIF_BUILD="$CACHE/tools/bin/eif_build"
if [ ! -x "$EIF_BUILD" ] || [ "$(cat "$CACHE/tools/version" 2>/dev/null)" != "$EIF_BUILD_VERSION" ]; then
  log "cargo install eif_build $EIF_BUILD_VERSION --locked (about a minute, once)"
  cargo install eif_build --version "=$EIF_BUILD_VERSION" --locked --root "$CACHE/tools" >&2
  echo "$EIF_BUILD_VERSION" > "$CACHE/tools/version"
fi
flock -u 9

# init: static, stripped, no build path or time in it (same compiler, same bytes).
log "init (gcc -static -Os)"
(cd "$ROOT/eif/init" && gcc -static -Os -s -Wall -Wextra -Werror -ffile-prefix-map="$ROOT"=. \
  -Wl,--build-id=none -o "$WORK/init" init.c)

# The production enclave executable.
log "tss-enclave (build/build-executables.sh)"
bash "$ROOT/build/build-executables.sh" --out "$WORK/app" --only tss-enclave >&2
EXE="$WORK/app/tss-enclave"
[ -x "$EXE" ] || die "build/build-executables.sh made no tss-enclave"
[ "$(readelf -l "$EXE" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')" = /lib64/ld-linux-x86-64.so.2 ] ||
  die "tss-enclave does not use /lib64/ld-linux-x86-64.so.2"
for lib in $(readelf -d "$EXE" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  [[ " ${LIBS[*]} ld-linux-x86-64.so.2 " =~ " $lib " ]] || die "tss-enclave needs $lib, which the image does not ship (add it to LIBS)"
done

# The CA roots, each checked against its pin (eif/release-inputs.sh), and
# the enclave's arguments, one a line: the image's /cmdline.
cp "$AWS_ROOT" "$WORK/app/aws-nitro-root.pem"
release_amazon_bundle "$WORK/app/amazon-trust-roots.pem"
release_enclave_args /tss-enclave > "$WORK/app/cmdline"

# The two ramdisks. Modules are unpacked from .ko.xz (finit_module gets plain
# ELF; their Debian signatures stay appended).
mkdir -p "$WORK/modules"
{
  echo "file init 0755 $WORK/init"
  for d in dev proc sys tmp run; do echo "dir $d 0755"; done
  echo "char dev/console 0600 5 1"
  for m in "${MODULES[@]}"; do
    ko="$(basename "$m").ko"
    xz -dc "$WORK/kernel/lib/modules/$KVER/kernel/$m.ko.xz" > "$WORK/modules/$ko"
    echo "file modules/$ko 0644 $WORK/modules/$ko"
  done
  for m in "${MODULES[@]}"; do echo "$(basename "$m").ko"; done > "$WORK/modules/order"
  echo "file modules/order 0644 $WORK/modules/order"
} > "$WORK/boot.manifest"
L="$WORK/libc/lib/x86_64-linux-gnu"
{
  echo "file tss-enclave 0755 $EXE"
  echo "file cmdline 0644 $WORK/app/cmdline"
  echo "file aws-nitro-root.pem 0644 $WORK/app/aws-nitro-root.pem"
  echo "file amazon-trust-roots.pem 0644 $WORK/app/amazon-trust-roots.pem"
  echo "file lib64/ld-linux-x86-64.so.2 0755 $L/ld-linux-x86-64.so.2"
  for lib in "${LIBS[@]}" libgcc_s.so.1; do echo "file lib/x86_64-linux-gnu/$lib 0755 $L/$lib"; done
} > "$WORK/app.manifest"
log "ramdisks"
"$BUN" "$ROOT/eif/ramdisk.ts" --mtime "$SOURCE_DATE_EPOCH" --manifest "$WORK/boot.manifest" --out "$WORK/boot.cpio.gz"
"$BUN" "$ROOT/eif/ramdisk.ts" --mtime "$SOURCE_DATE_EPOCH" --manifest "$WORK/app.manifest" --out "$WORK/app.cpio.gz"

# Metadata (in the file, not in any PCR): what went in, no build machine facts
# that vary between two builds of one commit.
STAMP="$(bash "$ROOT/build/build-executables.sh" --print-stamp)"
BUILD_TIME="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%S+00:00)"
cat > "$WORK/metadata.json" <<EOF
{"tss_version":"${STAMP% *}","tss_commit":"${STAMP#* }","kernel_deb":"${KERNEL_DEB% *}","kernel_deb_sha256":"${KERNEL_DEB#* }","libc6_deb":"${LIBC_DEB% *}","libgcc_s1_deb":"${LIBGCC_DEB% *}","init_cc":"$(gcc -dumpfullversion)"}
EOF
log "eif_build"
EIF="$OUT/tss-enclave.eif"
"$EIF_BUILD" --kernel "$VMLINUZ" --kernel_config "$KCONFIG" --cmdline "$CMDLINE" \
  --ramdisk "$WORK/boot.cpio.gz" --ramdisk "$WORK/app.cpio.gz" --output "$EIF" \
  --name tss-enclave --build-time "$BUILD_TIME" --metadata "$WORK/metadata.json" > "$WORK/eif_build.out"
# eif_build prints "Output file: ..." then the measurements as JSON.
sed -n '/^{/,/^}/p' "$WORK/eif_build.out" > "$WORK/eif_build.json"
CHECK="$("$BUN" "$ROOT/eif/pcrs.ts" "$EIF")"
SHA256="$(sha256sum "$EIF" | cut -d' ' -f1)"
"$BUN" -e '
  const [built, check, out, sha, size, kernel, epoch, stamp] = process.argv.slice(1);
  const a = JSON.parse(await Bun.file(built).text()), b = JSON.parse(check);
  for (const k of ["PCR0", "PCR1", "PCR2"])
    if (a[k] !== b[k]) { console.error(`eif: eif_build and eif/pcrs.ts disagree on ${k}`); process.exit(1); }
  if (!/384/.test(String(a.HashAlgorithm))) { console.error(`eif: unexpected hash ${a.HashAlgorithm}`); process.exit(1); }
  const [version, commit] = stamp.split(" ");
  const j = { PCR0: b.PCR0, PCR1: b.PCR1, PCR2: b.PCR2, hashAlgorithm: "SHA384", eif: "tss-enclave.eif",
    eifSha256: sha, eifBytes: Number(size), kernel, sourceDateEpoch: Number(epoch), version, commit };
  await Bun.write(out, `${JSON.stringify(j, null, 2)}\n`);
' "$WORK/eif_build.json" "$CHECK" "$OUT/tss-enclave.pcrs.json" "$SHA256" "$(stat -c %s "$EIF")" "${KERNEL_DEB% *}" \
  "$SOURCE_DATE_EPOCH" "$STAMP"
log "done in $(( $(date +%s) - T0 )) s: $EIF ($(( $(stat -c %s "$EIF") / 1048576 )) MB, sha256 $SHA256)"
"$BUN" -e 'const j = JSON.parse(await Bun.file(process.argv[1]).text()); for (const k of ["PCR0", "PCR1", "PCR2"]) console.log(`${k} ${j[k]}`);' \
  "$OUT/tss-enclave.pcrs.json"
log "PCRs also in $OUT/tss-enclave.pcrs.json"
