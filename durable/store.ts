/**
 * UserStore: the SQLite rows of one user's Durable Object, named in presence
 * terms. Every statement binds its values; cursors are read fully before
 * returning, so callers may `await` freely afterwards.
 *
 * One facade over the tables, so callers name what they do, not where it
 * lives: meta (single values) is here; the friendship edges and what each
 * friend may see live in durable/store/friends.ts, the device map in
 * durable/store/devices.ts, the outbox rows in durable/store/outbox.ts,
 * the watchers' leases in durable/store/watchers.ts and the friends' presence
 * (in memory only) in durable/store/friend-cache.ts.
 *
 * The tables are created by the first write (durable/store/tables.ts): until
 * then every read answers "nothing" without touching SQL tables, and deletes
 * and updates have nothing to do, so an object only ever asked about (a
 * request to a never-used id) keeps no storage at all.
 */
import type { Edge, EdgeState } from "../src/presence/friendship";
import { offlinePresence } from "../src/presence/protocol";
import type { DeviceKind, DeviceState, PositionInterest, Presence, Transport } from "../src/presence/types";
import { meteredSql, type ObjectMeter } from "./meter";
import { type Audience, DECODE, type EdgeRow, type Lease, type Meta, type MetaKey, type OutboxRow } from "./schema";
import { DeviceRows } from "./store/devices";
import { FriendCache } from "./store/friend-cache";
import { FriendRows } from "./store/friends";
import { OutboxRows } from "./store/outbox";
import { Tables } from "./store/tables";
import { WatcherRows } from "./store/watchers";

export class UserStore {
  private readonly sql: SqlStorage;
  private readonly deviceRows: DeviceRows;
  private readonly outboxRows: OutboxRows;
  private readonly watcherRows: WatcherRows;
  private readonly friendRows: FriendRows;
  private readonly friendCache = new FriendCache();
  private readonly tables: Tables;

  constructor(storage: DurableObjectStorage, meter: ObjectMeter) {
    this.sql = meteredSql(storage.sql, meter);
    this.tables = new Tables(storage, this.sql);
    this.deviceRows = new DeviceRows(this.sql, this.tables);
    this.outboxRows = new OutboxRows(this.sql, this.tables);
    this.watcherRows = new WatcherRows(this.sql, this.tables);
    this.friendRows = new FriendRows(this.sql, this.tables);
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
      // A blank value is a cleared key whose row is kept (see `set`): absent here.
      this.metaCache = new Map(
        this.tables.exist
          ? this.sql
              .exec(`SELECT key, value FROM meta WHERE value != ''`)
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

  /**
   * Stores a value; `null` clears it. A cleared key keeps its row with a blank
   * value: setting it again then updates one row, where a delete and a new
   * insert write two each (the row and its key's index entry). Keys cleared and
   * set once per session (`live`, `watch_renew_at`, `watched_subset`) cost half.
   */
  set<K extends MetaKey>(key: K, value: Meta[K] | null): void {
    const meta = this.meta();
    if (value === null) {
      if (!meta.has(key) && !this.unwritten.delete(key)) return;
      this.unwritten.delete(key);
      meta.delete(key);
      if (this.tables.exist) this.sql.exec(`UPDATE meta SET value = '' WHERE key = ?`, key);
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

  /** When the device rows were read: a JSON socket's device had a row but no socket (durable/store/devices.ts). */
  get lostSockets(): boolean {
    this.deviceRows.all();
    return this.deviceRows.lostSockets;
  }

  device(deviceId: string): DeviceState | null {
    return this.deviceRows.get(deviceId);
  }

  connectDevice(deviceId: string, kind: DeviceKind, now: number): void {
    this.deviceRows.connect(deviceId, kind, now);
  }

  /** `carried`: the device's socket attachment carries its status, text and realm (durable/store/devices.ts). */
  heartbeatDevice(device: Omit<DeviceState, "lastSeenAt" | "lastHeartbeatAt">, now: number, checkpointBefore?: number, carried?: boolean): boolean {
    return this.deviceRows.heartbeat(device, now, checkpointBefore, carried);
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

  // ─── friendship edges and what each friend may see (durable/store/friends.ts) ──

  edge(other: string): Edge {
    return this.friendRows.edge(other);
  }

  /** Stores this side of an edge. Rows are kept after a friendship ends: their versions order later messages. */
  putEdge(other: string, edge: Edge, text: string | null, now: number): void {
    this.friendRows.putEdge(other, edge, text, now);
  }

  /** Drops the edge row of a user this one never had anything recorded with (see Friendships.forgetIfUntouched). */
  forgetEdge(other: string): void {
    this.friendRows.forgetEdge(other);
  }

  edges(): EdgeRow[] {
    return this.friendRows.edges();
  }

  requestNote(other: string): string | null {
    return this.friendRows.requestNote(other);
  }

  friendIds(): string[] {
    return this.friendRows.friendIds();
  }

  isFriend(userId: string): boolean {
    return this.friendRows.isFriend(userId);
  }

  edgeCounts(): Record<EdgeState, number> {
    return this.friendRows.edgeCounts();
  }

  /** What one friend may see: hidden (the frozen view), its seq offset, last seen. A non-friend: nothing hidden, no offset. */
  audience(friend: string): Audience {
    return this.friendRows.audience(friend);
  }

  /** Hides from a friend (the frozen view) or shows again, with the friend's seq offset from now on: one row. */
  setAudience(friend: string, hidden: Presence | null, seqOffset: number): void {
    this.friendRows.setAudience(friend, hidden, seqOffset);
  }

  /** Chooses a friend to see "last seen" (or not). */
  setLastSeenShown(friend: string, shown: boolean): void {
    this.friendRows.setLastSeenShown(friend, shown);
  }

  lastSeenShownTo(): string[] {
    return this.friendRows.lastSeenShownTo();
  }

  // ─── watchers: friends holding a lease on this user (durable/store/watchers.ts) ──

  putWatcher(watcher: string, expiresAt: number, positions: PositionInterest = "all", realm: string | null = null): void {
    this.watcherRows.put(watcher, expiresAt, positions, realm);
  }

  /** A watcher that wants positions of its own realm only moved to `realm`: one row written, only when it changed. */
  watcherRealmSeen(watcher: string, realm: string | null): void {
    this.watcherRows.realmSeen(watcher, realm);
  }

  removeWatcher(watcher: string): void {
    this.watcherRows.remove(watcher);
  }

  /**
   * Watchers with a valid lease (expired ones are dropped here: leases expire lazily), with each one's position
   * interest, except those hidden from; `keep` picks among them before the hidden check reads their rows.
   */
  fanOutLeases(now: number, only?: string, keep?: (lease: Lease) => boolean): Lease[] {
    return this.watcherRows.leases(now, (watcher) => this.friendRows.hiddenFrom(watcher), only, keep);
  }

  // ─── friends' presence: cache of watched friends, in memory only (durable/store/friend-cache.ts) ──

  cached(friend: string): Presence | null {
    return this.friendCache.get(friend);
  }

  cachedAll(): Presence[] {
    return this.friendCache.all();
  }

  /** Keeps a friend's presence if newer than the cached one (or always with `force`); whether it was kept. */
  cacheIfNewer(presence: Presence, force: boolean): boolean {
    return this.friendCache.keepIfNewer(presence, force);
  }

  uncache(friend?: string): void {
    this.friendCache.forget(friend);
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
