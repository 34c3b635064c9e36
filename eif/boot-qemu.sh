#!/usr/bin/env bash
# Boots an EIF's own kernel, command line and ramdisks in QEMU (software
# emulation, a plain PC: no Nitro hypervisor, no vsock device, no NSM), to
# check the part of the image that does not need them: the kernel starts
# /init, init mounts, loads every module, sends the boot heartbeat (which
# fails here), and runs /tss-enclave from the image with the image's glibc;
# the enclave then refuses to start without /dev/nsm, and init powers off.
#
#   eif/boot-qemu.sh dist/tss-enclave.eif      prints the serial console
#
# Installs Debian's qemu-system-x86 if missing. Takes about half a minute.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EIF="${1:?usage: eif/boot-qemu.sh FILE.eif}"
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "[boot-qemu] installing qemu-system-x86" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$ROOT/node_modules/.bin/bun" -e '
  import { readFileSync, writeFileSync } from "node:fs";
  import { readEif, SECTION } from "'"$ROOT"'/eif/pcrs.ts";
  const [eif, dir] = process.argv.slice(1);
  const info = readEif(readFileSync(eif));
  const of = (t) => info.sections.filter((s) => s.type === t).map((s) => s.data);
  writeFileSync(`${dir}/kernel`, of(SECTION.kernel)[0]);
  writeFileSync(`${dir}/cmdline`, of(SECTION.cmdline)[0]);
  // Concatenated archives, as the Nitro loader hands them to the kernel.
  writeFileSync(`${dir}/initrd`, Buffer.concat(of(SECTION.ramdisk)));
' "$EIF" "$WORK"
# -cpu max: the emulated CPU has the AVX2 Bun's runtime needs. 1 GiB as a
# small enclave would have. -no-reboot: init's power-off ends QEMU.
timeout 300 qemu-system-x86_64 -M pc -accel tcg -cpu max -m 1024 -smp 1 -nographic -no-reboot \
  -monitor none -serial stdio -kernel "$WORK/kernel" -initrd "$WORK/initrd" -append "$(cat "$WORK/cmdline")" </dev/null
