import type { RealmCounter } from "../durable/realm-counter";
import type { RealmShard } from "../durable/realm-shard";
import type { UserPresence } from "../durable/user-presence";
import type { ConfigVars } from "./presence/config";
import type { ServerEvent } from "./presence/events";

/**
 * Bindings of the worker, and its vars and secrets: the names, kinds and
 * defaults are in src/presence/config.ts (wrangler.toml and README's
 * configuration table are checked against it).
 */
export interface Env extends ConfigVars {
  USER: DurableObjectNamespace<UserPresence>;
  REALM_SHARD: DurableObjectNamespace<RealmShard>;
  REALM_COUNTER: DurableObjectNamespace<RealmCounter>;
  /** Server-side events (docs/EVENTS.md): optional; without it no event is built or sent. */
  EVENTS?: Queue<ServerEvent>;
}

// `import { env } from "cloudflare:workers"` (tests) sees the same bindings.
declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
type WorkerEnv = Env;
