/**
 * The watchers' leases of one user's object: friends with a live client that
 * asked to be told of this user's changes (durable/watchers.ts fans out to
 * them). A lease expires lazily: expired rows are dropped when the fan-out
 * reads them. Written when a lease is taken, renewed or released, and when a
 * realm-only watcher moves; never on a delivery.
 */
import type { PositionInterest } from "../../src/presence/types";
import type { Lease } from "../schema";
import type { Tables } from "./tables";

interface LeaseRow {
  expiresAt: number;
  positions: PositionInterest;
  realm: string | null;
}

export class WatcherRows {
  /**
   * The leases, read once per wake (one row each) and kept in step with every
   * write here (issue #11): a publish used to read every lease and join every
   * watcher's friend row again, ≈ 3 rows per watcher per heartbeat.
   */
  private cache: Map<string, LeaseRow> | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private rows(): Map<string, LeaseRow> {
    if (this.cache) return this.cache;
    this.cache = new Map();
    if (this.tables.exist)
      for (const r of this.sql.exec(`SELECT watcher_id, lease_expires_at, positions, realm FROM watchers`))
        this.cache.set(String(r.watcher_id), {
          expiresAt: Number(r.lease_expires_at),
          positions: (r.positions as PositionInterest | null) ?? "all",
          realm: (r.realm as string | null) ?? null,
        });
    return this.cache;
  }

  put(watcher: string, expiresAt: number, positions: PositionInterest, realm: string | null): void {
    this.tables.create();
    this.sql.exec(
      `INSERT INTO watchers (watcher_id, lease_expires_at, positions, realm) VALUES (?, ?, ?, ?)
       ON CONFLICT(watcher_id) DO UPDATE SET lease_expires_at = excluded.lease_expires_at, positions = excluded.positions, realm = excluded.realm`,
      watcher,
      expiresAt,
      positions === "all" ? null : positions,
      realm,
    );
    this.cache?.set(watcher, { expiresAt, positions, realm });
  }

  /** One row written, only when the realm-only watcher's realm changed (no row read when the leases are in memory). */
  realmSeen(watcher: string, realm: string | null): void {
    if (!this.tables.exist) return;
    if (this.cache) {
      const lease = this.cache.get(watcher);
      if (lease?.positions !== "realm" || lease.realm === realm) return;
      lease.realm = realm;
    }
    this.sql.exec(`UPDATE watchers SET realm = ? WHERE watcher_id = ? AND positions = 'realm' AND realm IS NOT ?`, realm, watcher, realm);
  }

  remove(watcher: string): void {
    if (this.tables.exist) this.sql.exec(`DELETE FROM watchers WHERE watcher_id = ?`, watcher);
    this.cache?.delete(watcher);
  }

  /**
   * Valid leases (expired ones are deleted first), those `keep` keeps, except
   * watchers `hidden` says this user hides from; or just `only`, hidden or not.
   */
  leases(now: number, hidden: (watcher: string) => boolean, only?: string, keep?: (lease: Lease) => boolean): Lease[] {
    if (!this.tables.exist) return [];
    const rows = this.rows();
    let expired = false;
    for (const [watcher, lease] of rows)
      if (lease.expiresAt <= now) {
        rows.delete(watcher);
        expired = true;
      }
    if (expired) this.sql.exec(`DELETE FROM watchers WHERE lease_expires_at <= ?`, now);
    const leases: Lease[] = [];
    for (const [watcher, { positions, realm }] of rows) {
      if (only !== undefined && watcher !== only) continue;
      const lease = { watcher, positions, realm };
      if (keep && !keep(lease)) continue;
      if (only === undefined && hidden(watcher)) continue;
      leases.push(lease);
    }
    return leases;
  }
}
