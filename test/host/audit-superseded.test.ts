/**
 * The `ceremony_superseded` audit event (src/host/store/audit.ts): written by
 * a node's host when its enclave dropped an open session for a lower-id
 * duplicate of the same approved request (src/enclave/approval-replay.ts),
 * naming the node that started each, since the enclave cannot. Real libsql.
 */
import { describe, expect, it } from "vitest";
import {
  appendAudit,
  migrate,
  openDatabase,
  readAudit,
  StoreError,
} from "../../src/host/store/index.ts";

const session = (b: string) => b.repeat(64);

describe("ceremony_superseded in the audit log", () => {
  it("records both sessions and who started each; refuses a superseded id that is not a session id", () => {
    const db = openDatabase({ path: ":memory:" });
    migrate(db);
    appendAudit(db, "n2", {
      event: "ceremony_superseded",
      ceremonyId: session("1"),
      supersededCeremonyId: session("a"),
      startedBy: "n3",
      supersededStartedBy: "n1",
    });
    const [row] = readAudit(db).filter((e) => e.event === "ceremony_superseded");
    expect(row).toMatchObject({
      nodeId: "n2",
      ceremonyId: session("1"),
      detail: { supersededCeremonyId: session("a"), startedBy: "n3", supersededStartedBy: "n1" },
    });
    expect(() =>
      appendAudit(db, "n2", {
        event: "ceremony_superseded",
        ceremonyId: session("1"),
        supersededCeremonyId: "not a session",
        startedBy: "n3",
      }),
    ).toThrow(StoreError);
  });
});
