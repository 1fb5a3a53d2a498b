import type { UserPresence } from "../durable/user-presence";

/** Bindings, vars and secrets of the worker (see wrangler.toml and README's configuration table). */
export interface Env {
  USER: DurableObjectNamespace<UserPresence>;
  /** HS256 secret (wrangler secret put JWT_SECRET; .dev.vars locally). */
  JWT_SECRET?: string;
  /** JWKS endpoint for RS256/ES256 tokens. */
  JWKS_URL?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  /** Guards /v1/admin/*. Unset → admin API disabled (503). */
  ADMIN_TOKEN?: string;
  /** "1" enables POST /dev/token (demo sign-in). Local only: set in .dev.vars, never in production. */
  DEV_MODE?: string;
  PRESENCE_TTL_MS?: string;
  HEARTBEAT_INTERVAL_MS?: string;
  POSITION_COALESCE_MS?: string;
  WATCH_LEASE_MS?: string;
  MAX_FRAME_BYTES?: string;
  MAX_DEVICES_PER_USER?: string;
  MAX_FRIENDS?: string;
  MAX_PENDING_REQUESTS?: string;
  MAX_ERRORS_PER_WINDOW?: string;
  ABUSE_WINDOW_MS?: string;
  RPC_TIMEOUT_MS?: string;
  RATE_BURST?: string;
  RATE_PER_SECOND?: string;
}

// `import { env } from "cloudflare:workers"` (tests) sees the same bindings.
declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
type WorkerEnv = Env;
