import { defineConfig } from "vitest/config";
import matrix from "./vitest.matrix.config";

// The Matrix suites against `wrangler dev` (test/matrix/wrangler): each file starts its own server.
export default defineConfig({
  test: {
    include: ["test/matrix/wrangler/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    fileParallelism: false,
    onConsoleLog: matrix.test?.onConsoleLog,
  },
});
