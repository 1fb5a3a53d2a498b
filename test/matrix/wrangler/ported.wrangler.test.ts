// Matrix's own presence tests (../ported.suite.ts) against `wrangler dev`: the real worker and objects. TTL 2 s.
import { portedSuite } from "../ported.suite";
import { startWranglerHarness } from "../support/wrangler-harness";

portedSuite(2_000, () => startWranglerHarness({ ttlMs: 2_000 }));
