// Browser test of the demo page: Debian's Chromium driven by playwright-core against a real `wrangler dev`.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    environment: "node",
    testTimeout: 45_000,
    hookTimeout: 60_000,
  },
});
