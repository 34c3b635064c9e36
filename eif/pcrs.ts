/**
 * Reads an EIF (AWS Nitro Enclaves image format, version 4) and computes its
 * PCRs from the sections themselves, without eif_build's code, so that
 * eif/build.sh can check the values eif_build printed and the tests can
 * check the file. The definitions (aws-nitro-enclaves-image-format 0.3.0,
 * EifBuilder::measure and get_pcrs, which eif_build 0.2.1 calls):
 *
 *   extend(d) = SHA-384(48 zero bytes || d)   (a TPM-style extend of a zero PCR)
 *   PCR0 = extend(SHA-384(kernel || cmdline || ramdisk_1 || ... || ramdisk_n))
 *   PCR1 = extend(SHA-384(kernel || cmdline || ramdisk_1))
 *   PCR2 = extend(SHA-384(ramdisk_2 || ... || ramdisk_n))
 *
 * over the section payloads only (not the section headers, the metadata
 * section or the signature). The image's first ramdisk is the boot layer
 * (init and kernel modules), the rest is the application, so PCR1 names the
 * kernel, its command line and init, and PCR2 the enclave executable, its
 * libraries, its flags and its CA roots. Unsigned images have no PCR8.
 *
 * Layout: a 548-byte big-endian header (magic ".eif", u16 version, u16 flags,
 * u64 default memory, u64 default CPUs, u16 reserved, u16 section count,
 * u64[32] section offsets, u64[32] section sizes, u32 unused, u32 CRC-32 of
 * everything in the file except the CRC field), then sections, each a 12-byte
 * header (u16 type, u16 flags, u64 size) followed by its payload.
 *
 *   bun eif/pcrs.ts FILE.eif     prints {"PCR0": ..., "PCR1": ..., "PCR2": ...}
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export const EIF_HEADER_SIZE = 548;
const MAX_SECTIONS = 32;
export const SECTION = { kernel: 1, cmdline: 2, ramdisk: 3, signature: 4, metadata: 5 } as const;

export interface EifSection {
  type: number;
  offset: number;
  data: Uint8Array;
}

export interface EifInfo {
  version: number;
  flags: number;
  crcOk: boolean;
  sections: EifSection[];
  pcrs: { PCR0: string; PCR1: string; PCR2: string };
}

let crcTable: Uint32Array | undefined;
function crc32(chunks: Uint8Array[]): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of chunks)
    for (let i = 0; i < b.length; i++)
      c = (crcTable[(c ^ (b[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function sha384(chunks: Uint8Array[]): Buffer {
  const h = createHash("sha384");
  for (const c of chunks) h.update(c);
  return h.digest();
}

const extend = (digest: Buffer) => sha384([new Uint8Array(48), digest]).toString("hex");

export function readEif(bytes: Uint8Array): EifInfo {
  if (bytes.length < EIF_HEADER_SIZE) throw new Error("EIF: shorter than its header");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (Buffer.from(bytes.subarray(0, 4)).toString("latin1") !== ".eif")
    throw new Error("EIF: bad magic");
  const version = v.getUint16(4);
  const flags = v.getUint16(6);
  const count = v.getUint16(26);
  if (count > MAX_SECTIONS) throw new Error("EIF: too many sections");
  const sections: EifSection[] = [];
  for (let i = 0; i < count; i++) {
    const offset = Number(v.getBigUint64(28 + 8 * i));
    const size = Number(v.getBigUint64(28 + 8 * MAX_SECTIONS + 8 * i));
    if (offset < EIF_HEADER_SIZE || offset + 12 + size > bytes.length)
      throw new Error(`EIF: section ${i} out of bounds`);
    const type = v.getUint16(offset);
    if (Number(v.getBigUint64(offset + 4)) !== size)
      throw new Error(`EIF: section ${i} sizes disagree`);
    sections.push({ type, offset, data: bytes.subarray(offset + 12, offset + 12 + size) });
  }
  const crcOk =
    crc32([bytes.subarray(0, EIF_HEADER_SIZE - 4), bytes.subarray(EIF_HEADER_SIZE)]) ===
    v.getUint32(EIF_HEADER_SIZE - 4);
  const of = (t: number) => sections.filter((s) => s.type === t).map((s) => s.data);
  const [kernel, cmdline, ramdisks] = [
    of(SECTION.kernel),
    of(SECTION.cmdline),
    of(SECTION.ramdisk),
  ];
  if (kernel.length !== 1 || cmdline.length !== 1 || ramdisks.length < 1)
    throw new Error("EIF: needs one kernel, one cmdline and at least one ramdisk section");
  const boot = [...kernel, ...cmdline];
  return {
    version,
    flags,
    crcOk,
    sections,
    pcrs: {
      PCR0: extend(sha384([...boot, ...ramdisks])),
      PCR1: extend(sha384([...boot, ramdisks[0] as Uint8Array])),
      PCR2: extend(sha384(ramdisks.slice(1))),
    },
  };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: bun eif/pcrs.ts FILE.eif");
    process.exit(2);
  }
  const info = readEif(readFileSync(file));
  if (!info.crcOk) {
    console.error(`pcrs: ${file}: CRC-32 does not match`);
    process.exit(1);
  }
  console.log(JSON.stringify(info.pcrs));
}
