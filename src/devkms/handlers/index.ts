/** The operations the stand-in implements, by their `X-Amz-Target` name (`TrentService.<Op>`). */
import { decrypt, encrypt } from "./encrypt-decrypt.ts";
import { generateDataKey } from "./data-key.ts";
import { getKeyPolicy, putKeyPolicy } from "./key-policy.ts";
import { createKey, describeKey } from "./keys.ts";
import { generateRandom } from "./random.ts";
import type { Handler } from "./context.ts";

export type { Handler, HandlerContext } from "./context.ts";

export const TARGET_PREFIX = "TrentService.";

export const operations: ReadonlyMap<string, Handler> = new Map([
  ["CreateKey", createKey],
  ["DescribeKey", describeKey],
  ["PutKeyPolicy", putKeyPolicy],
  ["GetKeyPolicy", getKeyPolicy],
  ["Encrypt", encrypt],
  ["Decrypt", decrypt],
  ["GenerateDataKey", generateDataKey],
  ["GenerateRandom", generateRandom],
]);
