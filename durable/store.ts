/**
 * UserStore: the SQLite rows of one user's Durable Object, named in presence
 * terms. Every statement binds its values; cursors are read fully before
 * returning, so callers may `await` freely afterwards.
 *
 * One facade over the tables, so callers name what they do, not where it
 * lives: meta (single values), friendship edges, watchers' leases and the
 * friends' presence cache are here; the device map lives in
 * durable/store/devices.ts and the outbox rows in durable/store/outbox.ts.
 *
 * The tables are created by the first write (durable/store/tables.ts): until
 * then every read answers "nothing" without touching SQL tables, and deletes
 * and updates have nothing to do, so an object only ever asked about (a
 * request to a never-used id) keeps no storage at all.
 */
import { deriveState, NO_EDGE, type Edge, type EdgeState, type Intent } from "../src/presence/friendship";
import { offlinePresence } from "../src/presence/protocol";
import type { DeviceKind, DeviceState, PositionInterest, Presence, Transport } from "../src/presence/types";
import { meteredSql, type ObjectMeter } from "./meter";
import { type Audience, DECODE, type EdgeRow, type Lease, type Meta, type MetaKey, type OutboxRow } from "./schema";
import { DeviceRows } from "./store/devices";
import { OutboxRows } from "./store/outbox";
import { Tables } from "./store/tables";

export class UserStore {
  private readonly sql: SqlStorage;
  private readonly deviceRows: DeviceRows;
  private readonly outboxRows: OutboxRows;
  private readonly tables: Tables;

  constructor(storage: DurableObjectStorage, meter: ObjectMeter) {
    this.sql = meteredSql(storage.sql, meter);
    this.tables = new Tables(storage, this.sql);
    this.deviceRows = new DeviceRows(this.sql, this.tables);
    this.outboxRows = new OutboxRows(this.sql, this.tables);
  }

  /** Whether this object has ever been written to (its tables exist). */
  get hasStorage(): boolean {
    return this.tables.exist;
  }

  // ─── meta: single values ─────────────────────────────────────────────────

  /**
   * The meta table, read once per instance and written through: this object is
   * its only writer and runs one event at a time, so the copy cannot go stale,
   * and a heartbeat reads a dozen meta values without a dozen SQL round trips.
   */
  private metaCache: Map<string, string> | null = null;
  /** Keys whose value in memory differs from the row (see `remember`). */
  private readonly unwritten = new Set<string>();

  private meta(): Map<string, string> {
    if (!this.metaCache) {
      this.metaCache = new Map(
        this.tables.exist
          ? this.sql
              .exec(`SELECT key, value FROM meta`)
              .toArray()
              .map((r) => [String(r.key), String(r.value)])
          : [],
      );
    }
    return this.metaCache;
  }

  get<K extends MetaKey>(key: K): Meta[K] | null {
    const raw = this.meta().get(key);
    return raw === undefined ? null : (DECODE[key](raw) as Meta[K]);
  }

