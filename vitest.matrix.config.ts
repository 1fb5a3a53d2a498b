import { defineConfig } from "vitest/config";

// The Matrix client-server API (src/matrix): pure modules, the Hono sub-app over an
// in-memory backend, and the real matrix-js-sdk against it. Plain Node, no Workers runtime.
export default defineConfig({
  test: {
    include: ["test/matrix/**/*.test.ts"],
    // Against `wrangler dev`: vitest.matrix-wrangler.config.ts.
    exclude: ["test/matrix/wrangler/**"],
    testTimeout: 30_000,
    // matrix-js-sdk logs every request and sync step to the console; keep test output readable.
    onConsoleLog: (log) =>
      !/^(FetchHttpApi|sync |Missing default|Adding default|Attempting to send|All queued|Checking capab|Fetched new server|PollingCachedValue|Getting saved sync|Got saved sync|Got reply from saved)/.test(
        log.trimStart(),
      ),
  },
});
