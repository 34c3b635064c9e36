/**
 * The full fault matrix (npm run test:faults): broker restart, one node's
 * database unavailable, and message delay and drop, each for signing, DKG
 * and refresh. The cells and their assertions are in ./fault-matrix.ts; its
 * sample in npm test is test/integration/fault-matrix.test.ts.
 */
import { expect, it } from "vitest";
import { describeFaultMatrix } from "./fault-matrix.ts";

const matrix = describeFaultMatrix({ sample: false });

it("the full matrix runs delay, drop and broker restart for every ceremony kind", () => {
  const cells = matrix.cells();
  for (const kind of ["sign", "dkg", "refresh"])
    for (const fault of [/every packet delayed/, /one phase-2 message dropped/, /Mosquitto killed/])
      expect(cells.filter((c) => c.startsWith(`${kind}: `) && fault.test(c))).toHaveLength(1);
  // The cells only the full matrix has.
  for (const extra of [
    /delayed beyond the phase deadline/,
    /locked mid-DKG/,
    /locked mid-ceremony/,
  ])
    expect(cells.filter((c) => extra.test(c))).toHaveLength(1);
});
