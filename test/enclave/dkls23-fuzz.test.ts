/**
 * Random and truncated bytes fed to every decoding entry point produce
 * errors, never a crash, a trap or a hang.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { dkgInProcess } from "../../src/dev/in-process.ts";
import {
  derivePublicKey,
  Dkg,
  ethAddress,
  KeyShare,
  packageInfo,
  Refresh,
  Signing,
} from "../../src/enclave/dkls23/binding.ts";
import {
  decodeList,
  encodeList,
  parseMessage,
  type ProtocolMessage,
} from "../../src/shared/wire/protocol-message.ts";

let shares: KeyShare[];
let realMessages: ProtocolMessage[];

beforeAll(() => {
  shares = dkgInProcess(2, 2);
  const s = new Signing({
    share: shares[1]!,
    sessionId: new Uint8Array(32),
    parties: [1, 2],
    digest: new Uint8Array(32),
  });
  realMessages = s.phase1();
  s.close();
});

function junk(round: number): Uint8Array {
  const lengths = [0, 1, 2, 5, 36, 37, 38, 100, 1000, 5000];
  return randomBytes(lengths[round % lengths.length]! + (round % 3));
}

/** A message-shaped input: valid header for sign phase 1 from party 1 to 2, random body. */
function framed(body: Uint8Array): Uint8Array {
  const m = new Uint8Array(37 + body.length);
  m.set([1, 2, 1, 1, 2], 0);
  m.set(body, 37);
  return m;
}

function expectError(f: () => unknown) {
  let threw = false;
  try {
    f();
  } catch (e) {
    threw = true;
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).not.toMatch(/trapped|unreachable|RuntimeError/);
  }
  expect(threw).toBe(true);
}

describe("hostile bytes", () => {
  it("share, package, key and path decoders refuse random and truncated input", () => {
    const real = shares[0]!.toBytes();
    const pkg = shares[0]!.publicPackage();
    for (let round = 0; round < 150; round++) {
      expectError(() => KeyShare.fromBytes(junk(round)));
      expectError(() => KeyShare.fromBytes(real.slice(0, (round * 7717) % real.length)));
      expectError(() => packageInfo(junk(round)));
      expectError(() => packageInfo(pkg.slice(0, (round * 131) % pkg.length)));
      expectError(() => derivePublicKey(junk(round), "m/0"));
      if (round % 10 === 0) expectError(() => ethAddress(junk(round)));
    }
    // A flipped byte inside a real share is refused or yields a share that validates;
    // what matters is that nothing traps.
    for (let round = 0; round < 60; round++) {
      const b = real.slice();
      b[(round * 3571) % b.length]! ^= 0x80;
      try {
        KeyShare.fromBytes(b).free();
      } catch (e) {
        expect((e as Error).name).toBe("DklsError");
      }
    }
  });

  it("every phase of every ceremony refuses random lists, random bodies and truncated real messages", () => {
    for (let round = 0; round < 40; round++) {
      const inputs: Uint8Array[][] = [
        [junk(round)],
        [framed(junk(round))],
        [realMessages[0]!.bytes.slice(0, (round * 37) % realMessages[0]!.bytes.length)],
      ];
      for (const input of inputs) {
        for (const make of [
          () => new Dkg({ threshold: 2, parties: 2, index: 2, sessionId: new Uint8Array(32) }),
          () =>
            new Signing({
              share: shares[1]!,
              sessionId: new Uint8Array(32),
              parties: [1, 2],
              digest: new Uint8Array(32),
            }),
          () => new Refresh({ share: shares[1]!, sessionId: new Uint8Array(32) }),
        ]) {
          for (const phase of [2, 3, 4]) {
            const s = make();
            s.phase1();
            expectError(() =>
              phase === 2 ? s.phase2(input) : phase === 3 ? s.phase3(input) : s.phase4(input),
            );
            s.close();
          }
        }
      }
    }
  });

  it("the shared envelope and list decoders are bounded", () => {
    for (let round = 0; round < 300; round++) {
      const b = junk(round);
      try {
        parseMessage(b);
      } catch (e) {
        expect((e as Error).name).toBe("MessageFormatError");
      }
      try {
        decodeList(b);
      } catch (e) {
        expect((e as Error).name).toBe("MessageFormatError");
      }
    }
    const huge = new Uint8Array(6);
    new DataView(huge.buffer).setUint16(0, 1);
    new DataView(huge.buffer).setUint32(2, 0xffffffff);
    expect(() => decodeList(huge)).toThrow(/out of bounds/);
    expect(() => decodeList(encodeList([new Uint8Array(3)]).slice(0, -1))).toThrow();
  });
});
