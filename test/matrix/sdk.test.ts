// The real matrix-js-sdk (sdk.suite.ts) against the Matrix sub-app over the in-memory backend. TTL 1.5 s.
import { sdkSuite } from "./sdk.suite";
import { startMemoryHarness } from "./support/harness";

sdkSuite("the Matrix sub-app (in-memory backend)", 1_500, () => startMemoryHarness({ ttlMs: 1_500 }));
