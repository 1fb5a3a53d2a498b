import { defineConfig } from "vitest/config";

// Pure presence logic: plain Node, no Workers runtime.
export default defineConfig({
  test: { include: ["test/unit/**/*.test.ts"] },
});
