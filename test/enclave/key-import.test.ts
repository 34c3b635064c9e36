/**
 * Key import's two halves (issue 11 item 2, the part that exists): a client
 * verifies an enclave's attestation document and seals a @noble/curves key to
 * the X25519 channel key it binds (HPKE, src/shared/wire/key-import.ts); that
 * enclave opens it under the context it builds itself and splits the key with
 * rekey. The shares sign under the key's own address, the plaintext is in
 * nothing the client sent, and any other recipient, context or a tampered
 * envelope opens nothing.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { describe, expect, it } from "vitest";
import { TssError } from "../../src/client/errors.ts";
import { importRecipient, sealKeyForEnclave } from "../../src/client/key-import.ts";
import type { WalletTrust } from "../../src/client/wallet-verification.ts";
import { createDevelopmentPki } from "../../src/dev/dev-pki.ts";
import { refreshInProcess, signInProcess } from "../../src/dev/in-process.ts";
import { ethAddress } from "../../src/enclave/dkls23/binding.ts";
import { IMPORT_FAILED_MESSAGE, openImportedKey } from "../../src/enclave/lifecycle-import.ts";
import { PeerKeys } from "../../src/enclave/peer-keys.ts";
import { toHex } from "../../src/shared/hex.ts";
import { verifySignature } from "../../src/shared/signature.ts";
import { KEY_IMPORT_ENVELOPE_BYTES } from "../../src/shared/wire/key-import.ts";
import { fakeEnclave } from "../client/fake-vouchers.ts";
import { thrown } from "../helpers/thrown.ts";
import { fromJson, type Json } from "../vectors/vector-json.ts";

const pki = createDevelopmentPki();
const IMAGE = new Uint8Array(48).fill(0xab);
const trust: WalletTrust = {
  roots: [{ der: pki.root.der, development: true }],
  allowDevelopment: true,
  imageHashes: [toHex(IMAGE)],
};
const context = { walletId: "w_imported", requestId: "import-1", threshold: 3, parties: 5 };

async function sealed(secretKey: Uint8Array, chainCode?: Uint8Array) {
  const enclave = fakeEnclave(pki, IMAGE);
  const recipient = importRecipient(enclave.document, trust);
  const envelope = await sealKeyForEnclave({
    recipient,
    ...context,
    secretKey: secretKey.slice(),
    ...(chainCode ? { chainCode: chainCode.slice() } : {}),
  });
  return { enclave, envelope };
}

const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => null,
    (x: unknown) => x as Error,
  );
  expect(e?.message).toBe(IMPORT_FAILED_MESSAGE);
};

describe("key import", () => {
  it("a @noble/curves key sealed to an attested enclave is split there into 3-of-5 shares that sign under its address", async () => {
    const secretKey = secp256k1.utils.randomSecretKey();
    const chainCode = randomBytes(32);
    const publicKey = secp256k1.getPublicKey(secretKey, true);
    const { enclave, envelope } = await sealed(secretKey, chainCode);
    expect(envelope.length).toBe(KEY_IMPORT_ENVELOPE_BYTES[1]);
    // What the client sends holds neither the key nor the chain code, raw or as hex.
    const sent = Buffer.from(envelope);
    for (const secret of [secretKey, chainCode]) {
      expect(sent.indexOf(Buffer.from(secret))).toBe(-1);
      expect(sent.toString("latin1").includes(toHex(secret))).toBe(false);
    }
    const shares = await openImportedKey(enclave.keys, envelope, context);
    expect(shares.map((s) => s.index)).toEqual([1, 2, 3, 4, 5]);
    expect(toHex(shares[0]!.publicKey)).toBe(toHex(publicKey));
    expect(ethAddress(shares[0]!.publicKey)).toBe(
      ethAddress(secp256k1.getPublicKey(secretKey, false)),
    );
    const digest = randomBytes(32);
    expect(verifySignature(publicKey, digest, signInProcess(shares, [2, 3, 5], digest)[0]!)).toBe(
      true,
    );
    // The refresh that must follow an import keeps the key.
    const fresh = refreshInProcess(shares);
    expect(verifySignature(publicKey, digest, signInProcess(fresh, [1, 4, 5], digest)[0]!)).toBe(
      true,
    );
  });

  it("wipes the caller's buffers; without a chain code the envelope is shorter", async () => {
    const enclave = fakeEnclave(pki, IMAGE);
    const secretKey = secp256k1.utils.randomSecretKey();
    const copy = secretKey.slice();
    const envelope = await sealKeyForEnclave({
      recipient: importRecipient(enclave.document, trust),
      ...context,
      secretKey: copy,
    });
    expect(copy.every((b) => b === 0)).toBe(true);
    expect(envelope.length).toBe(KEY_IMPORT_ENVELOPE_BYTES[0]);
    const shares = await openImportedKey(enclave.keys, envelope, context);
    expect(toHex(shares[0]!.publicKey)).toBe(toHex(secp256k1.getPublicKey(secretKey, true)));
  });

  it("the HPKE recipient key object is wiped once the envelope is opened, the channel secret not", async () => {
    const keys = new PeerKeys();
    const peer = new PeerKeys();
    const before = toHex(keys.sharedSecret(peer.x25519Public));
    // @hpke's pure-JS X25519 key object (XCryptoKey) keeps the raw secret in `key`.
    let imported: { key: Uint8Array } | undefined;
    const seen = await keys.withHpkeRecipientKey(
      async (raw) => {
        imported = { key: new Uint8Array(raw.slice(0)) };
        return imported;
      },
      async (k) => k.key.some((b) => b !== 0),
    );
    expect(seen).toBe(true);
    expect(imported!.key.every((b) => b === 0)).toBe(true);
    // Only copies were wiped: the boot's channel key still works.
    expect(toHex(keys.sharedSecret(peer.x25519Public))).toBe(before);
  });

  it("opens nothing for another enclave boot, another context, or a tampered envelope, all with one error", async () => {
    const { enclave, envelope } = await sealed(secp256k1.utils.randomSecretKey());
    await failure(openImportedKey(fakeEnclave(pki, IMAGE).keys, envelope, context));
    for (const other of [
      { walletId: "w_other" },
      { requestId: "import-2" },
      { threshold: 2 },
      { parties: 4 },
    ])
      await failure(openImportedKey(enclave.keys, envelope, { ...context, ...other }));
    for (const at of [0, 1, 40, envelope.length - 1]) {
      const bad = envelope.slice();
      bad[at]! ^= 1;
      await failure(openImportedKey(enclave.keys, bad, context));
    }
    await failure(openImportedKey(enclave.keys, envelope.subarray(1), context));
    // A key that is not one (zero) is refused inside, alike.
    const zero = await sealed(new Uint8Array(32));
    await failure(openImportedKey(zero.enclave.keys, zero.envelope, context));
  });

  it("opens the frozen vectors with the published recipient key", async () => {
    const file = JSON.parse(
      readFileSync(join(import.meta.dirname, "../vectors/key-import.json"), "utf8"),
    ) as { recipient: Json; envelopes: Json[] };
    const r = fromJson(file.recipient) as { x25519Secret: Uint8Array; ed25519Secret: Uint8Array };
    const keys = new PeerKeys(r);
    for (const raw of file.envelopes) {
      const v = fromJson(raw) as {
        fields: typeof context & { secretKey: Uint8Array };
        envelope: Uint8Array;
      };
      const { walletId, requestId, threshold, parties } = v.fields;
      const shares = await openImportedKey(keys, v.envelope, {
        walletId,
        requestId,
        threshold,
        parties,
      });
      expect(toHex(shares[0]!.publicKey)).toBe(
        toHex(secp256k1.getPublicKey(v.fields.secretKey, true)),
      );
      for (const s of shares) s.free();
    }
  });

  it("seals only to a document of a trusted root and an allowed image", () => {
    const other = fakeEnclave(createDevelopmentPki(), IMAGE);
    expect(thrown(TssError, () => importRecipient(other.document, trust)).code).toBe(
      "unverified_wallet",
    );
    const wrongImage = fakeEnclave(pki, new Uint8Array(48).fill(1));
    expect(thrown(TssError, () => importRecipient(wrongImage.document, trust)).message).toMatch(
      /allow-list/,
    );
    const stale = fakeEnclave(pki, IMAGE);
    expect(
      thrown(TssError, () => importRecipient(stale.document, trust, Date.now() + 3_600_000))
        .message,
    ).toMatch(/fresh/);
  });
});
