import { defineConfig } from "vitest/config";

// Pure fuzz/property suites (plain Node). `npm run test:fuzz` runs them, and the
// workerd fuzz suites, with a large FUZZ_RUNS; without it they use the small CI budget.
export default defineConfig({
  test: {
    include: ["test/fuzz/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
  },
});
