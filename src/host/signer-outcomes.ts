/**
 * A signer's copy of the answer to a client's sign request (docs/RELIABILITY.md "the same
 * request id is resubmitted after a coordinator loss"). Every DKLs23 signer's enclave returns
 * the whole signature in its phase-4 STEP reply, so each signer's host can keep the answer the
 * coordinator would have sent: when the coordinator dies after the signature exists but before
 * it answered, the planning round of a resubmission finds it on any live signer
 * (node-host.ts lookupRequest) and returns it, where running the request again would be refused
 * by the enclaves (`approval_replayed`) or sign a second time.
 *
 * What the host learns at start is the coordinator's word (client user, signers' node ids);
 * a lying coordinator could only file a signature under the wrong request, which it could
 * answer wrongly anyway. The signature is kept only if it verifies under the wallet's key.
 */
import type { Db } from "./store/index.ts";
import { getWallet, recordSignOutcome } from "./store/index.ts";
import type { CeremonyReply } from "../shared/wire/enclave-ops.ts";
import type { NodeStartRequest } from "../shared/wire/node-rpc.ts";
import { fromHex, toHex } from "../shared/hex.ts";
import { requestParamsHash } from "./planning.ts";
import { signatureVerifies, signingKey, signResult } from "./sign-result.ts";

interface Expected {
  client: string;
  requestId: string;
  walletId: string;
  digest: Uint8Array;
  path: string | undefined;
  signers: string[];
  coordinator: string;
}

export class SignerOutcomes {
  /** Sign sessions open here that answer a client request, by hex session id (start to phase 4). */
  private readonly open = new Map<string, Expected>();

  constructor(private readonly max: number) {}

  /** At a sign's start: what the answer will be filed under. `coordinator`: the starter. */
  remember(session: string, req: NodeStartRequest, coordinator: string): void {
    const { client, signerNodes, requestId, digest } = req;
    if (req.kind !== "sign" || !client || !signerNodes || !requestId || !digest) return;
    this.open.set(session, {
      client,
      requestId,
      walletId: req.walletId,
      digest,
      path: req.path,
      signers: signerNodes,
      coordinator,
    });
    // Bounded: sessions whose coordinator never stepped them to the end are the oldest entries.
    if (this.open.size > this.max) this.open.delete(this.open.keys().next().value!);
  }

  forget(session: string): void {
    this.open.delete(session);
  }

  /** After phase 4: keeps the answer when the reply carries a signature that verifies. */
  keep(db: Db, session: string, reply: CeremonyReply): boolean {
    const e = this.open.get(session);
    this.open.delete(session);
    const b = reply.signature;
    if (!e || !b || b.length !== 65) return false;
    const w = getWallet(db, e.walletId);
    if (!w) return false;
    const sig = { r: b.slice(0, 32), s: b.slice(32, 64), recoveryId: b[64]! };
    const key = { publicKey: w.publicKey, chainCode: w.chainCode, path: e.path };
    const pk = signingKey(key);
    if (!signatureVerifies(pk, e.digest, sig)) return false;
    const result = signResult(
      {
        walletId: e.walletId,
        ...key,
        digest: e.digest,
        sig,
        signers: e.signers,
        coordinator: e.coordinator,
      },
      pk,
    );
    // Best effort, on the signing path: a database another process holds locked fails at once.
    db.withoutWaiting(() =>
      recordSignOutcome(db, {
        clientUser: e.client,
        requestId: e.requestId,
        // As the coordinator hashes the client's request: a resubmission with other parameters is told apart.
        paramsHash: fromHex(
          requestParamsHash("sign", {
            walletId: e.walletId,
            digest: toHex(e.digest),
            path: e.path,
          }),
          32,
        ),
        ceremonyId: session,
        result: new TextEncoder().encode(JSON.stringify(result)),
      }),
    );
    return true;
  }
}
