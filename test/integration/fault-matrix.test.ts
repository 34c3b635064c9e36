/**
 * The sample of the fault matrix that runs in npm test: one cell per fault,
 * signing only. The cells and their assertions are in test/faults/fault-matrix.ts;
 * the full matrix (signing, DKG and refresh for every fault) is
 * test/faults/full.faults.ts, run by `npm run test:faults`.
 */
import { expect, it } from "vitest";
import { describeFaultMatrix } from "../faults/fault-matrix.ts";

const matrix = describeFaultMatrix({ sample: true });

it("the sample keeps one signing cell for each fault: delay, drop, broker restart, database lock", () => {
  const cells = matrix.cells();
  // A fault silently dropped from the sample would leave npm test without it.
  for (const fault of [
    /^sign: every packet delayed/,
    /^sign: one phase-2 message dropped/,
    /^sign: Mosquitto killed/,
    /withdraws \(degraded\) while locked/,
  ])
    expect(cells.filter((c) => fault.test(c))).toHaveLength(1);
  expect(cells.filter((c) => /^(dkg|refresh): /.test(c))).toEqual([]);
});
