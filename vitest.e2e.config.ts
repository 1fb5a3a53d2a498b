import { defineConfig } from "vitest/config";

// End-to-end: each file starts its own `wrangler dev` on a free port and drives it with real `ws` clients.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    fileParallelism: false,
  },
});
