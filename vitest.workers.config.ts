import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { buildSync } from "esbuild";
import { defineConfig } from "vitest/config";
import { WORKER_TEST_BINDINGS } from "./test/workers/bindings";

const resolve = {
  // @dcl/rpc (the real Decentraland client in test/workers/dcl*.test.ts) is CommonJS and
  // `require`s mitt; mitt's ESM build has no `default` for it there: use its CommonJS build.
  alias: { mitt: fileURLToPath(new URL("./node_modules/mitt/dist/mitt.js", import.meta.url).href) },
};

/** The example events consumer (examples/events-consumer), bundled for Miniflare, which runs auxiliary workers as they are. */
function eventsConsumer() {
  const [bundle] = buildSync({ entryPoints: ["examples/events-consumer/src/index.ts"], bundle: true, format: "esm", write: false, logLevel: "warning" }).outputFiles;
  return {
    name: "events-consumer",
    modules: true,
    script: bundle!.text,
    compatibilityDate: "2026-11-17",
    d1Databases: ["EVENTS_DB"],
    queueConsumers: { "presence-events": { maxBatchTimeout: 0.05 } },
  };
}

// Integration tests inside workerd: the real worker and Durable Objects, real sockets, alarms fired on demand.
// Two projects: `workers` runs as configured in wrangler.toml (no events queue: the opt-in stays off);
// `events` adds the EVENTS queue producer and the example consumer worker (docs/EVENTS.md).
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [cloudflareTest({ main: "./src/index.ts", wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: WORKER_TEST_BINDINGS } })],
        resolve,
        test: { name: "workers", include: ["test/workers/**/*.test.ts"], testTimeout: 20_000 },
      },
      {
        plugins: [
          cloudflareTest({
            main: "./src/index.ts",
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: WORKER_TEST_BINDINGS,
              queueProducers: { EVENTS: { queueName: "presence-events" } },
              serviceBindings: { EVENTS_CONSUMER: "events-consumer" },
              workers: [eventsConsumer()],
            },
          }),
        ],
        resolve,
        test: { name: "events", include: ["test/events/**/*.test.ts"], testTimeout: 20_000 },
      },
    ],
  },
});
