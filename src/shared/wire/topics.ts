/**
 * Topic names of MQTT API v1 (docs/mqtt-api.md), used by both the nodes and
 * the client SDK, and the checks on the topic parts that come from outside.
 *
 * | topic                               | direction               | QoS | retain | notes |
 * |-------------------------------------|-------------------------|-----|--------|-------|
 * | tss/v1/requests/<op>                | client -> one node      | 1   | no     | nodes subscribe REQUESTS_FILTER ($share/tss-nodes/...), so one node takes each request; <op> matches OP_PATTERN; Response Topic must pass isClientResponseTopic |
 * | tss/v1/responses/<clientId>/<any>   | node -> client          | 1   | no     | the request's Response Topic, at most MAX_RESPONSE_TOPIC_LEN characters; <clientId> matches CLIENT_ID_PATTERN |
 * | tss/v1/nodes/<nodeId>/presence      | node -> every node      | 1   | yes    | online record, and the Last Will "offline"; <nodeId> matches NODE_ID_PATTERN |
 * | tss/v1/nodes/<nodeId>/inbox         | coordinator -> node     | 1   | no     | node RPC calls, Response Topic = the caller's replies topic |
 * | tss/v1/nodes/<nodeId>/replies       | node -> coordinator     | 1   | no     | node RPC replies |
 *
 * Node and client ids become topic levels, so neither may contain "/", "+",
 * "#" or NUL.
 */
import { NODE_ID_PATTERN, NODE_ID_RULE, isNodeId } from "./patterns.ts";

export const ROOT = "tss/v1";
export const SHARE_GROUP = "tss-nodes";
export const REQUESTS_FILTER = `$share/${SHARE_GROUP}/${ROOT}/requests/+`;
export const REQUESTS_PREFIX = `${ROOT}/requests/`;
export const RESPONSES_PREFIX = `${ROOT}/responses/`;
export const PRESENCE_FILTER = `${ROOT}/nodes/+/presence`;

/** The operations of the client API (docs/mqtt-api.md, "Client requests"). */
export const CLIENT_OPS = [
  "dkg",
  "sign",
  "refresh",
  "policy",
  "retire",
  "import",
  "importTarget",
  "repair",
  "reshare",
  "wallet",
  "wallets",
  "nodes",
] as const;
export type Op = (typeof CLIENT_OPS)[number];

/** Any well-formed `<op>` level: a node answers unknown ones with bad_request rather than dropping them. */
export const OP_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Longest response topic a node will publish to; the client chooses it. */
export const MAX_RESPONSE_TOPIC_LEN = 512;
export const MAX_CLIENT_ID_LEN = 128;
/** MQTT client ids are a topic level of the responses topic: no separators, wildcards or control characters. */
export const CLIENT_ID_PATTERN = /^[^/+#\u0000-\u001f]{1,128}$/;

export function assertNodeId(s: string): void {
  if (!NODE_ID_PATTERN.test(s))
    throw new Error(`node id ${JSON.stringify(s.slice(0, 80))} must be ${NODE_ID_RULE}`);
}

export const requestTopic = (op: Op) => `${REQUESTS_PREFIX}${op}`;
/** Everything addressed to one client; the ACL lets a client read only this. */
export const responsesFilter = (clientId: string) => `${RESPONSES_PREFIX}${clientId}/#`;
export const responsesPrefix = (clientId: string) => `${RESPONSES_PREFIX}${clientId}/`;
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
  return OP_PATTERN.test(op);
}

/** A client's Response Topic is acceptable only inside tss/v1/responses/<clientId>/... and without wildcards. */
export function isClientResponseTopic(t: string): boolean {
  if (t.length > MAX_RESPONSE_TOPIC_LEN || !t.startsWith(RESPONSES_PREFIX)) return false;
  if (/[+#\u0000]/.test(t)) return false;
  const rest = t.slice(RESPONSES_PREFIX.length).split("/");
  return rest.length >= 2 && rest.every((l) => l.length > 0);
}

/** The `<clientId>` level of a Response Topic that passed isClientResponseTopic: who the answer goes to, as the requester chose it. */
export function responseClientId(t: string): string {
  return t.slice(RESPONSES_PREFIX.length).split("/", 1)[0]!;
}

/** `<nodeId>` of `tss/v1/nodes/<nodeId>/<leaf>`, or null. */
export function nodeOf(topic: string, leaf: string): string | null {
  const m = /^tss\/v1\/nodes\/([^/]+)\/([^/]+)$/.exec(topic);
  return m && m[2] === leaf && isNodeId(m[1]) ? m[1] : null;
}
