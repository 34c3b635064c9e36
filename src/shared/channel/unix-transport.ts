/**
 * The channel over a Unix domain socket, for development and tests (these
 * machines have no vsock loopback). Bun's event-driven sockets do the I/O.
 *
 * The socket file is made owner-only (0600) so other local users cannot talk
 * to a development enclave; there is a short window between bind and chmod,
 * acceptable for development. Production uses vsock-transport.ts.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import type { Socket, SocketHandler } from "bun";
import {
  ConnectionRegistry,
  StreamConnection,
  type ChannelConnection,
  type ChannelListener,
  type ListenOptions,
} from "./transport.ts";

export interface UnixListenOptions extends ListenOptions {
  /** Remove a leftover socket file at `path` (only if it is a socket) before binding. */
  removeStale?: boolean;
}

type Holder = { conn: UnixConnection | null };

class UnixConnection extends StreamConnection {
  constructor(
    private readonly socket: Socket<Holder>,
    label: string,
  ) {
    super(label);
  }

  protected rawWrite(bytes: Uint8Array): number {
    const n = this.socket.write(bytes);
    if (n < 0) throw new Error(`connection ${this.label}: write failed, socket closed`);
    return n;
  }

  protected rawClose(): void {
    // end() sends FIN after Bun's own buffer; our queue is already empty or dropped.
    this.socket.end();
  }

  // The handlers below are Bun's events, forwarded to the shared bookkeeping.
  onSocketData(chunk: Uint8Array): void {
    this.deliver(chunk);
  }
  onSocketDrain(): void {
    this.flush();
  }
  onSocketClose(error: Error | null): void {
    this.transportClosed(error);
  }
}

// binaryType "uint8array": Buffer's slice() is a view, an easy aliasing bug downstream.
function handlers(onOpen: (socket: Socket<Holder>) => void): SocketHandler<Holder, "uint8array"> {
  return {
    binaryType: "uint8array",
    open: onOpen,
    data: (s, chunk) => s.data.conn?.onSocketData(chunk),
    drain: (s) => s.data.conn?.onSocketDrain(),
    error: (s, err) => s.data.conn?.onSocketClose(err),
    close: (s, err) => s.data.conn?.onSocketClose(err ?? null),
  };
}

export function listenUnix(path: string, options: UnixListenOptions = {}): ChannelListener {
  if (options.removeStale) removeStaleSocket(path);
  const registry = new ConnectionRegistry(options);
  const label = `unix:${path}`;
  let server: ReturnType<typeof Bun.listen<Holder>>;
  try {
    server = Bun.listen<Holder>({
      unix: path,
      data: { conn: null },
      socket: handlers((socket) => {
        // Bun shares the listener's `data` object until each socket gets its own.
        const holder: Holder = { conn: null };
        socket.data = holder;
        holder.conn = new UnixConnection(socket, label);
        registry.add(holder.conn);
      }) as unknown as SocketHandler<Holder>,
    });
  } catch (e) {
    throw new Error(`cannot listen on ${label}: ${(e as Error).message}`, { cause: e });
  }
  chmodSync(path, 0o600);
  const ino = lstatSync(path).ino;
  return {
    address: label,
    onConnection: (cb) => registry.setAcceptor(cb),
    close: async () => {
      registry.closeAll();
      server.stop(true);
      // Unlink only our own socket file, not one a successor bound meanwhile.
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}

export async function dialUnix(path: string): Promise<ChannelConnection> {
  const label = `unix:${path}`;
  const holder: Holder = { conn: null };
  let failure: Error | null = null;
  let socket: Socket<Holder>;
  try {
    socket = await Bun.connect<Holder>({
      unix: path,
      data: holder,
      socket: {
        ...(handlers((s) => {
          holder.conn = new UnixConnection(s, label);
        }) as unknown as SocketHandler<Holder>),
        connectError: (_s, err) => {
          failure = err;
        },
      },
    });
  } catch (e) {
    const err = failure ?? (e as Error);
    const code = (err as { code?: unknown }).code;
    throw new Error(
      `cannot connect to ${label}: ${typeof code === "string" ? `${code} (${err.message})` : err.message}`,
      { cause: e },
    );
  }
  const conn = holder.conn as UnixConnection | null;
  if (!conn) {
    socket.terminate();
    throw new Error(`cannot connect to ${label}: socket opened without an open event`);
  }
  return conn;
}

function removeStaleSocket(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket())
    throw new Error(`cannot listen on unix:${path}: the path exists and is not a socket`);
  unlinkSync(path);
}
