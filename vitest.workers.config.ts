import { fileURLToPath } from "node:url";
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
  resolve: {
    // @dcl/rpc (the real Decentraland client in test/workers/dcl*.test.ts) is CommonJS and
    // `require`s mitt; mitt's ESM build has no `default` for it there: use its CommonJS build.
    alias: { mitt: fileURLToPath(new URL("./node_modules/mitt/dist/mitt.js", import.meta.url).href) },
  },
  test: { include: ["test/workers/**/*.test.ts"], testTimeout: 20_000 },
});
