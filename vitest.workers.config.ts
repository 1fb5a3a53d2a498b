import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { WORKER_TEST_BINDINGS } from "./test/workers/bindings";

// Integration tests inside workerd: the real worker and Durable Objects, real sockets, alarms fired on demand.
export default defineConfig({
  plugins: [
    cloudflareTest({
      main: "./src/index.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: { bindings: WORKER_TEST_BINDINGS },
    }),
  ],
  test: { include: ["test/workers/**/*.test.ts"], testTimeout: 20_000 },
});
