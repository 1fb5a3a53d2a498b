/** Reconnect delays: exponential, jittered, and never above `maxDelayMs`. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 500 ms. */
  initialDelayMs: number;
  /** Upper bound of any delay. Default 30 s. */
  maxDelayMs: number;
  /** Growth per failed attempt. Default 2. */
  factor: number;
  /** Fraction of the delay that is random: 0 = none, 1 = anywhere in [0, delay]. Default 0.5. */
  jitter: number;
  /** Give up (state `closed`) after this many consecutive failed attempts. Default Infinity. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/**
 * Delay before retry number `attempt` (0 = first retry): the exponential
 * ceiling min(max, initial·factor^attempt), of which a `jitter` share is
 * random, so clients dropped together do not come back together.
 */
export function backoffDelay(attempt: number, options: Partial<BackoffOptions> = {}, random: () => number = Math.random): number {
  const { initialDelayMs, maxDelayMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxDelayMs, initialDelayMs * Math.max(1, factor) ** Math.max(0, attempt));
  const share = Math.min(1, Math.max(0, jitter));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling * (1 - share) + ceiling * share * r);
}
