// The real matrix-js-sdk (../sdk.suite.ts) against `wrangler dev`: the real worker and objects. TTL 3 s.
import { sdkSuite } from "../sdk.suite";
import { startWranglerHarness } from "../support/wrangler-harness";

sdkSuite("wrangler dev (the worker and its objects)", 3_000, () => startWranglerHarness({ ttlMs: 3_000 }));
