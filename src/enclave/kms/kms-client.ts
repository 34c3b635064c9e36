/**
 * The enclave's own KMS client: the real @aws-sdk/client-kms (the kept
 * library the host and the stand-in's tests use too), whose HTTPS connections
 * are TLS sessions this enclave opens over its host's relay (relay-socket.ts)
 * and verifies against the roots it was configured with (production: the
 * Amazon Trust Services roots shipped in the image, so measured into PCR0;
 * development: a development CA, accepted only by the development entry).
 * TLS ends here, so the host relays ciphertext and cannot see or alter a KMS
 * request or response.
 *
 * Every call names this enclave's own attestation document as Recipient, so
 * KMS answers with CiphertextForRecipient (the data key encrypted to this
 * enclave's per-boot RSA key) and never with a plaintext.
 *
 * The SDK runs with everything explicit (region, credentials, endpoint, no
 * retries, no FIPS/dual-stack lookups), so it reads no environment or file.
 * Checked under Bun 1.4.5: KMSClient with `requestHandler: {httpsAgent}`
 * builds its NodeHttpHandler and the agent's asynchronous createConnection
 * carries the request over the relay; a wrong CA or host name is refused.
 */
import https from "node:https";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  type RecipientInfo,
} from "@aws-sdk/client-kms";
import { dialRelay, type RelayAddress } from "./relay-socket.ts";

// Named bounds, one per line, as every module here states them.
/** How long one KMS call may take, connection included; a stalling relay costs at most this. */
export const KMS_CALL_TIMEOUT_MS = 10_000;
/**
 * KMS calls in flight at once; the rest wait. Below the host relay's
 * connection cap (src/host/kms-relay.ts, 16), so a burst of loads queues here
 * instead of having connections refused by the relay.
 */
export const MAX_CONCURRENT_KMS_CALLS = 8;
/** Calls that may wait for a slot; beyond it a call fails at once (the host is flooding). */
export const MAX_WAITING_KMS_CALLS = 4096;
export const RECIPIENT_KEY_ALGORITHM = "RSAES_OAEP_SHA_256" as const;

export interface KmsSettings {
  relay: RelayAddress;
  /** https://HOST[:PORT]: the URL requests go to; HOST is the TLS name verified. */
  endpoint: string;
  region: string;
  /** The cluster's share-wrapping key: this enclave's own configuration, never the host's choice. */
  keyId: string;
  /** PEM certificates the endpoint's chain must reach; nothing else is trusted. */
  trustedCaPem: string[];
}

/** Temporary AWS credentials the host hands in per call. They gate nothing attestation does not also gate. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What every call carries: the context this enclave built, its own document as Recipient, the host's credentials. */
export interface RecipientCall {
  context: Record<string, string>;
  attestationDocument: Uint8Array;
  credentials: AwsCredentials;
}

export interface GeneratedDataKey {
  /** The data key under the KMS key: stored by the host beside the sealed share. */
  ciphertextBlob: Uint8Array;
  /** The data key encrypted to this enclave's recipient key (CMS EnvelopedData). */
  ciphertextForRecipient: Uint8Array;
  /** The key's ARN as KMS reports it. */
  keyId: string;
}

/** A KMS call failed; `name` is the SDK's error name (public: e.g. AccessDeniedException). */
export class KmsCallError extends Error {
  override name = "KmsCallError";
  constructor(
    readonly kmsErrorName: string,
    message: string,
  ) {
    super(message);
  }
}

/** An https.Agent whose every connection is TLS over a fresh relay stream. */
class RelayAgent extends https.Agent {
  constructor(private readonly settings: KmsSettings) {
    super({ keepAlive: false });
  }

