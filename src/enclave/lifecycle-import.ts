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
 * The cluster operation is a DKG start that carries the envelope
 * (ceremonies.ts startImport): the enclave it is sealed to (the dealer)
 * opens it and deals each other participant its share in one
 * point-to-point peer message of the "import" ceremony (ImportSession below:
 * the peer envelope encrypts it to the recipient's attested channel key, so
 * the hosts relay ciphertext only), frees every share but its own, and from
 * then on each holder's share goes the DKG's way (pending, sealed, committed
 * with a certificate). The coordinator then runs a complete refresh at once,
 * since this enclave saw every share (src/host/key-import.ts).
 */
import { randomBytes } from "node:crypto";
import {
  encodeMessageHeader,
  HEADER_LEN,
  MAX_MESSAGE_LEN,
  type ProtocolMessage,
} from "../shared/wire/protocol-message.ts";
import {
  bufferOf,
  keyImportInfo,
  keyImportSuite,
  MAX_IMPORT_PARTIES,
  parseImportedKey,
  splitKeyImportEnvelope,
  type KeyImportContext,
} from "../shared/wire/key-import.ts";
import { KeyShare, rekey } from "./dkls23/binding.ts";
import { EnclaveError } from "./errors.ts";
import type { PeerKeys } from "./peer-keys.ts";

export { MAX_IMPORT_PARTIES };

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
    plain = await keys.withHpkeRecipientKey(
      (raw) => suite.kem.importKey("raw", raw, false),
      async (recipientKey) => {
        const recipient = await suite.createRecipientContext({
          recipientKey,
          enc: bufferOf(enc),
          info: bufferOf(info),
        });
        try {
          return new Uint8Array(await recipient.open(bufferOf(ciphertext)));
        } finally {
          // The context's exporter secret is plain bytes (its AEAD key a WebCrypto key): wiped.
          const exporter = (recipient as unknown as { exporterSecret?: unknown }).exporterSecret;
          if (exporter instanceof ArrayBuffer) new Uint8Array(exporter).fill(0);
        }
      },
    );
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

/**
 * One party's side of an import's dealing, in the ceremony registry's four
 * phases. The dealer's phase 1 sends each other party its share; everyone
 * else's phase 2 takes exactly one message, from the dealer, and keeps the
 * share in it; phases 3 and 4 carry nothing, and phase 4 yields this
 * party's share like a DKG's (generation 0, to be refreshed at once).
 */
export class ImportSession {
  private own: KeyShare | null = null;
  private dealt: KeyShare[];
  private closed = false;

  constructor(
    private readonly o: {
      me: number;
      dealer: number;
      threshold: number;
      parties: number;
      sessionId: Uint8Array;
      /** The dealer's: every party's share from openImportedKey (index k + 1 at k). */
      shares?: KeyShare[];
    },
  ) {
    this.dealt = o.shares ?? [];
    if ((o.me === o.dealer) !== (o.shares !== undefined))
      throw new EnclaveError("bad_request", "only the import's dealer holds the dealt shares");
  }

  phase1(): ProtocolMessage[] {
    this.check();
    if (this.o.me !== this.o.dealer) return [];
    const out: ProtocolMessage[] = [];
    try {
      for (const share of this.dealt) {
        if (share.index === this.o.me) {
          this.own = share;
          continue;
        }
        const body = share.toBytes();
        try {
          if (HEADER_LEN + body.length > MAX_MESSAGE_LEN)
            throw new EnclaveError("bad_request", "a dealt share does not fit one peer message");
          const header = {
            ceremony: "import" as const,
            phase: 1,
            from: this.o.me,
            to: share.index,
          };
          const bytes = new Uint8Array(HEADER_LEN + body.length);
          bytes.set(encodeMessageHeader({ ...header, sessionId: this.o.sessionId }), 0);
          bytes.set(body, HEADER_LEN);
          out.push({ ...header, sessionId: this.o.sessionId, bytes });
        } finally {
          body.fill(0);
        }
      }
      return out;
    } catch (e) {
      for (const m of out) m.bytes.fill(0);
      this.close();
      throw e;
    } finally {
      // The others' shares leave only as the messages above: this enclave forgets them now.
      for (const s of this.dealt) if (s !== this.own) s.free();
      this.dealt = [];
    }
  }

  phase2(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    this.check();
    if (this.o.me === this.o.dealer) {
      this.nothing(received);
      return [];
    }
    if (received.length !== 1) this.fail("expected exactly one dealt share");
    const m = received[0]!;
    if (m.ceremony !== "import" || m.from !== this.o.dealer || m.to !== this.o.me)
      this.fail("the dealt share must come from the dealer to this party");
    let share: KeyShare;
    try {
      // fromBytes validates the share and wipes its input; the caller wipes the message.
      share = KeyShare.fromBytes(m.bytes.slice(HEADER_LEN));
    } catch {
      this.fail("the dealt share does not parse");
    }
    if (
      share.index !== this.o.me ||
      share.threshold !== this.o.threshold ||
      share.parties !== this.o.parties ||
      share.generation !== 0
    ) {
      share.free();
      this.fail("the dealt share is for another party or sharing");
    }
    this.own = share;
    return [];
  }

  phase3(received: readonly ProtocolMessage[]): ProtocolMessage[] {
    this.check();
    this.nothing(received);
    return [];
  }

  phase4(received: readonly ProtocolMessage[]): KeyShare {
    this.check();
    this.nothing(received);
    const share = this.own;
    if (!share) this.fail("no share was dealt to this party");
    this.own = null;
    this.close();
    return share;
  }

  close(): void {
    this.closed = true;
    this.own?.free();
    this.own = null;
    for (const s of this.dealt) s.free();
    this.dealt = [];
  }

  private check(): void {
    if (this.closed) throw new EnclaveError("ceremony_failed", "the import session is closed");
  }

  private nothing(received: readonly ProtocolMessage[]): void {
    if (received.length > 0) this.fail("this phase of an import carries no messages");
  }

  private fail(message: string): never {
    this.close();
    throw new EnclaveError("ceremony_failed", `key import: ${message}`, this.o.dealer);
  }
}
