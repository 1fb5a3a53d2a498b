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

export class WatcherRows {
  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

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
  }

  /** One row written, only when the realm-only watcher's realm changed. */
  realmSeen(watcher: string, realm: string | null): void {
    if (this.tables.exist) this.sql.exec(`UPDATE watchers SET realm = ? WHERE watcher_id = ? AND positions = 'realm' AND realm IS NOT ?`, realm, watcher, realm);
  }

  remove(watcher: string): void {
    if (this.tables.exist) this.sql.exec(`DELETE FROM watchers WHERE watcher_id = ?`, watcher);
  }

  /** Valid leases (expired ones are deleted first), except watchers this user hides from; or just `only`. */
  leases(now: number, only?: string): Lease[] {
    if (!this.tables.exist) return [];
    this.sql.exec(`DELETE FROM watchers WHERE lease_expires_at <= ?`, now);
    const rows = only
      ? this.sql.exec(`SELECT watcher_id, positions, realm FROM watchers WHERE watcher_id = ?`, only).toArray()
      : this.sql.exec(`SELECT w.watcher_id, w.positions, w.realm FROM watchers w LEFT JOIN friends f ON f.friend_id = w.watcher_id WHERE COALESCE(f.hidden, 0) = 0`).toArray();
    return rows.map((r) => ({ watcher: String(r.watcher_id), positions: (r.positions as PositionInterest | null) ?? "all", realm: (r.realm as string | null) ?? null }));
  }
}
