import { defineConfig } from "vitest/config";

// The Decentraland endpoint's pure modules (src/dcl), driven by the real @dcl/rpc client in plain Node.
export default defineConfig({
  test: { include: ["test/dcl/**/*.test.ts"], environment: "node", testTimeout: 20_000 },
});
