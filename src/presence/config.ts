/**
 * Tunables, read from the worker's vars (wrangler.toml [vars] or --var). Every
 * value has a production default; tests shorten the TTL through the same vars.
 */
export interface PresenceConfig {
  /** A user is online until this long after the last sign of life of their last device. */
  ttlMs: number;
  /** How often clients are asked to send a PositionHeartbeat. */
  heartbeatIntervalMs: number;
  /** Position-only changes are published at most once per this interval. */
  positionCoalesceMs: number;
  /** How long a watch lease lasts without renewal; renewed at half-life. */
  watchLeaseMs: number;
  /** Largest accepted text frame / HTTP body, in bytes. */
  maxFrameBytes: number;
  /** Most simultaneous devices (sockets + HTTP devices) per user. */
  maxDevicesPerUser: number;
  /** Most friends per user. */
  maxFriends: number;
  /** Most pending friend requests per user, sent and received counted separately. */
  maxPendingRequests: number;
  /** Invalid frames tolerated per socket within `abuseWindowMs` before close 1008. */
  maxErrorsPerWindow: number;
  abuseWindowMs: number;
  /** Longest wait for another user's object (fan-out, watch, outbox); then it counts as failed and is retried. */
  rpcTimeoutMs: number;
  /** Token bucket per socket: burst size and refill per second. */
  rateBurst: number;
  ratePerSecond: number;
}

export const DEFAULT_CONFIG: PresenceConfig = {
  ttlMs: 120_000,
  heartbeatIntervalMs: 30_000,
  positionCoalesceMs: 1_000,
  watchLeaseMs: 600_000,
  maxFrameBytes: 4_096,
  maxDevicesPerUser: 10,
  maxFriends: 1_000,
  maxPendingRequests: 100,
  maxErrorsPerWindow: 10,
  abuseWindowMs: 60_000,
  rpcTimeoutMs: 5_000,
  rateBurst: 20,
  ratePerSecond: 5,
};

const VAR_NAMES: Record<keyof PresenceConfig, string> = {
  ttlMs: "PRESENCE_TTL_MS",
  heartbeatIntervalMs: "HEARTBEAT_INTERVAL_MS",
  positionCoalesceMs: "POSITION_COALESCE_MS",
  watchLeaseMs: "WATCH_LEASE_MS",
  maxFrameBytes: "MAX_FRAME_BYTES",
  maxDevicesPerUser: "MAX_DEVICES_PER_USER",
  maxFriends: "MAX_FRIENDS",
  maxPendingRequests: "MAX_PENDING_REQUESTS",
  maxErrorsPerWindow: "MAX_ERRORS_PER_WINDOW",
  abuseWindowMs: "ABUSE_WINDOW_MS",
  rpcTimeoutMs: "RPC_TIMEOUT_MS",
  rateBurst: "RATE_BURST",
  ratePerSecond: "RATE_PER_SECOND",
};

/** Reads the config from env vars; a missing, non-numeric or non-positive value keeps the default. */
export function readConfig(vars: Record<string, unknown>): PresenceConfig {
  const config = { ...DEFAULT_CONFIG };
  for (const key of Object.keys(VAR_NAMES) as (keyof PresenceConfig)[]) {
    const raw = vars[VAR_NAMES[key]];
    if (raw === undefined || raw === null || raw === "") continue;
    const value = Number(raw);
    if (Number.isFinite(value) && value > 0) config[key] = value;
  }
  return config;
}
