/**
 * A user's membership in a realm's population (issue #16), the user's side:
 * the user's object decides, from its outward view (what friends would see),
 * which realm it is counted in, and tells that realm's shard only when that
 * changes (join/leave) or the lease is at half-life (renew): never per
 * heartbeat. Privacy is enforced here, at the source: invisible, offline and
 * `shareLocation: none` users are members of nothing.
 *
 * Failed calls are retried by the alarm: a join every RETRY_MS; a leave with
 * backoff (RETRY_MS … 5 min), kept in the same record (no row of its own),
 * until the shard's lease would have dropped the member anyway. So a leave
 * that never arrives (this object gone for good, or every retry failing) is
 * bounded by the lease (REALM_LEASE_MS). A renewal that finds REALM_SHARDS
 * changed leaves the old shard as it joins the new one. One round of calls
 * at a time: a change asked for while calls are out goes after them, so a
 * leave never overtakes a join at the shard (a ghost this object would not
 * know of). Rounds go out at most once per REALM_BATCH_MS per user: a user
 * hopping realms faster is counted where it settles.
 *
 * The record is in the object's sync KV, one row (durable/meter.ts counts it):
 * written by a join, move, leave or renewal (and a failed call's retry), read
 * once per wake, never touched by a heartbeat that keeps the realm.
 */
import type { PresenceConfig } from "../src/presence/config";
import { memberRealm, renewAt, shardName, shardOf } from "../src/presence/realm";
import { backoffMs, nextDeadline } from "../src/presence/timers";
import type { Presence } from "../src/presence/types";
import type { RealmShard } from "./realm-shard";

const KEY = "realm-membership";
const RETRY_MS = 5_000;
/** Leaves owed at most (a user hopping realms while every leave fails): beyond, the oldest are left to their leases. */
const MAX_OWED = 8;

/** A leave that failed, retried by the alarm. */
interface OwedLeave {
  realm: string;
  shard: number;
  /** The shard has forgotten the member by then anyway (its lease ran out): no retry after. */
  until: number;
  attempts: number;
  retryAt: number;
}

/** Where the shards have this user, as far as this object knows (stored: survives eviction). */
interface Membership {
  /** The realm it is counted in; null: none (the record then only keeps leaves owed). */
  realm: string | null;
  shard: number;
  /** When to renew the lease (or retry a failed join); meaningless while `realm` is null. */
  renewAt: number;
  owed?: OwedLeave[];
}

export class RealmMembership {
  private lastCallAt: number | null = null;
  /** The realm the latest view asks for (null: none). */
  private wanted: string | null = null;
  /**
   * Calls are out. One round at a time: a refresh meanwhile only updates
   * `wanted`, and the round re-checks it when its calls settle, so a leave
   * never overtakes a join at the shard (which would leave a member counted
   * while this object thinks it is not).
   */
  private inFlight = false;
  /** A change held back by the per-user interval: when to apply it. */
  private heldUntil: number | null = null;
  /** The last join failed: the next wake-up is its retry, not a renewal. */
  private retrying = false;

  constructor(
    /** The object's sync KV, metered (durable/meter.ts `meteredKv`: each get/put/delete is a billed row). */
    private readonly kv: SyncKvStorage,
    private readonly config: PresenceConfig,
    private readonly shards: DurableObjectNamespace<RealmShard>,
    private readonly userId: () => string,
  ) {}

  /** The stored membership as last read or written (this object is its only writer): `kv.get` on every refresh was a SQL read. */
  private kept: Membership | null | undefined;

  private get current(): Membership | null {
    if (this.kept === undefined) this.kept = this.kv.get<Membership>(KEY) ?? null;
    return this.kept;
  }

  private set current(membership: Membership | null) {
    this.kept = membership;
    if (membership) this.kv.put(KEY, membership);
    else this.kv.delete(KEY);
  }

  /** The realm this user should be counted in now, and the calls that make it so (none if nothing changed or is due). */
  async update(view: Pick<Presence, "status" | "realm">, now: number): Promise<void> {
    this.wanted = memberRealm(view);
    if (this.inFlight) return;
    await this.apply(now);
  }

