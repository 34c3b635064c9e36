/**
 * The sample of the fault matrix that runs in npm test: one cell per fault
 * (signing only). The full matrix (signing, DKG and refresh for every fault)
 * is test/faults/full.faults.ts, run by `npm run test:faults`.
 */
import { faultMatrix } from "../faults/fault-matrix.ts";

faultMatrix({ sample: true });
