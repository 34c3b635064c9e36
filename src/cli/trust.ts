/**
 * Whom tss believes about a wallet (src/client/wallet-verification.ts):
 * options, then environment, then the local cluster's client file.
 *
 *   --aws-root FILE   TSS_AWS_ROOT    the AWS Nitro root PEM (checked against its pinned fingerprint)
 *   --dev-root FILE   TSS_DEV_ROOT    a development root PEM; trusted only with --allow-development
 *   --image HEX       TSS_IMAGES      allowed enclave image hashes (PCR0), repeatable / comma-separated
 *   --allow-development               (or TSS_ALLOW_DEVELOPMENT=1) the explicit development flag
 *
 * The local cluster's client file names its development root and image hash
 * (`trust`), so there only the development flag has to be given; it is
 * never implied by a file.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { loadAwsNitroRoot, pemToDer, TrustedRootError } from "../attestation/aws-root.ts";
import type { TrustedRoot } from "../attestation/verifier.ts";
import type { WalletTrust } from "../client/index.ts";
import { UsageError } from "./args.ts";
import type { Env } from "./settings.ts";

const PCR0_HEX = /^[0-9a-f]{96}$/;
const MAX_PEM_BYTES = 64 * 1024;

/** The `trust` entry of a client file: paths relative to the file. */
function fileTrust(path: string | undefined): { devRoot?: string; images: string[] } {
  if (path === undefined) return { images: [] };
  let t: Record<string, unknown> | undefined;
  try {
    t = (JSON.parse(readFileSync(path, "utf8")) as { trust?: Record<string, unknown> }).trust;
  } catch {
    return { images: [] };
  }
  if (!t || typeof t !== "object") return { images: [] };
  const images = Array.isArray(t.imageHashes)
    ? t.imageHashes.filter((x): x is string => typeof x === "string")
    : [];
  return {
    ...(typeof t.developmentRoot === "string"
      ? { devRoot: resolve(dirname(path), t.developmentRoot) }
      : {}),
    images,
  };
}

function readPem(path: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new UsageError(`Cannot read the root certificate ${path}.`);
  }
  if (text.length > MAX_PEM_BYTES) throw new UsageError(`${path} is too large for a certificate.`);
  return pemToDer(text, path);
}

/**
 * The configured trust, or null when none is configured at all (then a
 * command that must verify refuses to run). `clientFile` is the client file
 * in use, if any.
 */
export function walletTrustSettings(
  values: Map<string, string>,
  lists: Map<string, string[]>,
  allowDevelopmentFlag: boolean,
  env: Env,
  clientFile?: string,
): WalletTrust | null {
  const set = (x: string | undefined) => (x === undefined || x === "" ? undefined : x);
  const fromFile = fileTrust(clientFile);
  const awsRoot = set(values.get("aws-root")) ?? set(env.TSS_AWS_ROOT);
  const allowDevelopment = allowDevelopmentFlag || env.TSS_ALLOW_DEVELOPMENT === "1";
  // The cluster file's development root counts only once development is explicitly allowed.
  const devRoot =
    set(values.get("dev-root")) ??
    set(env.TSS_DEV_ROOT) ??
    (allowDevelopment ? fromFile.devRoot : undefined);
  const given = lists.get("image") ?? set(env.TSS_IMAGES)?.split(",") ?? fromFile.images;
  const images = given.map((h) => h.trim().toLowerCase().replace(/^0x/, ""));
  if (awsRoot === undefined && devRoot === undefined) return null;
  for (const h of images)
    if (!PCR0_HEX.test(h))
      throw new UsageError(`--image ${h.slice(0, 20)} is not a PCR0 (48 bytes of hex).`);
  if (images.length === 0)
    throw new UsageError("No enclave image is allowed: give --image PCR0 (or TSS_IMAGES).");
  if (devRoot !== undefined && !allowDevelopment)
    throw new UsageError(
      `${devRoot} is a development root: give --allow-development (or TSS_ALLOW_DEVELOPMENT=1) to trust it.`,
    );
  // Not trustedRoots(): its console warning would break --json's clean stderr; the development
  // flag is explicit here, and showWallet says which kind of root vouched.
  let roots: TrustedRoot[];
  try {
    roots = [
      ...(awsRoot === undefined ? [] : [loadAwsNitroRoot(awsRoot)]),
      ...(devRoot === undefined ? [] : [{ der: readPem(devRoot), development: true }]),
    ];
  } catch (e) {
    if (e instanceof TrustedRootError) throw new UsageError(`${e.message}.`);
    throw e;
  }
  return { roots, allowDevelopment, imageHashes: images };
}
