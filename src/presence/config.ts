/**
 * Configuration: every var and secret the worker reads, with its kind, its
 * default and what it means. The one source: PresenceConfig and readConfig
 * come from it, src/env.ts derives Env's var types from it, and
 * test/unit/config.test.ts checks wrangler.toml's [vars], .dev.vars.example
 * and README's table against it. Every tunable has a production default;
 * tests shorten the TTL through the same vars.
 */

/** `var`: wrangler.toml [vars]; `secret`: `wrangler secret put` (.dev.vars locally); `local`: .dev.vars only, never in production. */
export type SettingKind = "secret" | "var" | "local";

/** Numeric tunables, by their name in PresenceConfig. */
export const TUNABLES = {
  ttlMs: { name: "PRESENCE_TTL_MS", default: 120_000, doc: "online until this long after the last sign of life" },
  heartbeatIntervalMs: { name: "HEARTBEAT_INTERVAL_MS", default: 30_000, doc: "heartbeat interval announced to clients (at most a third of the TTL)" },
  positionCoalesceMs: { name: "POSITION_COALESCE_MS", default: 1_000, doc: "at most one position-only push per user per interval" },
  positionIntervalMs: {
    name: "POSITION_INTERVAL_MS",
    default: 0,
    doc: "0: every position-only move is pushed. Above 0: at most one position-only push per user per interval; a move held back goes with the user's first event after it (a frame, the TTL alarm), never with an alarm of its own — a cost lever (docs/BENCHMARKS.md, issue #11)",
  },
  watchLeaseMs: {
    name: "WATCH_LEASE_MS",
    default: 86_400_000,
    doc: "lease of a watching friend (24 h); renewed at half-life while online, which also re-reads every friend's presence; a lease left by a watcher that vanished is dropped by its first refused push",
  },
  maxFrameBytes: { name: "MAX_FRAME_BYTES", default: 4_096, doc: "largest frame / HTTP body (admin bodies: 1 MB)" },
  maxDevicesPerUser: { name: "MAX_DEVICES_PER_USER", default: 10, doc: "live devices per user" },
  maxFriends: { name: "MAX_FRIENDS", default: 1_000, doc: "friends per user" },
  maxPendingRequests: { name: "MAX_PENDING_REQUESTS", default: 100, doc: "pending friend requests per user (sent, and received)" },
  maxBlocked: { name: "MAX_BLOCKED", default: 1_000, doc: "users one user may block (any id, used or not); one more → 409 `block_limit`" },
  maxErrorsPerWindow: { name: "MAX_ERRORS_PER_WINDOW", default: 10, doc: "invalid or rate-limited frames a socket may send within `ABUSE_WINDOW_MS`; one more closes it (1008)" },
  abuseWindowMs: { name: "ABUSE_WINDOW_MS", default: 60_000, doc: "the window of `MAX_ERRORS_PER_WINDOW`" },
  rpcTimeoutMs: { name: "RPC_TIMEOUT_MS", default: 5_000, doc: "longest wait for another user's object (fan-out, watch, outbox); then retried" },
  matrixMaxSyncTimeoutMs: { name: "MATRIX_MAX_SYNC_TIMEOUT_MS", default: 30_000, doc: "longest Matrix `/sync` long poll (never more than half the TTL; docs/MATRIX.md)" },
  rateBurst: { name: "RATE_BURST", default: 20, doc: "token bucket per socket: burst size; the user's bucket is twice that" },
  ratePerSecond: { name: "RATE_PER_SECOND", default: 5, doc: "token bucket per socket: refill per second; the user's bucket is twice that" },
  dclAuthTimeoutMs: { name: "DCL_AUTH_TIMEOUT_MS", default: 30_000, doc: "a Decentraland socket (`/dcl`) must send its signed auth frame within this; then 3004" },
  callBudgetPerSecond: {
    name: "CALL_BUDGET_PER_SECOND",
    default: 1_000,
    doc: "calls to other users' objects one user may cause per second (connects, snapshots, privacy, friendships, fan-out); requests that would call more get 429 `rate_limited`",
  },
  realmShards: {
    name: "REALM_SHARDS",
    default: 16,
    doc: "shard objects per realm that count its members (a user's shard is a hash of its id); changing it moves members as their leases renew (each leaves its old shard then)",
  },
  realmLeaseMs: {
    name: "REALM_LEASE_MS",
    default: 21_600_000,
    doc: "lease of a realm membership in its shard (6 h); the user's object renews it at half-life and retries a failed leave; a member whose object never runs again is counted until it runs out",
  },
  realmBatchMs: { name: "REALM_BATCH_MS", default: 1_000, doc: "a realm shard reports its count, and a realm counter pushes the total to subscribers, at most once per interval" },
  callBudgetBurst: { name: "CALL_BUDGET_BURST", default: 2_000, doc: "burst of `CALL_BUDGET_PER_SECOND` (one connect of a user with `MAX_FRIENDS` friends must fit)" },
  maxTokenLifetimeS: {
    name: "MAX_TOKEN_LIFETIME_S",
    default: 86_400,
    doc: "longest accepted token lifetime in seconds, `exp − (iat ?? now)`; longer → 401 `invalid_claims` (an `iat` more than 60 s ahead → 401 `token_not_yet_valid`)",
  },
  reconnectGraceMs: {
    name: "RECONNECT_GRACE_MS",
    default: 10_000,
    doc: "a socket that drops without a close frame (1006) keeps its device shown this long, so a reconnect of the same device id shows friends nothing; `0`: offline at once; never beyond the TTL",
    zeroAllowed: true,
  },
} as const satisfies Record<string, { name: string; default: number; doc: string; zeroAllowed?: true }>;