  /** Stores a value; `null` deletes it. */
  set<K extends MetaKey>(key: K, value: Meta[K] | null): void {
    const meta = this.meta();
    if (value === null) {
      if (!meta.has(key) && !this.unwritten.delete(key)) return;
      this.unwritten.delete(key);
      meta.delete(key);
      if (this.tables.exist) this.sql.exec(`DELETE FROM meta WHERE key = ?`, key);
    } else {
      const raw = typeof value === "object" ? JSON.stringify(value) : value === true ? "1" : String(value);
      if (meta.get(key) === raw && !this.unwritten.delete(key)) return;
      this.unwritten.delete(key);
      meta.set(key, raw);
      this.tables.create();
      this.sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, raw);
    }
  }

  /**
   * A value kept in memory only (this instance), never written: what can be
   * rebuilt after a wake (the latest position-only publish, its time, the next
   * coalesced publish, the last activity). Cleared by a later `set`.
   */
  remember<K extends MetaKey>(key: K, value: Meta[K] | null): void {
    const meta = this.meta();
    this.unwritten.add(key);
    if (value === null) meta.delete(key);
    else meta.set(key, typeof value === "object" ? JSON.stringify(value) : value === true ? "1" : String(value));
  }

  // ─── devices (durable/store/devices.ts: in memory, written on change) ────

  /** Device states saved outside SQLite (socket attachments), newer than the rows when they say so. */
  set savedDevices(saved: () => DeviceState[]) {
    this.deviceRows.saved = saved;
  }

  devices(): DeviceState[] {
    return this.deviceRows.all();
  }

  device(deviceId: string): DeviceState | null {
    return this.deviceRows.get(deviceId);
  }

  connectDevice(deviceId: string, kind: DeviceKind, now: number): void {
    this.deviceRows.connect(deviceId, kind, now);
  }

  heartbeatDevice(device: Omit<DeviceState, "lastSeenAt" | "lastHeartbeatAt">, now: number, checkpointBefore?: number): boolean {
    return this.deviceRows.heartbeat(device, now, checkpointBefore);
  }

  touchDevice(deviceId: string, at: number): void {
    this.deviceRows.touch(deviceId, at);
  }

  touchDeviceDurably(deviceId: string, at: number, checkpointBefore: number): void {
    this.deviceRows.touchDurably(deviceId, at, checkpointBefore);
  }

  checkpointDevices(olderThan: number): number {
    return this.deviceRows.checkpoint(olderThan);
  }

  removeDevice(deviceId: string, onlyTransport?: Transport): void {
    this.deviceRows.remove(deviceId, onlyTransport);
  }

  /** A dropped socket's device stays live until its TTL from `lastSeenAt` at the latest (the reconnect grace). */
  holdDevice(deviceId: string, lastSeenAt: number): void {
    this.deviceRows.hold(deviceId, lastSeenAt);
  }

  ageDevices(shift: (t: number) => number, deviceId?: string): void {
    this.deviceRows.age(shift, deviceId);
  }

  // ─── friendship edges ────────────────────────────────────────────────────

  edge(other: string): Edge {
    if (!this.tables.exist) return NO_EDGE;
    const row = this.sql.exec(`SELECT mine, my_version, theirs, their_version FROM friends WHERE friend_id = ?`, other).toArray()[0];
    if (!row) return NO_EDGE;
    return { mine: row.mine as Intent, myVersion: Number(row.my_version), theirs: row.theirs as Edge["theirs"], theirVersion: Number(row.their_version) };
  }

  /** Stores this side of an edge. Rows are kept after a friendship ends: their versions order later messages. */
  putEdge(other: string, edge: Edge, text: string | null, now: number): void {
    // No edge is no row (an unblock of someone never contacted used to leave the block in place).
    if (edge.mine === "none" && edge.theirs === "none" && edge.myVersion === 0 && edge.theirVersion === 0) {
      this.forgetEdge(other);
      return;
    }
    const state = deriveState(edge);
    this.tables.create();
    this.sql.exec(
      `INSERT INTO friends (friend_id, state, mine, my_version, theirs, their_version, message, hidden, since)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT(friend_id) DO UPDATE SET state = excluded.state, mine = excluded.mine, my_version = excluded.my_version,
         theirs = excluded.theirs, their_version = excluded.their_version,
         message = CASE WHEN excluded.state IN ('incoming', 'outgoing') THEN COALESCE(excluded.message, message) ELSE NULL END,
         hidden = CASE WHEN excluded.state = 'friends' THEN hidden ELSE 0 END,
         hidden_view = CASE WHEN excluded.state = 'friends' THEN hidden_view ELSE NULL END,
         last_seen = CASE WHEN excluded.state = 'friends' THEN last_seen ELSE 0 END,
         since = CASE WHEN excluded.state = state THEN since ELSE excluded.since END`,
      other,
      state,
      edge.mine,
      edge.myVersion,
      edge.theirs,
      edge.theirVersion,
      state === "incoming" || state === "outgoing" ? text : null,
      now,
    );
  }

  /** Drops the edge row of a user this one never had anything recorded with (see Friendships.forgetIfUntouched). */
  forgetEdge(other: string): void {
    if (this.tables.exist) this.sql.exec(`DELETE FROM friends WHERE friend_id = ?`, other);
  }

  edges(): EdgeRow[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id, state, message, hidden, since FROM friends WHERE state != 'none' ORDER BY friend_id`)
      .toArray()
      .map((r) => ({
        userId: String(r.friend_id),
        state: r.state as EdgeState,
        message: (r.message as string | null) ?? null,
        hidden: Number(r.hidden) === 1,
        since: Number(r.since),
      }));
  }

  requestNote(other: string): string | null {
    if (!this.tables.exist) return null;
    const row = this.sql.exec(`SELECT message FROM friends WHERE friend_id = ?`, other).toArray()[0];
    return (row?.message as string | null | undefined) ?? null;
  }

  friendIds(): string[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id FROM friends WHERE state = 'friends'`)
      .toArray()
      .map((r) => String(r.friend_id));
  }

  isFriend(userId: string): boolean {
    if (!this.tables.exist) return false;
    return this.sql.exec(`SELECT 1 FROM friends WHERE friend_id = ? AND state = 'friends'`, userId).toArray().length > 0;
  }

  edgeCounts(): Record<EdgeState, number> {
    const counts: Record<EdgeState, number> = { none: 0, outgoing: 0, incoming: 0, friends: 0, blocked: 0 };
    if (!this.tables.exist) return counts;
    for (const r of this.sql.exec(`SELECT state, COUNT(*) AS n FROM friends GROUP BY state`).toArray()) counts[r.state as EdgeState] = Number(r.n);
    return counts;
  }

  // ─── what one friend may see: hidden, seq numbering, last seen (issues #12, #16) ──

  /** One row read per friend and push (as `hiddenView` was). A non-friend: nothing hidden, no offset. */
  audience(friend: string): Audience {
    if (!this.tables.exist) return { hidden: null, seqOffset: 0, lastSeen: false };
    const row = this.sql.exec(`SELECT hidden, hidden_view, seq_offset, last_seen FROM friends WHERE friend_id = ?`, friend).toArray()[0];
    if (!row) return { hidden: null, seqOffset: 0, lastSeen: false };
    const hidden = Number(row.hidden) === 1 && row.hidden_view ? (JSON.parse(String(row.hidden_view)) as Presence) : null;
    return { hidden, seqOffset: Number(row.seq_offset), lastSeen: Number(row.last_seen) === 1 };
  }

  /** Hides from a friend (the frozen view) or shows again, with the friend's seq offset from now on: one row. */
  setAudience(friend: string, hidden: Presence | null, seqOffset: number): void {
    if (this.tables.exist)
      this.sql.exec(
        `UPDATE friends SET hidden = ?, hidden_view = ?, seq_offset = ? WHERE friend_id = ?`,
        hidden ? 1 : 0,
        hidden ? JSON.stringify(hidden) : null,
        seqOffset,
        friend,
      );
  }

  /** Chooses a friend to see "last seen" (or not). */
  setLastSeenShown(friend: string, shown: boolean): void {
    if (this.tables.exist) this.sql.exec(`UPDATE friends SET last_seen = ? WHERE friend_id = ? AND state = 'friends'`, shown ? 1 : 0, friend);
  }

  lastSeenShownTo(): string[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id FROM friends WHERE state = 'friends' AND last_seen = 1 ORDER BY friend_id`)
      .toArray()
      .map((r) => String(r.friend_id));
  }

  // ─── watchers: friends holding a lease on this user ──────────────────────

  putWatcher(watcher: string, expiresAt: number, positions: PositionInterest = "all", realm: string | null = null): void {
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

  /** A watcher that wants positions of its own realm only moved to `realm`: one row written, only when it changed. */
  watcherRealmSeen(watcher: string, realm: string | null): void {
    if (this.tables.exist) this.sql.exec(`UPDATE watchers SET realm = ? WHERE watcher_id = ? AND positions = 'realm' AND realm IS NOT ?`, realm, watcher, realm);
  }

  removeWatcher(watcher: string): void {
    if (this.tables.exist) this.sql.exec(`DELETE FROM watchers WHERE watcher_id = ?`, watcher);
  }

  /** Watchers with a valid lease (expired ones are dropped here: leases expire lazily), except those hidden from. */
  fanOutTargets(now: number, only?: string): string[] {
    return this.fanOutLeases(now, only).map((l) => l.watcher);
  }

  /** The same, with each watcher's position interest. */
  fanOutLeases(now: number, only?: string): Lease[] {
    if (!this.tables.exist) return [];
    this.sql.exec(`DELETE FROM watchers WHERE lease_expires_at <= ?`, now);
    const rows = only
      ? this.sql.exec(`SELECT watcher_id, positions, realm FROM watchers WHERE watcher_id = ?`, only).toArray()
      : this.sql.exec(`SELECT w.watcher_id, w.positions, w.realm FROM watchers w LEFT JOIN friends f ON f.friend_id = w.watcher_id WHERE COALESCE(f.hidden, 0) = 0`).toArray();
    return rows.map((r) => ({ watcher: String(r.watcher_id), positions: (r.positions as PositionInterest | null) ?? "all", realm: (r.realm as string | null) ?? null }));
  }

  // ─── friends' presence: cache of watched friends, in memory only ─────────
  //
  // Not on disk (issue #11): a friend's presence received by a watcher is what
  // its sockets were sent; after a wake the object rebuilds it from its friends
  // (a re-watch, durable/watching.ts). A delivered update writes no row.

  private readonly friendPresence = new Map<string, Presence>();

  cached(friend: string): Presence | null {
    return this.friendPresence.get(friend) ?? null;
  }

  cachedAll(): Presence[] {
    return [...this.friendPresence.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  }

  /**
   * Keeps a friend's presence if it is newer than the cached one (a higher
   * seq, or the cached one is an `unknown` placeholder), or always with
   * `force`; returns whether it was kept.
   */
  cacheIfNewer(presence: Presence, force: boolean): boolean {
    const held = this.friendPresence.get(presence.userId);
    if (!force && held && held.status !== "unknown" && presence.seq <= held.seq) return false;
    this.friendPresence.set(presence.userId, presence);
    return true;
  }

  uncache(friend?: string): void {
    if (friend === undefined) this.friendPresence.clear();
    else this.friendPresence.delete(friend);
  }

  // ─── outbox (durable/store/outbox.ts) ───────────────────────────────────

  enqueueKeyed(kind: "presence" | "watch", target: string, nextAttemptAt: number): void {
    this.outboxRows.enqueueKeyed(kind, target, nextAttemptAt);
  }

  enqueueEdge(target: string, payload: string, now: number): void {
    this.outboxRows.enqueueEdge(target, payload, now);
  }

  outbox(): OutboxRow[] {
    return this.outboxRows.all();
  }

  delivered(row: Pick<OutboxRow, "id" | "key">): void {
    this.outboxRows.delivered(row);
  }

  deliveredKeyed(kind: "presence" | "watch", target: string): void {
    this.outboxRows.deliveredKeyed(kind, target);
  }

  failed(id: number, attempts: number, nextAttemptAt: number): void {
    this.outboxRows.failed(id, attempts, nextAttemptAt);
  }

  dropQueued(kinds: Array<"presence" | "watch">, target?: string): void {
    this.outboxRows.dropQueued(kinds, target);
  }

  hasPendingEdges(target: string, besides = 0): boolean {
    return this.outboxRows.hasPendingEdges(target, besides);
  }

  nextOutboxAttempt(): number | null {
    return this.outboxRows.nextAttempt();
  }

  /** Server-side events (durable/events.ts): a batch whose send to the queue failed, retried by the alarm. */
  enqueueEvents(payload: string, nextAttemptAt: number): void {
    this.outboxRows.enqueueEvents(payload, nextAttemptAt);
  }

  // ─── derived ─────────────────────────────────────────────────────────────

  /** This user's presence as last published (what friends were told), or offline before the first. */
  published(userId: string): Presence {
    return this.get("published") ?? offlinePresence(userId, this.get("last_active_at"), Math.max(this.get("seq") ?? 0, this.get("seq_ceiling") ?? 0));
  }
}
