/**
 * The full fault matrix (npm run test:faults): broker restart, one node's
 * database unavailable, and message delay and drop, each for signing, DKG
 * and refresh. Its sample in npm test is test/integration/fault-matrix.test.ts.
 */
import { faultMatrix } from "./fault-matrix.ts";

faultMatrix({ sample: false });
