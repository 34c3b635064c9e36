/**
 * The event loop of the FFI socket transport. Every socket is non-blocking
 * (SOCK_NONBLOCK), and one poller per JS thread calls poll(2) with a zero
 * timeout from a timer, so no call ever blocks. The timer runs immediately
 * again while sockets are busy and backs off to POLL_IDLE_MS when idle (about
 * a hundred cheap syscalls a second), and a write or dial switches it back to
 * busy because a reply is likely soon. The cost is up to POLL_IDLE_MS of added
 * latency on the first message after a quiet spell, small next to a
 * ceremony's network round trips.
 */
import { c } from "./socket-libc.ts";

export const POLL_IDLE_MS = 10;

export interface PollTarget {
  readonly fd: number;
  /** Events wanted now; 0 to skip this round. */
  interest(): number;
  ready(revents: number): void;
}

/** One per JS thread (module instances are per thread). */
class Poller {
  private readonly targets = new Set<PollTarget>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerDelay = 0;
  private delay = 0;

  add(t: PollTarget): void {
    this.targets.add(t);
    this.kick();
  }

  remove(t: PollTarget): void {
    this.targets.delete(t);
    if (this.targets.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Poll soon: something is expected to happen. */
  kick(): void {
    this.delay = 0;
    if (this.timer && this.timerDelay === 0) return;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDelay = ms;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = null;
    const list = [...this.targets].filter((t) => t.interest() !== 0);
    let active = false;
    if (list.length > 0) {
      // struct pollfd { int fd; short events; short revents; }, host byte order.
      const fds = new Int32Array(list.length * 2);
      const ev = new Int16Array(fds.buffer);
      list.forEach((t, i) => {
        fds[2 * i] = t.fd;
        ev[4 * i + 2] = t.interest();
      });
      const n = c().poll(fds, list.length, 0);
      if (n > 0) {
        active = true;
        list.forEach((t, i) => {
          const revents = ev[4 * i + 3]!;
          if (revents === 0 || !this.targets.has(t)) return;
          try {
            t.ready(revents);
          } catch (e) {
            // A throwing callback upstream is a bug to surface, but it must
            // not stop the loop every other socket depends on.
            queueMicrotask(() => {
              throw e;
            });
          }
        });
      }
    }
    if (this.targets.size === 0) return;
    this.delay = active ? 0 : Math.min(POLL_IDLE_MS, Math.max(1, this.delay * 2));
    // A kick during dispatch has already scheduled an immediate round.
    if (!this.timer) this.schedule(this.delay);
  }
}

let poller: Poller | null = null;
export const getPoller = (): Poller => (poller ??= new Poller());
