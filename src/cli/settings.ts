/**
 * Where tss connects and with which credentials: options, then environment,
 * then the local cluster's client file. The file's credentials are used only
 * with the file's own URL, so they never go to another broker.
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ConnectOptions } from "../client/index.ts";
import { UsageError } from "./args.ts";

export const DEFAULT_CLIENT_FILE = fileURLToPath(
  new URL("../../data/cluster/client.json", import.meta.url),
);
const MAX_FILE_BYTES = 1024 * 1024;

export type Env = Record<string, string | undefined>;

function readSmallFile(path: string, what: string): string | null {
  try {
    if (statSync(path).size > MAX_FILE_BYTES)
      throw new UsageError(`The ${what} ${path} is larger than 1 MiB.`);
    return readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw new UsageError(`Cannot read the ${what} ${path}.`);
  }
}

/** The cluster's client file, or null when there is none. */
function clientFile(path: string): { url: string; username?: string; password?: string } | null {
  const text = readSmallFile(path, "client file");
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  const o = v as Record<string, unknown> | null;
  const optional = (x: unknown) => x === undefined || typeof x === "string";
  if (
    !o ||
    typeof o !== "object" ||
    typeof o.url !== "string" ||
    !optional(o.username) ||
    !optional(o.password)
  ) {
    throw new UsageError(
      `The client file ${path} is not JSON of the form {"url": …, "username": …, "password": …}.`,
    );
  }
  return {
    url: o.url,
    username: o.username as string | undefined,
    password: o.password as string | undefined,
  };
}

/** The client file in use: the one connectionSettings reads when no URL is given, else none. */
export function clientFileInUse(values: Map<string, string>, env: Env): string | undefined {
  const set = (x: string | undefined) => (x === undefined || x === "" ? undefined : x);
  if (set(values.get("url")) ?? set(env.TSS_MQTT_URL)) return undefined;
  return set(env.TSS_CLIENT_CONFIG) ?? DEFAULT_CLIENT_FILE;
}

export function connectionSettings(
  values: Map<string, string>,
  env: Env,
): Omit<ConnectOptions, "timeoutMs"> {
  const set = (x: string | undefined) => (x === undefined || x === "" ? undefined : x);
  let url = set(values.get("url")) ?? set(env.TSS_MQTT_URL);
  let username = set(values.get("username")) ?? set(env.TSS_MQTT_USERNAME);
  let password = set(values.get("password")) ?? set(env.TSS_MQTT_PASSWORD);
  if (url === undefined) {
    const file = clientFile(set(env.TSS_CLIENT_CONFIG) ?? DEFAULT_CLIENT_FILE);
    if (!file)
      throw new UsageError(
        "No broker URL: pass --url mqtt://host:port, set TSS_MQTT_URL, or start the local cluster, which writes data/cluster/client.json.",
      );
    url = file.url;
    username ??= file.username;
    password ??= file.password;
  }
  const caFile = set(values.get("ca")) ?? set(env.TSS_MQTT_CA);
  const ca = caFile === undefined ? undefined : readSmallFile(caFile, "CA file");
  if (ca === null) throw new UsageError(`The CA file ${caFile} does not exist.`);
  return { url, username, password, ...(ca === undefined ? {} : { tls: { ca } }) };
}
