import { defineConfig } from "vitest/config";

/**
 * npm run test:eif-boot: boots the enclave image in QEMU (test/shipping/eif-boot.slow.ts,
 * a minute or two of software emulation), kept out of npm test's `test/**\/*.test.ts`.
 */
export default defineConfig({
  test: {
    include: ["test/shipping/*.slow.ts"],
    pool: "threads",
    testTimeout: 900_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
