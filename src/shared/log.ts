/**
 * The one log writer of the enclave, the host and the KMS stand-in: a JSON line per event on
 * stderr, `{"at": ISO time, "src": process kind, "event": name, ...fields}`.
 *
 * Hand-written rather than pino on purpose: the enclave's bundle is measured into PCR0 and its
 * console is visible only for debug-mode enclaves, so it gets no logging framework (pino would
 * add worker-thread transports and several packages to the measured image), and three processes
 * writing one small line format need nothing more.
 *
 * Secrets: callers log public facts only (ids, codes, counts), never a share, data key or
 * keep-state. As a backstop, byte values (Uint8Array, Buffer, ArrayBuffer) are never written,
 * only their length, so key material passed by mistake cannot reach a log.
 */

export type LogFields = Record<string, unknown>;
export type Logger = (event: string, fields?: LogFields) => void;

/** Byte values become "[n bytes]"; bigints become strings instead of throwing. */
function publicValue(this: unknown, key: string, value: unknown): unknown {
  // `this[key]` is the value before toJSON, which turns a Buffer into an object of its bytes.
  const raw = (this as Record<string, unknown>)[key];
  if (ArrayBuffer.isView(raw) || raw instanceof ArrayBuffer) return `[${raw.byteLength} bytes]`;
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** One JSON line, or a line that says the fields could not be written (logging never throws). */
export function logLine(src: string, event: string, fields: LogFields = {}): string {
  const at = new Date().toISOString();
  try {
    // The three names come first and cannot be overwritten by a field of the same name.
    return JSON.stringify(
      Object.assign({ at, src, event }, fields, { at, src, event }),
      publicValue,
    );
  } catch {
    return JSON.stringify({ at, src, event, log_error: "fields not serialisable" });
  }
}

export function jsonLogger(
  src: string,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  return (event, fields) => write(logLine(src, event, fields));
}
