import { defineConfig } from "vitest/config";

/**
 * npm run test:faults: the full fault matrix (test/faults/*.faults.ts), kept
 * out of npm test's `test/**\/*.test.ts`; its sample runs there instead.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.faults.ts", "test/integration/faults.test.ts"],
    pool: "threads",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
