import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { WORKER_TEST_BINDINGS } from "./test/workers/bindings";

// Fuzz/property suites (issue #6) with a budget from the environment:
//   FUZZ_RUNS      runs per property in the pure suites (test/fuzz, plain Node); default 200–1,000
//   FUZZ_SESSIONS  socket sessions of the live workerd fuzz (14 frames each); default 20
//   FUZZ_SEED      seed of the live fuzz (printed in its title) to replay a failure
// `npm run test:fuzz` sets large budgets. In CI the workerd fuzz runs with its small
// default through vitest.workers.config.ts; the pure suites need `--project fuzz` here.
const workerBindings = {
  // Same as vitest.workers.config.ts (the live fuzz relies on MAX_ERRORS_PER_WINDOW=5, MAX_FRIENDS=20).
  ...WORKER_TEST_BINDINGS,
  FUZZ_SESSIONS: process.env.FUZZ_SESSIONS ?? "",
  FUZZ_SEED: process.env.FUZZ_SEED ?? "",
};

export default defineConfig({
  test: {
    projects: [
      { test: { name: "fuzz", include: ["test/fuzz/**/*.test.ts"], environment: "node", testTimeout: 600_000 } },
      {
        plugins: [cloudflareTest({ main: "./src/index.ts", wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: workerBindings } })],
        test: { name: "fuzz-workers", include: ["test/workers/hardening-fuzz.test.ts", "test/workers/hardening-http-fuzz.test.ts"], testTimeout: 600_000 },
      },
    ],
  },
});
