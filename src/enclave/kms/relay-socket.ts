/**
 * The enclave's way out to KMS: a byte stream to its host's KMS relay
 * (src/host/kms-relay.ts), which pipes it to the KMS endpoint, the pattern of
 * AWS's vsock-proxy. The stream carries TLS that this enclave opens and
 * verifies (kms-client.ts), so the relay sees only ciphertext.
 *
 * The relay is dialled over the same transports as the host channel
 * (src/shared/channel): `unix:PATH` in development, `vsock:CID:PORT` in
 * production (CID 3 is the parent instance). The connection is wrapped as a
 * node Duplex because node:tls runs over any Duplex (Bun's included,
 * checked under Bun 1.4.5 with tls.connect({socket}) over this wrapper).
 */
import { Duplex } from "node:stream";
import type { ChannelConnection } from "../../shared/channel/transport.ts";
import { dialUnix } from "../../shared/channel/unix-transport.ts";
import { dialVsock } from "../../shared/channel/vsock-transport.ts";

/** `unix:PATH` or `vsock:CID:PORT`. */
export const KMS_RELAY_PATTERN = /^(unix:\/.+|vsock:\d{1,10}:\d{1,10})$/;

export type RelayAddress =
  | { kind: "unix"; path: string }
  | { kind: "vsock"; cid: number; port: number };

/** Parses a --kms-relay value; throws on anything else. */
export function parseRelayAddress(text: string): RelayAddress {
  if (!KMS_RELAY_PATTERN.test(text))
    throw new Error("--kms-relay must be unix:/ABSOLUTE/PATH or vsock:CID:PORT");
  if (text.startsWith("unix:")) return { kind: "unix", path: text.slice("unix:".length) };
  const [, cid, port] = text.split(":");
  const c = Number(cid);
  const p = Number(port);
  if (c > 0xffff_ffff || p < 1 || p > 0xffff_ffff)
    throw new Error("--kms-relay vsock CID and port must be 32-bit, port > 0");
  return { kind: "vsock", cid: c, port: p };
}

/** A connected stream to the relay, as a Duplex for tls.connect({socket}). */
export async function dialRelay(address: RelayAddress): Promise<Duplex> {
  const conn =
    address.kind === "unix"
      ? await dialUnix(address.path)
      : await dialVsock(address.cid, address.port);
  return connectionAsDuplex(conn);
}

/** Adapts a channel connection (callback based, borrowed chunks) to a node Duplex. */
export function connectionAsDuplex(conn: ChannelConnection): Duplex {
  const stream = new Duplex({
    // The connection pushes as data arrives; there is nothing to pull.
    read() {},
    write(chunk: Buffer, _encoding, done) {
      try {
        // write() keeps the array: hand it a copy, because node may reuse `chunk`.
        conn.write(new Uint8Array(chunk));
        done();
      } catch (e) {
        done(e as Error);
      }
    },
    final(done) {
      conn.close();
      done();
    },
    destroy(error, done) {
      conn.close();
      done(error);
    },
  });
  // Chunks are borrowed for the callback's duration: copy them.
  conn.onData((chunk) => stream.push(Buffer.from(chunk)));
  conn.onClose((error) => {
    if (error) stream.destroy(error);
    else stream.push(null);
  });
  return stream;
}
