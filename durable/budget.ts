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
 *     (liveness must not be lost): their publishes wait instead
 *     (OwnPresence.publishChanges: coalesced, the latest state goes when the
 *     budget is back, by the alarm if nothing else comes).
 * So over any window of T seconds one user causes at most
 * burst + rate × T + the cost of one admitted operation (≤ 2 × MAX_FRIENDS).
 * The bucket is the host's (durable/host.ts: every stub handed out is a call).
 * In memory, like the socket buckets: it resets only when the object is
 * evicted, which an idle user's object is, and a busy one's is not.
 * `admitHttp` applies both to a request from the worker; `onlineFriends`
 * serves a recent answer instead of a refusal while the call budget is spent.
 */
import { ok, refuse, type Refusal, type Result } from "../src/presence/result";
import { pageOnline, pageRequest } from "../src/presence/subset";
import type { Presence } from "../src/presence/types";
import type { Host } from "./host";
import type { Sockets } from "./sockets";
import type { Watching } from "./watching";

/** A friends-online answer: `nextCursor` only when the request paged. */
export type OnlineFriends = { friends: Presence[]; nextCursor?: string | null };

/** How old a friends-online answer may be when it is served because the call budget is spent. */
const SNAPSHOT_MAX_AGE_MS = 30_000;

export class CallBudget {
  /** Last friends-online answer computed for an HTTP-only reader: served while the call budget is spent. */
  private onlineSnapshot: { at: number; friends: Presence[] } | null = null;

  constructor(
    private readonly host: Host,
    private readonly sockets: Sockets,
  ) {}

  /** Null when calls may be made now; otherwise the refusal, with when to retry (the bucket is the host's: durable/host.ts). */
  refusal(now: number): Refusal<"rate_limited"> | null {
    const retryAfterMs = this.host.callWaitMs(now);
    if (retryAfterMs === 0) return null;
    return { ...refuse("rate_limited", `at most ${this.host.config.callBudgetPerSecond} calls to other users' objects per second per user`), retryAfterMs };
  }

  /** One request's worth of the user's request bucket, then, for operations that call other objects, the call budget. */
  admitHttp(now: number, callsOthers: boolean): Refusal<"rate_limited"> | null {
    if (!this.sockets.admitUser(now)) return this.tooManyRequests();
    return callsOthers ? this.refusal(now) : null;
  }

  /**
   * `GET /v1/friends/online`. A live user's answer comes from the cache (no
   * calls); an HTTP-only reader's asks every friend's object, within the call
   * budget: when it is spent, the last answer (at most SNAPSHOT_MAX_AGE_MS old,
   * ex-friends filtered out) is served instead, else 429. A page (`limit`,
   * `cursor`: src/presence/subset.ts) asks at most `limit` friends; a live user
   * following subsets asks the friends outside them, within the budget too.
   */
  async onlineFriends(now: number, watching: Watching, query: { limit?: number; cursor?: string } = {}): Promise<Result<OnlineFriends, "rate_limited">> {
    if (!this.sockets.admitUser(now)) return this.tooManyRequests();
    const page = pageRequest(query);
    if (!watching.snapshotAsks()) return ok(page ? await watching.onlineFriendsPage(page) : { friends: await watching.onlineFriends() });
    const limited = this.refusal(now);
    if (limited) {
      const snapshot = this.onlineSnapshot;
      if (!snapshot || now - snapshot.at > SNAPSHOT_MAX_AGE_MS) return limited;
      const friends = snapshot.friends.filter((p) => this.host.store.isFriend(p.userId));
      if (!page) return ok({ friends });
      // Paged through the last whole answer: no call.
      const listed = new Map(friends.map((p) => [p.userId, p]));
      return ok(
        await pageOnline(
          this.host.store.friendIds(),
          page,
          (id) => listed.get(id) ?? null,
          async () => new Map(),
        ),
      );
    }
    if (page) return ok(await watching.onlineFriendsPage(page));
    const friends = await watching.onlineFriends();
    this.onlineSnapshot = { at: now, friends };
    return ok({ friends });
  }

  private tooManyRequests(): Refusal<"rate_limited"> {
    const perSecond = this.host.config.ratePerSecond * 2;
    return { ...refuse("rate_limited", `at most ${perSecond} requests per second per user`), retryAfterMs: Math.ceil(1000 / perSecond) };
  }
}
