/**
 * A user's membership in a realm's population (issue #16), the user's side:
 * the user's object decides, from its outward view (what friends would see),
 * which realm it is counted in, and tells that realm's shard only when that
 * changes (join/leave) or the lease is at half-life (renew): never per
 * heartbeat. Privacy is enforced here, at the source: invisible, offline and
 * `shareLocation: none` users are members of nothing.
 *
 * A failed call is retried by the alarm (RETRY_MS); a leave that never
 * arrives is bounded by the lease (REALM_LEASE_MS). Calls go out at most once
 * per REALM_BATCH_MS per user: a user hopping realms faster is counted where
 * it settles.
 */
import type { PresenceConfig } from "../src/presence/config";
import { memberRealm, renewAt, shardName, shardOf } from "../src/presence/realm";
import type { Presence } from "../src/presence/types";
import type { RealmShard } from "./realm-shard";

const KEY = "realm-membership";
const RETRY_MS = 5_000;

/** Where the shard has this user, as far as this object knows (stored: survives eviction). */
interface Membership {
  realm: string;
  shard: number;
  /** When to renew the lease (or retry a failed join). */
  renewAt: number;
}

export class RealmMembership {
  private lastCallAt: number | null = null;
  /** The realm (or null: none) of the calls in flight, while they are: a refresh meanwhile wanting the same needs nothing. */
  private inFlight: { want: string | null } | null = null;
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

  /** The realm this user should be counted in now, and the calls that make it so (none if nothing changed). */
  async update(view: Pick<Presence, "status" | "realm">, now: number): Promise<void> {
    const want = memberRealm(view);
    const have = this.current;
    if (have?.realm === want && (have === null || now < have.renewAt)) {
      this.heldUntil = null;
      return;
    }
    if (have === null && want === null) return;
    if (this.inFlight && this.inFlight.want === want) return;
    if (this.lastCallAt !== null && now - this.lastCallAt < this.config.realmBatchMs) {
      this.heldUntil = this.lastCallAt + this.config.realmBatchMs;
      return;
    }
    this.heldUntil = null;
    this.lastCallAt = now;
    const userId = this.userId();
    const calls: Promise<unknown>[] = [];
    if (have && have.realm !== want) calls.push(this.shards.getByName(shardName(have.realm, have.shard)).leave([userId]));
    const shard = shardOf(userId, this.config.realmShards);
    if (want !== null) calls.push(this.shards.getByName(shardName(want, shard)).join([userId], this.config.realmLeaseMs));
    this.inFlight = { want };
    const settled = await Promise.allSettled(calls).finally(() => {
      this.inFlight = null;
    });
    const joined = want === null || settled[settled.length - 1]?.status === "fulfilled";
    this.retrying = !joined;
    // A failed leave is not retried: the old shard's lease runs out.
    if (want === null) this.current = null;
    else this.current = { realm: want, shard, renewAt: joined ? renewAt(now, this.config.realmLeaseMs) : now + RETRY_MS };
  }

  /** The next wake-up when it is only the lease's renewal (it may come late: the lease runs another half-life); null otherwise. */
  renewalWakeUp(): number | null {
    return this.heldUntil === null && !this.retrying ? (this.current?.renewAt ?? null) : null;
  }

  /** The alarm: a lease to renew, a failed join to retry, or a held-back change. */
  nextWakeUp(): number | null {
    const renew = this.current?.renewAt ?? null;
    if (this.heldUntil === null) return renew;
    return renew === null ? this.heldUntil : Math.min(renew, this.heldUntil);
  }
}
