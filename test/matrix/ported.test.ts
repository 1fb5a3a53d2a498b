// Matrix's own presence tests (ported.suite.ts) over the in-memory backend. TTL 1 s.
import { portedSuite } from "./ported.suite";
import { startMemoryHarness } from "./support/harness";

portedSuite(1_000, () => startMemoryHarness({ ttlMs: 1_000 }));