/** Auth and access, read where they are used (src/auth.ts, src/app.ts); `shown` is the default as the README states it. */
export const ACCESS = {
  JWT_SECRET: { kind: "secret", shown: "— (dev value in `.dev.vars.example`)", doc: "HS256 key for user tokens" },
  JWKS_URL: { kind: "var", shown: "empty (off)", doc: "JWKS endpoint for RS256/ES256 tokens (keys cached 10 min)" },
  JWT_ISSUER: {
    kind: "var",
    shown: "empty (not checked)",
    doc: "required `iss` when set; **set it in production** (unset: tokens of any issuer signed with the key are accepted)",
  },
  JWT_AUDIENCE: { kind: "var", shown: "empty (not checked)", doc: "required `aud` when set; **set it in production** (unset: tokens meant for any audience are accepted)" },
  ADMIN_TOKEN: { kind: "secret", shown: "— (admin API off → 503)", doc: "bearer token for `/v1/admin/*`" },
  SERVER_NAME: { kind: "var", shown: "empty (`localhost`)", doc: "Matrix server name: users are `@<localpart>:SERVER_NAME` (docs/MATRIX.md)" },
  EVENTS_POSITIONS: {
    kind: "var",
    shown: "empty (left out)",
    doc: "`1`: server-side events carry the position of users who share their location (docs/EVENTS.md); off without an `EVENTS` queue binding",
  },
  DEV_MODE: { kind: "local", shown: "unset", doc: "`1` enables `POST /dev/token` for the demo; **never in production**" },
} as const satisfies Record<string, { kind: SettingKind; shown: string; doc: string }>;

export type PresenceConfig = { -readonly [K in keyof typeof TUNABLES]: number };
export type VarName = keyof typeof ACCESS | (typeof TUNABLES)[keyof typeof TUNABLES]["name"];
/** The worker's vars and secrets as the runtime passes them: strings, any of them missing. */
export type ConfigVars = { [N in VarName]?: string };

/** Every setting in one list (for the docs and their test): name, kind, default as stated, meaning. */
export const SETTINGS: ReadonlyArray<{ name: VarName; kind: SettingKind; shown: string; doc: string }> = [
  ...Object.entries(ACCESS).map(([name, s]) => ({ name: name as VarName, ...s })),
  ...Object.values(TUNABLES).map((t) => ({ name: t.name, kind: "var" as const, shown: String(t.default), doc: t.doc })),
];

export const DEFAULT_CONFIG: PresenceConfig = Object.fromEntries(Object.entries(TUNABLES).map(([key, t]) => [key, t.default])) as PresenceConfig;

/**
 * The heartbeat interval announced to clients (`welcome`, `heartbeat_ack`):
 * the configured one, but never more than a third of the TTL, so that a
 * client that follows it stays online through one lost heartbeat. (A TTL
 * configured below the interval would otherwise get every such client closed.)
 */
export function announcedHeartbeatMs(config: Pick<PresenceConfig, "heartbeatIntervalMs" | "ttlMs">): number {
  return Math.max(1, Math.min(config.heartbeatIntervalMs, Math.floor(config.ttlMs / 3)));
}

/** Reads the config from env vars; a missing, non-numeric or non-positive value keeps the default (0 is kept where `zeroAllowed`). */
export function readConfig(vars: Partial<Record<VarName, unknown>>): PresenceConfig {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, tunable] of Object.entries(TUNABLES) as Array<[keyof PresenceConfig, { name: VarName; zeroAllowed?: true }]>) {
    const raw = vars[tunable.name];
    if (raw === undefined || raw === null || raw === "") continue;
    const value = Number(raw);
    if (Number.isFinite(value) && (value > 0 || (value === 0 && tunable.zeroAllowed))) config[key] = value;
  }
  return config;
}
