/**
 * The enclave image (eif/build.sh): two builds of the same tree into separate
 * directories give the same EIF, byte for byte, and so the same PCR0, PCR1
 * and PCR2; the JSON beside it holds the PCRs that eif/pcrs.ts recomputes
 * from the file's sections (independently of eif_build); the image holds
 * the measured flags, the production executable and the pinned roots, with
 * normalised archive headers; a different key ARN changes PCR0 and PCR2 but
 * not PCR1 (the boot layer); an unpinned AWS root is refused. Slow-ish: the
 * first build on a clean clone fetches the pinned .debs and builds eif_build
 * (about two minutes), later builds take seconds.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readEif, SECTION } from "../../eif/pcrs.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const FIXTURES = join(ROOT, "..", "shared", "fixtures", "nitro");
const AWS_ROOT = join(FIXTURES, "aws-nitro-enclaves-root-g1.pem");
const KEY_A = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_B = "arn:aws:kms:eu-west-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab";
const PEER = "ab".repeat(48);
const dirs: string[] = [];
// What eif/build.sh takes by default (the commit's time), read once: a commit
// landing between the builds must not make them differ.
const git = spawnSync("git", ["-C", ROOT, "log", "-1", "--format=%ct"], { encoding: "utf8" });
const EPOCH = /^[0-9]+$/.test(git.stdout?.trim() ?? "") ? git.stdout.trim() : "0";

interface Pcrs {
  PCR0: string;
  PCR1: string;
  PCR2: string;
  hashAlgorithm: string;
  eif: string;
  eifSha256: string;
  eifBytes: number;
  kernel: string;
  sourceDateEpoch: number;
  version: string;
  commit: string;
}

function build(key: string, awsRoot = AWS_ROOT) {
  const out = mkdtempSync(join(tmpdir(), "eif-out-"));
  dirs.push(out);
  const env = { ...process.env, SOURCE_DATE_EPOCH: EPOCH };
  const r = spawnSync(
    "bash",
    [
      join(ROOT, "eif/build.sh"),
      ...["--aws-root", awsRoot, "--kms-region", "eu-west-1", "--kms-key-id", key],
      ...["--peer-image-sha384", PEER, "--out", out],
    ],
    { cwd: ROOT, env, encoding: "utf8", timeout: 600_000 },
  );
  return { out, status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function built(key: string) {
  const r = build(key);
  if (r.status !== 0)
    throw new Error(`eif/build.sh failed (${r.status}):\n${r.stderr.slice(-4000)}`);
  const eif = readFileSync(join(r.out, "tss-enclave.eif"));
  const pcrs = JSON.parse(readFileSync(join(r.out, "tss-enclave.pcrs.json"), "utf8")) as Pcrs;
  return { ...r, eif, pcrs };
}

/** The entries of a cpio "newc" archive: name, mode, uid, gid, mtime, data. */
function cpioEntries(a: Uint8Array) {
  const td = new TextDecoder();
  const out: {
    name: string;
    mode: number;
    uid: number;
    gid: number;
    mtime: number;
    data: Uint8Array;
  }[] = [];
  let off = 0;
  for (;;) {
    const h = td.decode(a.subarray(off, off + 110));
    expect(h.slice(0, 6)).toBe("070701");
    const f = (i: number) => Number.parseInt(h.slice(6 + 8 * i, 14 + 8 * i), 16);
    const [mode, uid, gid, mtime, size, namesize] = [f(1), f(2), f(3), f(5), f(6), f(11)];
    const name = td.decode(a.subarray(off + 110, off + 110 + namesize - 1));
    off += 110 + namesize;
    off += (4 - (off % 4)) % 4;
    if (name === "TRAILER!!!") return out;
    out.push({ name, mode, uid, gid, mtime, data: a.subarray(off, off + size) });
    off += size;
    off += (4 - (off % 4)) % 4;
  }
}

let a: ReturnType<typeof built>;
let b: ReturnType<typeof built>;

