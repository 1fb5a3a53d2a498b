/**
 * Budgets of one user (issue #12): what a user may ask of the service per
 * second, whatever the number of their friends.
 *   - requests: every request from the worker (HTTP) and every frame is one
 *     token of the user's bucket (sockets.ts `admitUser`, shared with frames);
 *   - calls: every call this object makes to another user's object (fan-out,
 *     fan-in, watches, edge deliveries, retries) is charged afterwards to a
 *     deficit token bucket (CALL_BUDGET_PER_SECOND, burst CALL_BUDGET_BURST).
 *     While it is in deficit, requests that would make calls (connect,
 *     snapshots from other objects, lookups, privacy, friendship operations)
 *     are refused with `rate_limited` and a Retry-After; heartbeats are not
 *     (liveness must not be lost; their fan-out is bounded by coalescing).
 * So over any window of T seconds one user causes at most
 * burst + rate × T + the cost of one admitted operation (≤ 2 × MAX_FRIENDS).
 * In memory, like the socket buckets: it resets only when the object is
 * evicted, which an idle user's object is, and a busy one's is not.
 */
import { refuse, type Refusal } from "../src/presence/result";
import type { Host } from "./host";

export class CallBudget {
  private tokens: number;
  private updatedAt = 0;
  private charged = 0;

  constructor(private readonly host: Host) {
    this.tokens = host.config.callBudgetBurst;
  }

  /** Charges the calls made since the last look, refilled up to now. */
  private settle(now: number): void {
    const { callBudgetBurst, callBudgetPerSecond } = this.host.config;
    if (this.updatedAt > 0) this.tokens = Math.min(callBudgetBurst, this.tokens + ((now - this.updatedAt) / 1000) * callBudgetPerSecond);
    this.updatedAt = now;
    this.tokens -= this.host.calls - this.charged;
    this.charged = this.host.calls;
  }

  /** Null when calls may be made now; otherwise the refusal, with when to retry. */
  refusal(now: number): Refusal<"rate_limited"> | null {
    this.settle(now);
    if (this.tokens >= 0) return null;
    const retryAfterMs = Math.ceil((-this.tokens / this.host.config.callBudgetPerSecond) * 1000);
    return { ...refuse("rate_limited", `at most ${this.host.config.callBudgetPerSecond} calls to other users' objects per second per user`), retryAfterMs };
  }
}
