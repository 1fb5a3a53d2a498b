import { defineConfig } from "vitest/config";

// The suites that must pass unchanged on Node, Bun and Deno (issue #15), run by
// test/runtimes/run.ts as `vitest run` under each runtime:
//   node node_modules/vitest/vitest.mjs run --config vitest.runtimes.config.ts
//   bun --bun vitest run --config vitest.runtimes.config.ts
//   deno run -A npm:vitest run --config vitest.runtimes.config.ts
// The pure presence rules, the friendship state machine, their property tests,
// the SDK's units, and test/runtimes (which runtime this is; what the worker and the
// SDK import; the Hono app answering on this runtime's Request/Response/crypto).
const isBun = typeof (process.versions as { bun?: string }).bun === "string";
const isDeno = "Deno" in globalThis;

export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts", "test/fuzz/**/*.test.ts", "test/client/**/*.test.ts", "test/runtimes/*.test.ts"],
    exclude: [
      // These start `wrangler dev` and use the `ws` package (test:client runs them); the service under Bun
      // and Deno is test/runtimes/smoke.
      "test/client/live.test.ts",
      "test/client/quiet.test.ts",
      "test/client/realm.test.ts",
      "test/client/status-expiry.test.ts",
      "test/client/subset.test.ts",
      // Static (module graphs, type-check): the same answer on every runtime, so only Node pays for it.
      ...(isBun || isDeno ? ["test/runtimes/imports.test.ts"] : []),
    ],
    environment: "node",
    testTimeout: 60_000,
    // Bun's child processes have no `channel.unref()`, which vitest's `forks` pool
    // calls when it starts a worker; worker threads work.
    pool: isBun ? "threads" : "forks",
  },
});
