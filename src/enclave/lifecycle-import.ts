/**
 * The enclave's half of a key import (issue 11 item 2; envelope format in
 * src/shared/wire/key-import.ts): open the client's HPKE envelope with this
 * boot's X25519 channel key, under the info this enclave builds itself from
 * the import it is asked to run (wallet id, request id, t, n, its own
 * binding hash), and split the key with `rekey` into n shares. The
 * plaintext and every intermediate copy are wiped before this returns; any
 * failure (wrong recipient, wrong context, tampering, a value that is not a
 * key) is one uniform error.
 *
 * What is not built yet (docs/ARCHITECTURE.md, "Key lifecycle"): dealing the
 * shares to n attested peer enclaves over the peer channel, their sealing,
 * and the complete refresh that must follow, since this enclave saw every
 * share. Until then nothing in the service calls this.
 */
import { randomBytes } from "node:crypto";
import {
  bufferOf,
  keyImportInfo,
  keyImportSuite,
  parseImportedKey,
  splitKeyImportEnvelope,
  type KeyImportContext,
} from "../shared/wire/key-import.ts";
import { rekey, type KeyShare } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { PeerKeys } from "./peer-keys.ts";

export const IMPORT_FAILED_MESSAGE = "the key import envelope could not be opened";

/** The n shares of the imported key, party k + 1 at index k; the caller deals and frees them. */
export async function openImportedKey(
  keys: PeerKeys,
  envelope: Uint8Array,
  context: Omit<KeyImportContext, "recipientBindingHash">,
): Promise<KeyShare[]> {
  let plain: Uint8Array | null = null;
  try {
    const info = keyImportInfo({ ...context, recipientBindingHash: keys.bindingHash() });
    const { enc, ciphertext } = splitKeyImportEnvelope(envelope);
    const suite = keyImportSuite();
    const recipientKey = await keys.hpkeRecipientKey((raw) =>
      suite.kem.importKey("raw", raw, false),
    );
    const recipient = await suite.createRecipientContext({
      recipientKey,
      enc: bufferOf(enc),
      info: bufferOf(info),
    });
    plain = new Uint8Array(await recipient.open(bufferOf(ciphertext)));
    const { secretKey, chainCode } = parseImportedKey(plain);
    return rekey({
      threshold: context.threshold,
      parties: context.parties,
      // rekey wipes what it is given: copies, so `plain` is wiped below in one place.
      secretKey: secretKey.slice(),
      ...(chainCode === undefined ? {} : { chainCode: chainCode.slice() }),
      sessionId: randomBytes(32),
    });
  } catch {
    throw new EnclaveError("bad_request", IMPORT_FAILED_MESSAGE);
  } finally {
    plain?.fill(0);
  }
}
