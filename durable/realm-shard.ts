/**
 * RealmShard: one Durable Object per realm × shard (`REALM_SHARD.getByName(
 * "<realm>#<shard>")`), the members of one slice of a realm. It exists so that
 * a hot realm's joins, leaves and renewals spread over REALM_SHARDS objects
 * instead of funnelling through one. It owns
 *   - its members, each with a lease (SQLite: survives eviction and restarts),
 *   - the count it last reported to the realm's RealmCounter.
 * Members come and go only when a user's object says so (a realm change, going
 * offline, a renewal at half-life) or when a lease runs out (the alarm): never
 * per heartbeat. The count goes to the counter at most once per REALM_BATCH_MS,
 * and only when it changed.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { readConfig, type PresenceConfig } from "../src/presence/config";
import { batchSendAt, parseShardName } from "../src/presence/realm";
import { alarmTime, nextDeadline } from "../src/presence/timers";
import { realmCounters } from "./counters";

export class RealmShard extends DurableObject<Env> {
  private readonly config: PresenceConfig;
  private readonly sql: SqlStorage;
  private lastReportAt: number | null = null;
  /** The alarm this instance last set (undefined: not known, e.g. after a wake). */
  private armedAt: number | null | undefined = undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS members (user_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)");
  }

  private get slice(): { realm: string; shard: number } {
    const parsed = this.ctx.id.name ? parseShardName(this.ctx.id.name) : null;
    if (!parsed) throw new Error("RealmShard objects are addressed by <realm>#<shard> (REALM_SHARD.getByName)");
    return parsed;
  }

  // ─── RPC: called by users' objects (and the admin simulation) ─────────────

  /** `userIds` are members until `now + leaseMs` (a join, or a renewal). Idempotent. */
  async join(userIds: string[], leaseMs: number): Promise<number> {
    realmCounters.shardCalls++;
    const now = Date.now();
    const expiresAt = now + leaseMs;
    this.ctx.storage.transactionSync(() => {
      for (const userId of userIds) {
        this.sql.exec("INSERT INTO members (user_id, expires_at) VALUES (?, ?) ON CONFLICT(user_id) DO UPDATE SET expires_at = excluded.expires_at", userId, expiresAt);
      }
    });
    return this.settle(now);
  }

  /** `userIds` are no longer members. Idempotent. */
  async leave(userIds: string[]): Promise<number> {
    realmCounters.shardCalls++;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const userId of userIds) this.sql.exec("DELETE FROM members WHERE user_id = ?", userId);
    });
    return this.settle(now);
  }

  /** The members' count right now (leases checked). */
  async count(): Promise<number> {
    return this.live(Date.now());
  }

  override async alarm(): Promise<void> {
    this.armedAt = undefined;
    await this.settle(Date.now());
  }

  // ─── leases, the report, the alarm ────────────────────────────────────────

  private live(now: number): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM members WHERE expires_at > ?", now).one().n;
  }

  private get reported(): number | null {
    const row = this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = 'reported'").toArray()[0];
    return row ? row.value : null;
  }

  /**
   * Expires lapsed leases, reports the count to the realm's counter if it
   * changed and the batch interval allows (else the alarm will), and sets the
   * alarm to the earliest of the next report and the next lease expiry.
   */
  private async settle(now: number): Promise<number> {
    this.sql.exec("DELETE FROM members WHERE expires_at <= ?", now);
    const count = this.live(now);
    if (count !== this.reported && batchSendAt(this.lastReportAt, now, this.config.realmBatchMs) <= now) {
      const { realm, shard } = this.slice;
      realmCounters.reports++;
      this.lastReportAt = now;
      try {
        await this.env.REALM_COUNTER.getByName(realm).report(shard, count, now);
        this.sql.exec("INSERT INTO meta (key, value) VALUES ('reported', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", count);
      } catch (error) {
        console.error("realm count report failed; retried by the alarm", error);
      }
    }
    // Checked after the report's await: joins that came in meanwhile are reported by the alarm.
    const after = Date.now();
    const reportAt = this.live(after) !== this.reported ? batchSendAt(this.lastReportAt, after, this.config.realmBatchMs) : null;
    const nextExpiry = this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM members").one().at;
    const deadline = nextDeadline([reportAt, nextExpiry]);
    const armAt = deadline === null ? null : alarmTime(deadline, Date.now());
    // Each setAlarm is a row written: only when the deadline moves.
    if (armAt !== this.armedAt) {
      this.armedAt = armAt;
      if (armAt === null) await this.ctx.storage.deleteAlarm();
      else await this.ctx.storage.setAlarm(armAt);
    }
    return count;
  }
}
