/**
 * UserStore: the SQLite rows of one user's Durable Object, named in presence
 * terms. Every statement binds its values; cursors are read fully before
 * returning, so callers may `await` freely afterwards.
 */
import { deriveState, NO_EDGE, type Edge, type EdgeState, type Intent } from "../src/presence/friendship";
import { offlinePresence } from "../src/presence/protocol";
import type { DeviceKind, DeviceState, DeviceStatus, PositionInterest, Presence, Transport } from "../src/presence/types";
import { meteredSql, type ObjectMeter } from "./meter";
import { DECODE, type EdgeRow, type Lease, MIGRATIONS, type Meta, type MetaKey, type OutboxRow } from "./schema";

/** The fields of a device row written when they change (what friends see of it). */
const deviceShape = (d: DeviceState): string => JSON.stringify([d.kind, d.transport, d.status, d.statusText, d.realm, d.lastHeartbeatAt === null]);

export class UserStore {
  private readonly sql: SqlStorage;

  constructor(storage: DurableObjectStorage, meter: ObjectMeter) {
    this.sql = meteredSql(storage.sql, meter);
    // PRAGMA user_version is not allowed here; the schema version lives in its own table.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
    const version = Number(this.sql.exec(`SELECT MAX(version) AS v FROM schema_version`).one().v ?? 0);
    if (version >= MIGRATIONS.length) return;
    storage.transactionSync(() => {
      for (let v = version; v < MIGRATIONS.length; v++) for (const statement of MIGRATIONS[v]!) this.sql.exec(statement);
      this.sql.exec(`DELETE FROM schema_version`);
      this.sql.exec(`INSERT INTO schema_version (version) VALUES (?)`, MIGRATIONS.length);
    });
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
        this.sql
          .exec(`SELECT key, value FROM meta`)
          .toArray()
          .map((r) => [String(r.key), String(r.value)]),
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
      this.sql.exec(`DELETE FROM meta WHERE key = ?`, key);
    } else {
      const raw = typeof value === "object" ? JSON.stringify(value) : value === true ? "1" : String(value);
      if (meta.get(key) === raw && !this.unwritten.delete(key)) return;
      this.unwritten.delete(key);
      meta.set(key, raw);
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

  // ─── devices ─────────────────────────────────────────────────────────────
  //
  // Held in memory and written only when a device appears or disappears, when
  // what friends see of it changes (status, text, realm, kind, its first
  // heartbeat), or on a checkpoint the caller asks for (issue #11: a no-op
  // heartbeat writes nothing). A WebSocket device's latest state travels in its
  // socket's attachment, which survives hibernation; `savedDevices` brings it
  // back when the rows are read after a wake.

  private deviceCache: Map<string, DeviceState> | null = null;
  /** What the row on disk says, per device: its shape (the fields written on change) and last sign of life. */
  private readonly onDisk = new Map<string, { shape: string; lastSeenAt: number }>();
  /** Device states saved outside SQLite (socket attachments), newer than the rows when they say so. */
  savedDevices: () => DeviceState[] = () => [];

  private deviceMap(): Map<string, DeviceState> {
    if (this.deviceCache) return this.deviceCache;
    const rows = this.sql
      .exec(`SELECT * FROM devices`)
      .toArray()
      .map(
        (r): DeviceState => ({
          deviceId: String(r.device_id),
          kind: r.kind as DeviceKind,
          transport: r.transport as Transport,
          status: (r.status as DeviceStatus | null) ?? null,
          statusText: (r.status_text as string | null) ?? null,
          realm: (r.realm as string | null) ?? null,
          position: r.x === null ? null : { x: Number(r.x), y: Number(r.y), z: Number(r.z) },
          lastHeartbeatAt: r.last_heartbeat_at === null ? null : Number(r.last_heartbeat_at),
          lastSeenAt: Number(r.last_seen_at),
        }),
      );
    this.deviceCache = new Map(rows.map((d) => [d.deviceId, d]));
    for (const d of rows) this.onDisk.set(d.deviceId, { shape: deviceShape(d), lastSeenAt: d.lastSeenAt });
    for (const saved of this.savedDevices()) {
      const row = this.deviceCache.get(saved.deviceId);
      // A device with no row was removed (removal is written at once): the attachment is stale.
      if (row && saved.lastSeenAt >= row.lastSeenAt) this.deviceCache.set(saved.deviceId, { ...saved, transport: row.transport });
    }
    return this.deviceCache;
  }

  devices(): DeviceState[] {
    return [...this.deviceMap().values()];
  }

  device(deviceId: string): DeviceState | null {
    return this.deviceMap().get(deviceId) ?? null;
  }

  private writeDevice(device: DeviceState): void {
    this.sql.exec(
      `INSERT INTO devices (device_id, kind, transport, status, status_text, realm, x, y, z, last_heartbeat_at, last_seen_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind, transport = excluded.transport, status = excluded.status,
         status_text = excluded.status_text, realm = excluded.realm, x = excluded.x, y = excluded.y, z = excluded.z,
         last_heartbeat_at = excluded.last_heartbeat_at, last_seen_at = excluded.last_seen_at`,
      device.deviceId,
      device.kind,
      device.transport,
      device.status,
      device.statusText,
      device.realm,
      device.position?.x ?? null,
      device.position?.y ?? null,
      device.position?.z ?? null,
      device.lastHeartbeatAt,
      device.lastSeenAt,
    );
    this.onDisk.set(device.deviceId, { shape: deviceShape(device), lastSeenAt: device.lastSeenAt });
  }

  /** A socket connected (a device appears: written): a new device is live but not shown; a known one keeps its last heartbeat. */
  connectDevice(deviceId: string, kind: DeviceKind, now: number): void {
    const known = this.deviceMap().get(deviceId);
    const device: DeviceState = known
      ? { ...known, kind, transport: "ws", lastSeenAt: now }
      : { deviceId, kind, transport: "ws", status: null, statusText: null, realm: null, position: null, lastHeartbeatAt: null, lastSeenAt: now };
    this.deviceMap().set(deviceId, device);
    this.writeDevice(device);
  }

  /**
   * A heartbeat: in memory; written when what friends see of the device changed,
   * or when the row's last sign of life is older than `checkpointBefore`.
   * Returns whether a row was written.
   */
  heartbeatDevice(device: Omit<DeviceState, "lastSeenAt" | "lastHeartbeatAt">, now: number, checkpointBefore = Number.NEGATIVE_INFINITY): boolean {
    const next: DeviceState = { ...device, lastHeartbeatAt: now, lastSeenAt: now };
    this.deviceMap().set(device.deviceId, next);
    const disk = this.onDisk.get(device.deviceId);
    if (disk && disk.shape === deviceShape(next) && disk.lastSeenAt >= checkpointBefore) return false;
    this.writeDevice(next);
    return true;
  }

  /** Any sign of life (a frame, a ping answered by the runtime): memory only. */
  touchDevice(deviceId: string, at: number): void {
    const device = this.deviceMap().get(deviceId);
    if (device && at > device.lastSeenAt) this.deviceMap().set(deviceId, { ...device, lastSeenAt: at });
  }

  /**
   * A sign of life of a device whose state no socket attachment carries across a
   * wake (Matrix, Decentraland): in memory, and written when the row's is older
   * than `checkpointBefore` (half the TTL ago), so that an evicted object does not
   * expire a device that is still there. At most one row per half TTL per device.
   */
  touchDeviceDurably(deviceId: string, at: number, checkpointBefore: number): void {
    this.touchDevice(deviceId, at);
    const device = this.deviceMap().get(deviceId);
    const disk = this.onDisk.get(deviceId);
    if (device && (!disk || disk.lastSeenAt < checkpointBefore)) this.writeDevice(device);
  }

  /** Writes the devices whose row is older than their state in memory (a checkpoint); returns how many. */
  checkpointDevices(olderThan: number): number {
    let written = 0;
    for (const device of this.deviceMap().values()) {
      const disk = this.onDisk.get(device.deviceId);
      if (disk && disk.lastSeenAt >= olderThan) continue;
      this.writeDevice(device);
      written++;
    }
    return written;
  }

  removeDevice(deviceId: string, onlyTransport?: Transport): void {
    const device = this.deviceMap().get(deviceId);
    if (!device || (onlyTransport && device.transport !== onlyTransport)) return;
    this.deviceMap().delete(deviceId);
    this.onDisk.delete(deviceId);
    this.sql.exec(`DELETE FROM devices WHERE device_id = ?`, deviceId);
  }

  /** Tests: moves the devices' (or one device's) signs of life through `shift`, in memory and on disk. */
  ageDevices(shift: (t: number) => number, deviceId?: string): void {
    for (const d of this.devices()) {
      if (deviceId !== undefined && d.deviceId !== deviceId) continue;
      const aged = { ...d, lastSeenAt: shift(d.lastSeenAt), lastHeartbeatAt: d.lastHeartbeatAt === null ? null : shift(d.lastHeartbeatAt) };
      this.deviceMap().set(d.deviceId, aged);
      this.writeDevice(aged);
    }
  }

  // ─── friendship edges ────────────────────────────────────────────────────

  edge(other: string): Edge {
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
    this.sql.exec(
      `INSERT INTO friends (friend_id, state, mine, my_version, theirs, their_version, message, hidden, since)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT(friend_id) DO UPDATE SET state = excluded.state, mine = excluded.mine, my_version = excluded.my_version,
         theirs = excluded.theirs, their_version = excluded.their_version,
         message = CASE WHEN excluded.state IN ('incoming', 'outgoing') THEN COALESCE(excluded.message, message) ELSE NULL END,
         hidden = CASE WHEN excluded.state = 'friends' THEN hidden ELSE 0 END,
         hidden_view = CASE WHEN excluded.state = 'friends' THEN hidden_view ELSE NULL END,
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

  edges(): EdgeRow[] {
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
    const row = this.sql.exec(`SELECT message FROM friends WHERE friend_id = ?`, other).toArray()[0];
    return (row?.message as string | null | undefined) ?? null;
  }

  friendIds(): string[] {
    return this.sql
      .exec(`SELECT friend_id FROM friends WHERE state = 'friends'`)
      .toArray()
      .map((r) => String(r.friend_id));
  }

  isFriend(userId: string): boolean {
    return this.sql.exec(`SELECT 1 FROM friends WHERE friend_id = ? AND state = 'friends'`, userId).toArray().length > 0;
  }

  edgeCounts(): Record<EdgeState, number> {
    const counts: Record<EdgeState, number> = { none: 0, outgoing: 0, incoming: 0, friends: 0, blocked: 0 };
    for (const r of this.sql.exec(`SELECT state, COUNT(*) AS n FROM friends GROUP BY state`).toArray()) counts[r.state as EdgeState] = Number(r.n);
    return counts;
  }

  /** Hide from a friend with the frozen view they will see, or unhide (`view` null). */
  setHidden(friend: string, view: Presence | null): void {
    this.sql.exec(`UPDATE friends SET hidden = ?, hidden_view = ? WHERE friend_id = ?`, view ? 1 : 0, view ? JSON.stringify(view) : null, friend);
  }

  hiddenView(friend: string): Presence | null {
    const row = this.sql.exec(`SELECT hidden, hidden_view FROM friends WHERE friend_id = ?`, friend).toArray()[0];
    return row && Number(row.hidden) === 1 && row.hidden_view ? (JSON.parse(String(row.hidden_view)) as Presence) : null;
  }

  // ─── watchers: friends holding a lease on this user ──────────────────────

  putWatcher(watcher: string, expiresAt: number, positions: PositionInterest = "all", realm: string | null = null): void {
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
    this.sql.exec(`UPDATE watchers SET realm = ? WHERE watcher_id = ? AND positions = 'realm' AND realm IS NOT ?`, realm, watcher, realm);
  }

  removeWatcher(watcher: string): void {
    this.sql.exec(`DELETE FROM watchers WHERE watcher_id = ?`, watcher);
  }

  /** Watchers with a valid lease (expired ones are dropped here: leases expire lazily), except those hidden from. */
  fanOutTargets(now: number, only?: string): string[] {
    return this.fanOutLeases(now, only).map((l) => l.watcher);
  }

  /** The same, with each watcher's position interest. */
  fanOutLeases(now: number, only?: string): Lease[] {
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

  // ─── outbox ──────────────────────────────────────────────────────────────

  /**
   * Keys of the queued presence/watch rows, read once and kept in step, so a
   * successful push (every fan-out) costs no SQL when nothing was queued for
   * that friend — the common case.
   */
  private keyedCache: Set<string> | null = null;

  private keyed(): Set<string> {
    this.keyedCache ??= new Set(
      this.sql
        .exec(`SELECT key FROM outbox WHERE key IS NOT NULL`)
        .toArray()
        .map((r) => String(r.key)),
    );
    return this.keyedCache;
  }

  /** Presence pushes and watch retries: one row per (kind, target); an existing row stays as it is. */
  enqueueKeyed(kind: "presence" | "watch", target: string, nextAttemptAt: number): void {
    this.keyed().add(`${kind}:${target}`);
    this.sql.exec(
      `INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (?, ?, ?, '{}', 0, ?)
       ON CONFLICT(key) DO NOTHING`,
      `${kind}:${target}`,
      target,
      kind,
      nextAttemptAt,
    );
  }

  /** Edge messages: queued in order per target, never merged. */
  enqueueEdge(target: string, payload: string, now: number): void {
    this.sql.exec(`INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (NULL, ?, 'edge', ?, 0, ?)`, target, payload, now);
  }

  outbox(): OutboxRow[] {
    return this.sql.exec(`SELECT * FROM outbox ORDER BY id`).toArray() as unknown as OutboxRow[];
  }

  delivered(row: Pick<OutboxRow, "id" | "key">): void {
    if (row.key !== null) this.keyed().delete(row.key);
    this.sql.exec(`DELETE FROM outbox WHERE id = ?`, row.id);
  }

  deliveredKeyed(kind: "presence" | "watch", target: string): void {
    const key = `${kind}:${target}`;
    if (!this.keyed().delete(key)) return;
    this.sql.exec(`DELETE FROM outbox WHERE key = ?`, key);
  }

  failed(id: number, attempts: number, nextAttemptAt: number): void {
    this.sql.exec(`UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?`, attempts, nextAttemptAt, id);
  }

  /** Drops queued presence/watch work (for one target, or all of one kind). */
  dropQueued(kinds: Array<"presence" | "watch">, target?: string): void {
    const keys = this.keyed();
    for (const key of [...keys]) {
      const [kind, ...rest] = key.split(":");
      if (kinds.includes(kind as "presence" | "watch") && (target === undefined || rest.join(":") === target)) keys.delete(key);
    }
    for (const kind of kinds) {
      if (target === undefined) this.sql.exec(`DELETE FROM outbox WHERE kind = ?`, kind);
      else this.sql.exec(`DELETE FROM outbox WHERE kind = ? AND target = ?`, kind, target);
    }
  }

  /** Whether edge messages to `target` are queued (more than `besides`: the one being delivered). */
  hasPendingEdges(target: string, besides = 0): boolean {
    return this.sql.exec(`SELECT 1 FROM outbox WHERE kind = 'edge' AND target = ? LIMIT 1 OFFSET ?`, target, besides).toArray().length > 0;
  }

  /** Drops the edge row of a user this one never had anything recorded with (see Friendships.forgetIfUntouched). */
  forgetEdge(other: string): void {
    this.sql.exec(`DELETE FROM friends WHERE friend_id = ?`, other);
  }

  /** When the outbox next needs the alarm: only the head of each target's edge queue counts (the rest wait for it). */
  nextOutboxAttempt(): number | null {
    const next = this.sql
      .exec(
        `SELECT MIN(next_attempt_at) AS next FROM outbox o
         WHERE kind != 'edge' OR id = (SELECT MIN(id) FROM outbox h WHERE h.kind = 'edge' AND h.target = o.target)`,
      )
      .one().next;
    return next === null ? null : Number(next);
  }

  /** This user's presence as last published (what friends were told), or offline before the first. */
  published(userId: string): Presence {
    return this.get("published") ?? offlinePresence(userId, this.get("last_active_at"), Math.max(this.get("seq") ?? 0, this.get("seq_ceiling") ?? 0));
  }

  // ─── server-side events (durable/events.ts; kept apart from the parts above) ──

  /** A batch of events whose send to the queue failed: one outbox row, retried by the alarm until the queue takes it. */
  enqueueEvents(payload: string, nextAttemptAt: number): void {
    this.sql.exec(`INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (NULL, 'EVENTS', 'event', ?, 1, ?)`, payload, nextAttemptAt);
  }
}
