/**
 * What Cloudflare bills a Durable Object for, at list prices, and what a
 * measured run of counts comes to per online user and month. Pure (no
 * Cloudflare imports): the bench feeds it the counts the objects report
 * (durable/meter.ts) and unit tests pin the arithmetic.
 *
 * Prices (Workers Paid, Durable Objects on SQLite storage, list prices as of
 * 2026-11; included monthly allowances ignored, so this is the marginal cost):
 *   - requests: $0.15 per million; every stub call, fetch and alarm is one,
 *     incoming WebSocket messages count 20:1;
 *   - duration: $12.50 per million GB-s, 128 MB per object while it handles
 *     events (a hibernated object costs nothing);
 *   - SQLite rows written $1.00 per million (a setAlarm counts as one row),
 *     rows read $0.001 per million.
 */

export const PRICES = {
  requestUsd: 0.15 / 1e6,
  gbSecondUsd: 12.5 / 1e6,
  rowWrittenUsd: 1 / 1e6,
  rowReadUsd: 0.001 / 1e6,
  /** Memory billed per active object, GB. */
  objectGb: 0.128,
  /** Incoming WebSocket messages billed per request. */
  wsMessagesPerRequest: 20,
} as const;

/** Seconds in the month the bill is quoted for (30 days). */
export const MONTH_SECONDS = 30 * 24 * 3600;

/** What the objects did in a measured window. */
export interface BilledCounts {
  /** Stub calls (RPC), HTTP fetches into objects (WebSocket upgrades included) and alarm invocations. */
  requests: number;
  /** Incoming WebSocket messages (auto-responded pings excluded: they never reach the object). */
  wsMessagesIn: number;
  rowsRead: number;
  /** Rows written, setAlarm calls included. */
  rowsWritten: number;
  /** Seconds the objects were handling events (wall time, summed over objects). */
  activeSeconds: number;
}

export interface UserMonthCost {
  /** Billed requests per online user per second (WebSocket messages divided by 20). */
  requestsPerUserSecond: number;
  rowsWrittenPerUserSecond: number;
  rowsReadPerUserSecond: number;
  gbSecondsPerUserSecond: number;
  /** $ per online user and 30-day month, by line and in total. */
  usd: { requests: number; rowsWritten: number; rowsRead: number; duration: number; total: number };
}

/** Counts over `seconds` with `onlineUsers` connected → rates per user and $ per user-month. */
export function costPerUserMonth(counts: BilledCounts, onlineUsers: number, seconds: number): UserMonthCost {
  const per = onlineUsers > 0 && seconds > 0 ? 1 / (onlineUsers * seconds) : 0;
  const requestsPerUserSecond = (counts.requests + counts.wsMessagesIn / PRICES.wsMessagesPerRequest) * per;
  const rowsWrittenPerUserSecond = counts.rowsWritten * per;
  const rowsReadPerUserSecond = counts.rowsRead * per;
  const gbSecondsPerUserSecond = counts.activeSeconds * PRICES.objectGb * per;
  const month = (rate: number, price: number) => rate * MONTH_SECONDS * price;
  const usd = {
    requests: month(requestsPerUserSecond, PRICES.requestUsd),
    rowsWritten: month(rowsWrittenPerUserSecond, PRICES.rowWrittenUsd),
    rowsRead: month(rowsReadPerUserSecond, PRICES.rowReadUsd),
    duration: month(gbSecondsPerUserSecond, PRICES.gbSecondUsd),
    total: 0,
  };
  usd.total = usd.requests + usd.rowsWritten + usd.rowsRead + usd.duration;
  return { requestsPerUserSecond, rowsWrittenPerUserSecond, rowsReadPerUserSecond, gbSecondsPerUserSecond, usd };
}

/**
 * A workload described by rates (per online user), priced without running it:
 * what one design decision costs. `callsPerEvent` etc. are what the code does.
 */
export interface Workload {
  /** Heartbeats per user per second (each one incoming WebSocket message). */
  heartbeatsPerSecond: number;
  /** Deliveries per user per second (one object-to-object call each). */
  deliveriesPerSecond: number;
  /** Rows written per user per second (status changes, checkpoints, setAlarm). */
  rowsWrittenPerSecond: number;
  /** Alarm invocations per user per second. */
  alarmsPerSecond: number;
  /** Active (billed) seconds per user per second. */
  activeSecondsPerSecond: number;
}

export function workloadCost(w: Workload): UserMonthCost {
  return costPerUserMonth(
    {
      requests: w.deliveriesPerSecond + w.alarmsPerSecond,
      wsMessagesIn: w.heartbeatsPerSecond,
      rowsRead: 0,
      rowsWritten: w.rowsWrittenPerSecond,
      activeSeconds: w.activeSecondsPerSecond,
    },
    1,
    1,
  );
}