  override createConnection(
    _options: https.RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    const host = new URL(this.settings.endpoint).hostname.replace(/^\[|\]$/g, "");
    dialRelay(this.settings.relay).then(
      (stream) => {
        const socket = tls.connect({
          socket: stream,
          host,
          // SNI carries names only; an IP endpoint is checked against the certificate's IP SANs.
          ...(isIP(host) ? {} : { servername: host }),
          ca: this.settings.trustedCaPem,
          rejectUnauthorized: true,
          minVersion: "TLSv1.2",
        });
        socket.once("secureConnect", () => callback?.(null, socket));
        socket.once("error", (e) => callback?.(e, socket));
      },
      // http's agent reads the stream only when there is no error.
      (e: Error) => callback?.(e, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

export class EnclaveKms {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly settings: KmsSettings) {
    const url = new URL(settings.endpoint);
    if (url.protocol !== "https:" || url.pathname !== "/" || url.search || url.username)
      throw new Error("--kms-endpoint must be https://HOST[:PORT] with nothing after it");
    if (settings.trustedCaPem.length === 0)
      throw new Error("the KMS endpoint needs at least one trusted CA certificate");
  }

  get keyId(): string {
    return this.settings.keyId;
  }

  async generateDataKey(args: RecipientCall): Promise<GeneratedDataKey> {
    const out = await this.call("GenerateDataKey", args.credentials, (client) =>
      client.send(
        new GenerateDataKeyCommand({
          KeyId: this.settings.keyId,
          KeySpec: "AES_256",
          EncryptionContext: args.context,
          Recipient: recipient(args.attestationDocument),
        }),
      ),
    );
    refusePlaintext(out.Plaintext);
    if (!out.CiphertextBlob || !out.CiphertextForRecipient || !out.KeyId)
      throw new KmsCallError(
        "IncompleteResponse",
        "KMS GenerateDataKey returned no CiphertextBlob, CiphertextForRecipient or KeyId",
      );
    return {
      ciphertextBlob: out.CiphertextBlob,
      ciphertextForRecipient: out.CiphertextForRecipient,
      keyId: out.KeyId,
    };
  }

  /** The stored blob's data key, encrypted to this enclave's recipient key. */
  async decrypt(args: RecipientCall & { ciphertextBlob: Uint8Array }): Promise<Uint8Array> {
    const out = await this.call("Decrypt", args.credentials, (client) =>
      client.send(
        new DecryptCommand({
          KeyId: this.settings.keyId,
          CiphertextBlob: args.ciphertextBlob,
          EncryptionContext: args.context,
          Recipient: recipient(args.attestationDocument),
        }),
      ),
    );
    refusePlaintext(out.Plaintext);
    if (!out.CiphertextForRecipient)
      throw new KmsCallError(
        "IncompleteResponse",
        "KMS Decrypt returned no CiphertextForRecipient",
      );
    return out.CiphertextForRecipient;
  }

  /** One client per call, because the credentials are per call; the SDK's error becomes its name only. */
  private async call<T>(
    operation: string,
    credentials: AwsCredentials,
    f: (client: KMSClient) => Promise<T>,
  ): Promise<T> {
    await this.slot();
    try {
      return await this.callNow(operation, credentials, f);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Waits until fewer than MAX_CONCURRENT_KMS_CALLS run, then takes a slot. */
  private async slot(): Promise<void> {
    if (this.running >= MAX_CONCURRENT_KMS_CALLS) {
      if (this.waiting.length >= MAX_WAITING_KMS_CALLS)
        throw new KmsCallError("Busy", "too many KMS calls are waiting");
      // The finishing call hands its slot over: `running` stays counted.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      return;
    }
    this.running++;
  }

  private async callNow<T>(
    operation: string,
    credentials: AwsCredentials,
    f: (client: KMSClient) => Promise<T>,
  ): Promise<T> {
    const client = new KMSClient({
      region: this.settings.region,
      endpoint: this.settings.endpoint,
      // A copy: the SDK annotates the credentials object it is given.
      credentials: { ...credentials },
      maxAttempts: 1,
      useFipsEndpoint: false,
      useDualstackEndpoint: false,
      requestHandler: {
        // One agent per call: client.destroy() destroys its agent, sockets in use by other calls included.
        httpsAgent: new RelayAgent(this.settings),
        connectionTimeout: KMS_CALL_TIMEOUT_MS,
        requestTimeout: KMS_CALL_TIMEOUT_MS,
      },
    });
    try {
      return await f(client);
    } catch (e) {
      const name = e instanceof Error && /^[A-Za-z]{1,64}$/.test(e.name) ? e.name : "Error";
      throw new KmsCallError(name, `KMS ${operation} failed: ${name}`);
    } finally {
      client.destroy();
    }
  }
}

/** KMS encrypts its answer to the RSA key in this attestation document, never returning a plaintext. */
const recipient = (attestationDocument: Uint8Array): RecipientInfo => ({
  AttestationDocument: attestationDocument,
  KeyEncryptionAlgorithm: RECIPIENT_KEY_ALGORITHM,
});

/** A KMS that returns a plaintext despite a Recipient is misbehaving: wipe it and refuse the answer. */
function refusePlaintext(plaintext: Uint8Array | undefined): void {
  if (plaintext && plaintext.length > 0) {
    plaintext.fill(0);
    throw new KmsCallError(
      "PlaintextReturned",
      "KMS returned a plaintext data key despite a Recipient; refusing it",
    );
  }
}
