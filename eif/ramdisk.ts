/**
 * Writes one gzip-compressed cpio "newc" archive (the initramfs format the
 * Linux kernel unpacks) from a manifest, with every header field fixed, so
 * that the same inputs give the same bytes and so the same PCRs:
 * entries sorted by path, parent directories added, inode numbers counted
 * from 1 in that order, uid/gid 0, nlink 1 (2 for directories), the mtime
 * given (SOURCE_DATE_EPOCH), modes from the manifest (never from the build
 * machine's umask or file system), device numbers 0 except for device nodes.
 * Written here rather than with GNU cpio so that no header field is taken
 * from the file system and /dev/console can be a node without mknod.
 *
 *   bun eif/ramdisk.ts --mtime EPOCH --manifest FILE --out FILE.cpio.gz
 *
 * Manifest lines (paths inside the image, no leading slash; # comments):
 *   dir   PATH MODE
 *   file  PATH MODE SOURCE
 *   char  PATH MODE MAJOR MINOR
 */
import { readFileSync, writeFileSync } from "node:fs";

type Entry =
  | { kind: "dir"; path: string; mode: number }
  | { kind: "file"; path: string; mode: number; data: Uint8Array }
  | { kind: "char"; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function fail(msg: string): never {
  console.error(`ramdisk: ${msg}`);
  process.exit(1);
}

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? process.argv[i + 1] : undefined;
  if (!v) fail(`${name} is required (see the header of eif/ramdisk.ts)`);
  return v;
}

function parseMode(s: string | undefined, line: string): number {
  if (!s || !/^[0-7]{3,4}$/.test(s)) fail(`bad mode in: ${line}`);
  return Number.parseInt(s, 8);
}

function checkPath(p: string | undefined, line: string): string {
  if (
    !p ||
    p.startsWith("/") ||
    p.endsWith("/") ||
    p.split("/").some((c) => c === "" || c === "." || c === "..")
  )
    fail(`bad path in: ${line}`);
  return p;
}

function parseManifest(text: string): Entry[] {
  const byPath = new Map<string, Entry>();
  const add = (e: Entry, line: string) => {
    if (byPath.has(e.path)) fail(`duplicate path in: ${line}`);
    byPath.set(e.path, e);
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [kind, p, mode, ...rest] = line.split(/\s+/);
    const path = checkPath(p, line);
    if (kind === "dir" && rest.length === 0) add({ kind, path, mode: parseMode(mode, line) }, line);
    else if (kind === "file" && rest.length === 1)
      add({ kind, path, mode: parseMode(mode, line), data: readFileSync(rest[0] as string) }, line);
    else if (kind === "char" && rest.length === 2)
      add(
        { kind, path, mode: parseMode(mode, line), major: Number(rest[0]), minor: Number(rest[1]) },
        line,
      );
    else fail(`bad manifest line: ${line}`);
  }
  // Every parent directory is in the archive (0755 unless listed), before its children.
  for (const p of [...byPath.keys()]) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const e = byPath.get(dir);
      if (!e) byPath.set(dir, { kind: "dir", path: dir, mode: 0o755 });
      else if (e.kind !== "dir") fail(`${dir} is both a file and a directory`);
    }
  }
  // Byte-wise order (not locale order): a parent sorts before its children.
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const enc = new TextEncoder();
const hex8 = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) fail(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
};
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(
  ino: number,
  mode: number,
  nlink: number,
  mtime: number,
  size: number,
  rdev: [number, number],
  name: string,
): Uint8Array {
  const nameBytes = enc.encode(`${name}\0`);
  const fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
  const head = enc.encode(`070701${fields.map(hex8).join("")}`);
  const out = new Uint8Array(head.length + nameBytes.length + pad4(head.length + nameBytes.length));
  out.set(head, 0);
  out.set(nameBytes, head.length);
  return out;
}

function cpio(entries: Entry[], mtime: number): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  entries.forEach((e, i) => {
    const ino = i + 1;
    if (e.kind === "dir") parts.push(header(ino, S_IFDIR | e.mode, 2, mtime, 0, [0, 0], e.path));
    else if (e.kind === "char")
      parts.push(header(ino, S_IFCHR | e.mode, 1, mtime, 0, [e.major, e.minor], e.path));
    else {
      parts.push(header(ino, S_IFREG | e.mode, 1, mtime, e.data.length, [0, 0], e.path));
      parts.push(e.data, new Uint8Array(pad4(e.data.length)));
    }
  });
  parts.push(header(0, 0, 1, 0, 0, [0, 0], "TRAILER!!!"));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const mtime = Number(arg("--mtime"));
if (!Number.isInteger(mtime) || mtime < 0) fail("--mtime must be seconds since the epoch");
const entries = parseManifest(readFileSync(arg("--manifest"), "utf8"));
const archive = cpio(entries, mtime);
// gzip through Bun's zlib (pinned with the bun package), header mtime 0: same input, same bytes.
writeFileSync(arg("--out"), Bun.gzipSync(archive, { level: 9 }));
console.error(
  `[ramdisk] ${entries.length} entries, ${(archive.length / 1048576).toFixed(1)} MB cpio -> ${arg("--out")}`,
);