  /** One round: the calls `wanted` needs now (a join, a leave, a renewal, retries), then the record. */
  private async apply(now: number): Promise<void> {
    const want = this.wanted;
    const have = this.current;
    const shard = shardOf(this.userId(), this.config.realmShards);
    const haveRealm = have?.realm ?? null;
    const joinDue = want !== null && (haveRealm !== want || now >= (have?.renewAt ?? 0));
    // The shard counting this user now, left when the realm changes or (at a renewal) REALM_SHARDS did.
    const leaveNow = have !== null && haveRealm !== null && (haveRealm !== want || (joinDue && have.shard !== shard)) ? { realm: haveRealm, shard: have.shard } : null;
    // Leaves owed: not past their lease, not undone by the join (same realm and shard), due or not.
    const owedBefore = have?.owed ?? [];
    const owed = owedBefore.filter((o) => o.until > now && !(o.realm === want && o.shard === shard));
    const retries = owed.filter((o) => o.retryAt <= now);
    if (!joinDue && leaveNow === null && retries.length === 0) {
      this.heldUntil = null;
      // Owed leaves that lapsed (an alarm that came late): dropped, so they wake nothing.
      if (have !== null && owed.length !== owedBefore.length) this.current = this.record(want, have.shard, have.renewAt, owed);
      return;
    }
    if (this.lastCallAt !== null && now - this.lastCallAt < this.config.realmBatchMs) {
      this.heldUntil = this.lastCallAt + this.config.realmBatchMs;
      return;
    }
    this.heldUntil = null;
    this.lastCallAt = now;
    const userId = this.userId();
    const leaves: OwedLeave[] = [...(leaveNow ? [{ ...leaveNow, until: now + this.config.realmLeaseMs, attempts: 0, retryAt: now }] : []), ...retries];
    const calls: Promise<unknown>[] = leaves.map((l) => this.shards.getByName(shardName(l.realm, l.shard)).leave([userId]));
    if (joinDue) calls.push(this.shards.getByName(shardName(want, shard)).join([userId], this.config.realmLeaseMs));
    this.inFlight = true;
    const settled = await Promise.allSettled(calls).finally(() => {
      this.inFlight = false;
    });
    const joined = !joinDue || settled[settled.length - 1]?.status === "fulfilled";
    if (joinDue) this.retrying = !joined;
    else if (want === null) this.retrying = false;
    // A failed leave is owed: retried with backoff while the shard may still count the member.
    const failed = leaves
      .filter((_, i) => settled[i]?.status === "rejected")
      .map((l) => ({ ...l, attempts: l.attempts + 1, retryAt: now + backoffMs(l.attempts, RETRY_MS) }))
      .filter((l) => l.retryAt < l.until);
    const stillOwed = [...owed.filter((o) => !retries.includes(o)), ...failed].slice(-MAX_OWED);
    const renewal = !joinDue ? (have?.renewAt ?? 0) : joined ? renewAt(now, this.config.realmLeaseMs) : now + RETRY_MS;
    this.current = this.record(want, shard, renewal, stillOwed);
    // A change asked for while the calls were out: its round now, after them (or held back by the interval).
    if (this.wanted !== want) await this.apply(Date.now());
  }

  /** The record to keep: null when it would say nothing (no realm, no leave owed). */
  private record(realm: string | null, shard: number, renewAt: number, owed: OwedLeave[]): Membership | null {
    if (realm === null && owed.length === 0) return null;
    return { realm, shard, renewAt: realm === null ? 0 : renewAt, ...(owed.length > 0 ? { owed } : {}) };
  }

  /** The next wake-up when it is only the lease's renewal (it may come late: the lease runs another half-life); null otherwise. */
  renewalWakeUp(): number | null {
    const membership = this.current;
    if (this.heldUntil !== null || this.retrying || membership === null || membership.realm === null) return null;
    return membership.renewAt;
  }

  /** The alarm: a lease to renew, a failed join or leave to retry, or a held-back change. */
  nextWakeUp(): number | null {
    const membership = this.current;
    const renew = membership !== null && membership.realm !== null ? membership.renewAt : null;
    return nextDeadline([renew, this.heldUntil, ...(membership?.owed ?? []).map((o) => o.retryAt)]);
  }
}
