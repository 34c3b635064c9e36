/** Topic names of docs/mqtt-api.md that a client uses. */
export type Op = "dkg" | "sign" | "refresh" | "wallet" | "wallets" | "nodes";

export function requestTopic(op: Op): string {
  return `tss/v1/requests/${op}`;
}

/** Everything addressed to this client; the ACL lets a client read only this. */
export function responsesFilter(clientId: string): string {
  return `tss/v1/responses/${clientId}/#`;
}

export function responsesPrefix(clientId: string): string {
  return `tss/v1/responses/${clientId}/`;
}
