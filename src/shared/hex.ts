/** Strict hex codecs: reject odd length and non-hex characters. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function fromHex(s: string, expectedBytes?: number): Uint8Array {
  const h = s.startsWith("0x") || s.startsWith("0X") ? s.slice(2) : s;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h))
    throw new Error(`not a hex string: ${JSON.stringify(s.slice(0, 80))}`);
  if (expectedBytes !== undefined && h.length !== expectedBytes * 2) {
    throw new Error(`expected ${expectedBytes} bytes of hex, got ${h.length / 2}`);
  }
  return new Uint8Array(Buffer.from(h, "hex"));
}