beforeAll(() => {
  a = built(KEY_A);
  b = built(KEY_A);
}, 900_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("eif/build.sh", () => {
  it("two builds of one tree give the same file and the same PCRs", () => {
    expect(b.pcrs.PCR0).toBe(a.pcrs.PCR0);
    expect(b.pcrs.PCR1).toBe(a.pcrs.PCR1);
    expect(b.pcrs.PCR2).toBe(a.pcrs.PCR2);
    expect(createHash("sha256").update(b.eif).digest("hex")).toBe(
      createHash("sha256").update(a.eif).digest("hex"),
    );
    expect(Buffer.compare(a.eif, b.eif)).toBe(0);
  });

  it("writes the PCRs as JSON, as eif/pcrs.ts recomputes them from the file, and prints them", () => {
    const p = a.pcrs;
    for (const k of ["PCR0", "PCR1", "PCR2"] as const) expect(p[k]).toMatch(/^[0-9a-f]{96}$/);
    expect(new Set([p.PCR0, p.PCR1, p.PCR2]).size).toBe(3);
    expect(p.hashAlgorithm).toBe("SHA384");
    expect(p.eif).toBe("tss-enclave.eif");
    expect(p.eifSha256).toBe(createHash("sha256").update(a.eif).digest("hex"));
    expect(p.eifBytes).toBe(a.eif.length);
    expect(p.kernel).toMatch(/^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64=/);
    expect(p.sourceDateEpoch).toBe(Number(EPOCH));
    const info = readEif(a.eif);
    expect(info.crcOk).toBe(true);
    expect(info.pcrs).toEqual({ PCR0: p.PCR0, PCR1: p.PCR1, PCR2: p.PCR2 });
    for (const k of ["PCR0", "PCR1", "PCR2"] as const) expect(a.stdout).toContain(`${k} ${p[k]}`);
  });

  it("holds the kernel, the measured flags, the executable, its libraries and the pinned roots", () => {
    const info = readEif(a.eif);
    const types = info.sections.map((s) => s.type);
    expect(types.filter((t) => t === SECTION.kernel)).toHaveLength(1);
    expect(types.filter((t) => t === SECTION.ramdisk)).toHaveLength(2);
    expect(types).not.toContain(SECTION.signature);
    const cmdline = new TextDecoder().decode(
      info.sections.find((s) => s.type === SECTION.cmdline)?.data,
    );
    expect(cmdline).toContain("console=ttyS0");
    expect(cmdline).not.toContain("nomodules"); // init loads the vsock and nsm modules
    const [boot, app] = info.sections
      .filter((s) => s.type === SECTION.ramdisk)
      .map((s) => cpioEntries(gunzipSync(s.data)));
    const all = [...(boot ?? []), ...(app ?? [])];
    for (const e of all) {
      expect([e.uid, e.gid]).toEqual([0, 0]);
      expect(e.mtime).toBe(a.pcrs.sourceDateEpoch);
    }
    const names = (es: typeof all) => es.map((e) => e.name);
    expect(names(boot ?? [])).toEqual(
      expect.arrayContaining([
        "init",
        "dev/console",
        "modules/nsm.ko",
        "modules/vsock.ko",
        "modules/order",
      ]),
    );
    const file = (n: string) => all.find((e) => e.name === n);
    expect(file("init")?.mode).toBe(0o100755);
    expect(new TextDecoder().decode(file("modules/order")?.data).trim().split("\n")).toEqual([
      "vsock.ko",
      "vmw_vsock_virtio_transport_common.ko",
      "vmw_vsock_virtio_transport.ko",
      "nsm.ko",
      "virtio_mmio.ko",
    ]);
    const args = new TextDecoder().decode(file("cmdline")?.data).trim().split("\n");
    expect(args).toEqual([
      "/tss-enclave",
      ...["--listen", "vsock:5000", "--kms-relay", "vsock:3:8000"],
      ...["--kms-endpoint", "https://kms.eu-west-1.amazonaws.com", "--kms-region", "eu-west-1"],
      ...["--kms-key-id", KEY_A, "--peer-image-sha384", PEER],
    ]);
    expect(Buffer.from(file("aws-nitro-root.pem")?.data ?? []).equals(readFileSync(AWS_ROOT))).toBe(
      true,
    );
    expect(
      new TextDecoder().decode(file("amazon-trust-roots.pem")?.data).match(/BEGIN CERTIFICATE/g),
    ).toHaveLength(4);
    const exe = file("tss-enclave");
    expect(exe?.mode).toBe(0o100755);
    expect(Buffer.from(exe?.data.subarray(0, 4) ?? []).toString("latin1")).toBe("\x7fELF");
    for (const lib of ["lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"])
      expect(file(lib)?.data.length).toBeGreaterThan(100_000);
  });

  it("another key ARN changes PCR0 and PCR2 (the application), not PCR1 (kernel, cmdline, init)", () => {
    const c = built(KEY_B);
    expect(c.pcrs.PCR1).toBe(a.pcrs.PCR1);
    expect(c.pcrs.PCR0).not.toBe(a.pcrs.PCR0);
    expect(c.pcrs.PCR2).not.toBe(a.pcrs.PCR2);
  }, 600_000);

  it("refuses an AWS root that is not the pinned one", () => {
    const r = build(KEY_A, "/usr/share/ca-certificates/mozilla/Amazon_Root_CA_1.crt");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("is not the pinned AWS Nitro root certificate");
  });
});
