/** Topic names of MQTT API v1 (docs/mqtt-api.md) and the checks on the parts that come from outside. */

export const ROOT = "tss/v1";
export const SHARE_GROUP = "tss-nodes";
export const REQUESTS_FILTER = `$share/${SHARE_GROUP}/${ROOT}/requests/+`;
export const REQUESTS_PREFIX = `${ROOT}/requests/`;
export const RESPONSES_PREFIX = `${ROOT}/responses/`;
export const PRESENCE_FILTER = `${ROOT}/nodes/+/presence`;

/** Node ids become topic levels, so they must not contain "/", "+" or "#". */
const NODE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const OP = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Longest response topic a node will publish to; the client chooses it. */
const MAX_RESPONSE_TOPIC = 512;

export function isNodeId(s: string): boolean {
  return NODE_ID.test(s);
}

export function assertNodeId(s: string): void {
  if (!isNodeId(s)) throw new Error(`node id ${JSON.stringify(s.slice(0, 80))} must be 1-64 characters of [A-Za-z0-9._:-]`);
}

export const inboxTopic = (nodeId: string) => `${ROOT}/nodes/${nodeId}/inbox`;
export const repliesTopic = (nodeId: string) => `${ROOT}/nodes/${nodeId}/replies`;
export const presenceTopic = (nodeId: string) => `${ROOT}/nodes/${nodeId}/presence`;

/** The `<op>` of `tss/v1/requests/<op>`, or null if the topic is not a request topic. */
export function requestOp(topic: string): string | null {
  if (!topic.startsWith(REQUESTS_PREFIX)) return null;
  const op = topic.slice(REQUESTS_PREFIX.length);
  return op.includes("/") ? null : op;
}

export function isValidOp(op: string): boolean {
  return OP.test(op);
}

/** A client's Response Topic is acceptable only inside tss/v1/responses/<clientId>/... and without wildcards. */
export function isClientResponseTopic(t: string): boolean {
  if (t.length > MAX_RESPONSE_TOPIC || !t.startsWith(RESPONSES_PREFIX)) return false;
  if (/[+#\u0000]/.test(t)) return false;
  const rest = t.slice(RESPONSES_PREFIX.length).split("/");
  return rest.length >= 2 && rest.every((l) => l.length > 0);
}

/** `<nodeId>` of `tss/v1/nodes/<nodeId>/<leaf>`, or null. */
export function nodeOf(topic: string, leaf: string): string | null {
  const m = /^tss\/v1\/nodes\/([^/]+)\/([^/]+)$/.exec(topic);
  return m && m[2] === leaf && isNodeId(m[1]!) ? m[1]! : null;
}
