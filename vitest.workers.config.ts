import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Integration tests inside workerd: the real worker and Durable Objects, real sockets, alarms fired on demand.
export default defineConfig({
  plugins: [
    cloudflareTest({
      main: "./src/index.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          JWT_SECRET: "workers-test-secret-0123456789abcdef",
          ADMIN_TOKEN: "workers-test-admin",
          PRESENCE_TTL_MS: "120000",
          POSITION_COALESCE_MS: "1000",
          DEV_MODE: "1",
          MAX_DEVICES_PER_USER: "3",
          MAX_FRIENDS: "20",
          MAX_PENDING_REQUESTS: "3",
          RPC_TIMEOUT_MS: "1000",
          MAX_ERRORS_PER_WINDOW: "5",
        },
      },
    }),
  ],
  test: { include: ["test/workers/**/*.test.ts"], testTimeout: 20_000 },
});
