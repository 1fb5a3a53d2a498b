// SDK tests: pure reconciliation/backoff units plus end-to-end runs against a
// real `wrangler dev` that each file starts itself (see scripts/lib/dev-server.mjs).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/client/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
