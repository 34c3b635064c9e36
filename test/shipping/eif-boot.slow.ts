/**
 * The enclave image boots as far as it can outside a Nitro Enclave
 * (eif/boot-qemu.sh: the EIF's own kernel, command line and ramdisks in
 * QEMU's software-emulated PC; no vsock device, no NSM): the kernel runs
 * /init, init loads the five modules in order, the boot heartbeat fails for
 * want of a vsock device, the production enclave executable starts from the
 * image (its glibc, its flags) and refuses to run without /dev/nsm, and init
 * powers off. What it cannot show: the Nitro hypervisor's virtio-mmio
 * devices binding to Debian's modules, /dev/nsm, the heartbeat's answer.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = new URL("../..", import.meta.url).pathname;
const AWS_ROOT = join(ROOT, "..", "shared", "fixtures", "nitro", "aws-nitro-enclaves-root-g1.pem");
const out = mkdtempSync(join(tmpdir(), "eif-boot-"));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the enclave image in QEMU", () => {
  it("boots to the enclave executable, which refuses without /dev/nsm, then powers off", () => {
    const b = spawnSync(
      "bash",
      [
        join(ROOT, "eif/build.sh"),
        ...["--aws-root", AWS_ROOT, "--kms-region", "eu-west-1"],
        ...[
          "--kms-key-id",
          "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ],
        ...["--out", out],
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 600_000 },
    );
    if (b.status !== 0) throw new Error(`eif/build.sh failed:\n${(b.stderr ?? "").slice(-4000)}`);
    const r = spawnSync("bash", [join(ROOT, "eif/boot-qemu.sh"), join(out, "tss-enclave.eif")], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 420_000,
    });
    const log = `${r.stdout ?? ""}${r.stderr ?? ""}`;
    expect(r.status, log.slice(-4000)).toBe(0);
    expect(log).toContain("Linux version 6.12.");
    const lines = log.split(/\r?\n/).filter((l) => l.startsWith("[init] loaded "));
    expect(lines.map((l) => l.slice("[init] loaded ".length).trim())).toEqual([
      "vsock.ko",
      "vmw_vsock_virtio_transport_common.ko",
      "vmw_vsock_virtio_transport.ko",
      "nsm.ko",
      "virtio_mmio.ko",
    ]);
    expect(log).toContain("[init] boot heartbeat to vsock 3:9000 failed");
    expect(log).toContain("[init] started /tss-enclave");
    expect(log).toMatch(/"event":"fatal","error":"\/dev\/nsm does not exist/);
    expect(log).toContain("[init] /tss-enclave exited (status 1); powering off");
    expect(log).toMatch(/reboot: Power down/);
  }, 900_000);
});
