/*
 * PID 1 of the enclave image (eif/build.sh compiles it with gcc -static -Os).
 *
 * It does what AWS's own enclave init does, and nothing else:
 *   1. mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /tmp, /run,
 *      and puts /dev/console on stdin/stdout/stderr;
 *   2. loads the kernel modules listed in /modules/order with finit_module,
 *      in that order (vsock core, its virtio transport, virtio-mmio, nsm):
 *      Debian's cloud kernel builds them as modules, not in;
 *   3. waits (bounded) for /dev/nsm, then tells the parent instance the
 *      enclave booted: nitro-cli listens on vsock CID 3 port 9000 for one
 *      byte 0xB7 and echoes it back, and terminates an enclave that does not
 *      send it in time;
 *   4. runs /tss-enclave with the flags in /cmdline (one argument per line,
 *      written by eif/build.sh, so they are part of the image and measured
 *      into PCR0 and PCR2) and the fixed environment below, reaps children,
 *      and powers the enclave off when it exits (PID 1 must not exit: the
 *      kernel would panic).
 * No argument comes from the host: the kernel command line is measured too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PARENT_CID 3 /* the parent instance, as nitro-cli names it (VMADDR_CID_PARENT) */
#define HEARTBEAT_PORT 9000
#define HEARTBEAT_BYTE 0xB7
#define MAX_ARGS 64
#define MAX_FILE 8192

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("[init] ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void die(const char *what) {
  say("fatal: %s: %s", what, strerror(errno));
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long flags,
                         const char *data) {
  mkdir(dst, 0755);
  if (mount(src, dst, type, flags, data) != 0 && errno != EBUSY) die(dst);
}

static void console(void) {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return; /* no console: output is lost, the enclave still runs */
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  if (fd > 2) close(fd);
}

/* Reads a whole small file into buf (NUL-terminated); -1 if missing or too large. */
static ssize_t slurp(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n == cap - 1) {
      close(fd);
      errno = EFBIG;
      return -1;
    }
  }
  close(fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* /modules/order: one file name per line, loaded in that order (dependencies first). */
static void load_modules(void) {
  static char order[MAX_FILE];
  if (slurp("/modules/order", order, sizeof order) < 0) die("/modules/order");
  for (char *line = strtok(order, "\n"); line; line = strtok(NULL, "\n")) {
    char path[256];
    if (snprintf(path, sizeof path, "/modules/%s", line) >= (int)sizeof path) die("module name");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) die(path);
    close(fd);
    say("loaded %s", line);
  }
}

static void wait_for(const char *path, int tenths) {
  struct timespec t = {0, 100 * 1000 * 1000};
  for (int i = 0; i < tenths; i++) {
    if (access(path, F_OK) == 0) return;
    nanosleep(&t, NULL);
  }
  say("%s did not appear", path);
}

/* The boot heartbeat nitro-cli waits for (its eif_loader::enclave_ready). */
static void heartbeat(void) {
  struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = PARENT_CID, .svm_port = HEARTBEAT_PORT};
  unsigned char b = HEARTBEAT_BYTE;
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, &b, 1) != 1 ||
      read(fd, &b, 1) != 1 || b != HEARTBEAT_BYTE)
    say("boot heartbeat to vsock %d:%d failed: %s", PARENT_CID, HEARTBEAT_PORT, strerror(errno));
  if (fd >= 0) close(fd);
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "init: this is the enclave image's PID 1, not a program to run\n");
    return 2;
  }
  mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  console();
  mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_die("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, NULL);
  mount_or_die("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_or_die("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_or_die("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  load_modules();
  wait_for("/dev/nsm", 50);
  heartbeat();

  static char cmd[MAX_FILE];
  if (slurp("/cmdline", cmd, sizeof cmd) < 0) die("/cmdline");
  char *argv[MAX_ARGS + 1];
  int argc = 0;
  for (char *a = strtok(cmd, "\n"); a; a = strtok(NULL, "\n")) {
    if (argc == MAX_ARGS) {
      errno = E2BIG;
      die("/cmdline");
    }
    argv[argc++] = a;
  }
  argv[argc] = NULL;
  if (argc == 0) {
    errno = EINVAL;
    die("/cmdline");
  }
  char *envp[] = {"PATH=/", "HOME=/", "TMPDIR=/tmp", "TZ=UTC", "LANG=C.UTF-8", NULL};

  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    setsid();
    execve(argv[0], argv, envp);
    die(argv[0]);
  }
  say("started %s (pid %d)", argv[0], child);
  for (;;) {
    int status;
    pid_t p = wait(&status);
    if (p < 0 && errno == EINTR) continue;
    if (p == child || p < 0) {
      if (p == child)
        say("%s exited (%s %d); powering off", argv[0], WIFEXITED(status) ? "status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      sync();
      reboot(RB_POWER_OFF);
      die("reboot");
    }
  }
}
