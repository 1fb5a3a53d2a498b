/**
 * The `devices` table: the user's devices and their last sign of life, held in
 * memory and written only when a device appears or disappears, when what
 * friends see of it changes (status, text, realm, kind, its first heartbeat;
 * for a socket's device only the first heartbeat, kind, invisibility and
 * deadline), or on a checkpoint the caller asks for (issue #11: a no-op heartbeat writes
 * nothing). A WebSocket device's latest state travels in its socket's
 * attachment, which survives hibernation; `saved` brings it back when the rows
 * are read after a wake. Reached through UserStore (durable/store.ts).
 */
import type { DeviceKind, DeviceState, DeviceStatus, Transport } from "../../src/presence/types";
import type { Tables } from "./tables";

/** The fields of a device row written when they change (what friends see of it). */
const deviceShape = (d: DeviceState): string => JSON.stringify([d.kind, d.transport, d.status, d.statusText, d.realm, d.lastHeartbeatAt === null, d.expiresAt ?? null]);

/**
 * The same for a device whose socket attachment carries its state: status, text
 * and realm ride there (a restart closes the socket, and the row's older values
 * only stand until the device reconnects or its TTL ends). Its appearance to
 * friends (the first heartbeat), its kind, whether it is invisible (privacy: a
 * restart must not show it) and its "clear after" deadline (a reconnect keeps
 * it) are still written.
 */
const carriedShape = (d: DeviceState): string => JSON.stringify([d.kind, d.transport, d.lastHeartbeatAt === null, d.status === "invisible", d.expiresAt ?? null]);

export class DeviceRows {
  private cache: Map<string, DeviceState> | null = null;
  /** What the row on disk says, per device: its shapes (the fields written on change) and last sign of life. */
  private readonly onDisk = new Map<string, { shape: string; carried: string; lastSeenAt: number }>();
  /** Device states saved outside SQLite (socket attachments), newer than the rows when they say so. */
  saved: () => DeviceState[] = () => [];
  /**
   * When the rows were read (once per instance): a JSON socket's device had a
   * row but no socket carried it (its socket ended without a word: a restart,
   * or a drop in its reconnect grace). What friends were told of it may be
   * newer than its row (its status changes are not written).
   */
  lostSockets = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private map(): Map<string, DeviceState> {
    if (this.cache) return this.cache;
    // No tables: no device was ever written (a socket's attachment always has its row).
    if (!this.tables.exist) {
      this.cache = new Map();
      return this.cache;
    }
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
          expiresAt: r.expires_at === null ? null : Number(r.expires_at),
        }),
      );
    this.cache = new Map(rows.map((d) => [d.deviceId, d]));
    for (const d of rows) this.onDisk.set(d.deviceId, { shape: deviceShape(d), carried: carriedShape(d), lastSeenAt: d.lastSeenAt });
    const carried = new Set<string>();
    for (const saved of this.saved()) {
      carried.add(saved.deviceId);
      const row = this.cache.get(saved.deviceId);
      // A device with no row was removed (removal is written at once): the attachment is stale.
      if (row && saved.lastSeenAt >= row.lastSeenAt) this.cache.set(saved.deviceId, { ...saved, transport: row.transport });
    }
    this.lostSockets = rows.some((d) => d.transport === "ws" && d.kind !== "dcl" && !carried.has(d.deviceId));
    return this.cache;
  }

  all(): DeviceState[] {
    return [...this.map().values()];
  }

  get(deviceId: string): DeviceState | null {
    return this.map().get(deviceId) ?? null;
  }

  private write(device: DeviceState): void {
    this.tables.create();
    this.sql.exec(
      `INSERT INTO devices (device_id, kind, transport, status, status_text, realm, x, y, z, last_heartbeat_at, last_seen_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind, transport = excluded.transport, status = excluded.status,
         status_text = excluded.status_text, realm = excluded.realm, x = excluded.x, y = excluded.y, z = excluded.z,
         last_heartbeat_at = excluded.last_heartbeat_at, last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`,
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
      device.expiresAt ?? null,
    );
    this.onDisk.set(device.deviceId, { shape: deviceShape(device), carried: carriedShape(device), lastSeenAt: device.lastSeenAt });
  }

  /** A socket connected (a device appears: written): a new device is live but not shown; a known one keeps its last heartbeat. */
  connect(deviceId: string, kind: DeviceKind, now: number): void {
    const known = this.map().get(deviceId);
    const device: DeviceState = known
      ? { ...known, kind, transport: "ws", lastSeenAt: now }
      : { deviceId, kind, transport: "ws", status: null, statusText: null, realm: null, position: null, lastHeartbeatAt: null, lastSeenAt: now };
    this.map().set(deviceId, device);
    this.write(device);
  }

  /**
   * A heartbeat: in memory; written when what friends see of the device changed
   * (with `carried`, a socket attachment carries it: only its appearance, kind,
   * invisibility and deadline), or when the row's last sign of life is older than
   * `checkpointBefore`. Returns whether a row was written.
   */
  heartbeat(device: Omit<DeviceState, "lastSeenAt" | "lastHeartbeatAt">, now: number, checkpointBefore = Number.NEGATIVE_INFINITY, carried = false): boolean {
    const next: DeviceState = { ...device, lastHeartbeatAt: now, lastSeenAt: now };
    this.map().set(device.deviceId, next);
    const disk = this.onDisk.get(device.deviceId);
    const unchanged = carried ? disk?.carried === carriedShape(next) : disk?.shape === deviceShape(next);
    if (disk && unchanged && disk.lastSeenAt >= checkpointBefore) return false;
    this.write(next);
    return true;
  }

  /** Any sign of life (a frame, a ping answered by the runtime): memory only. */
  touch(deviceId: string, at: number): void {
    const device = this.map().get(deviceId);
    if (device && at > device.lastSeenAt) this.map().set(deviceId, { ...device, lastSeenAt: at });
  }

  /**
   * A sign of life of a device whose state no socket attachment carries across a
   * wake (Matrix, Decentraland): in memory, and written when the row's is older
   * than `checkpointBefore` (half the TTL ago), so that an evicted object does not
   * expire a device that is still there. At most one row per half TTL per device.
   */
  touchDurably(deviceId: string, at: number, checkpointBefore: number): void {
    this.touch(deviceId, at);
    const device = this.map().get(deviceId);
    const disk = this.onDisk.get(deviceId);
    if (device && (!disk || disk.lastSeenAt < checkpointBefore)) this.write(device);
  }

  /** Writes the devices whose row is older than their state in memory (a checkpoint); returns how many. */
  checkpoint(olderThan: number): number {
    let written = 0;
    for (const device of this.map().values()) {
      const disk = this.onDisk.get(device.deviceId);
      if (disk && disk.lastSeenAt >= olderThan) continue;
      this.write(device);
      written++;
    }
    return written;
  }

  remove(deviceId: string, onlyTransport?: Transport): void {
    const device = this.map().get(deviceId);
    if (!device || (onlyTransport && device.transport !== onlyTransport)) return;
    this.map().delete(deviceId);
    this.onDisk.delete(deviceId);
    if (this.tables.exist) this.sql.exec(`DELETE FROM devices WHERE device_id = ?`, deviceId);
  }

  /**
   * A WebSocket device whose socket dropped (the reconnect grace): its last
   * sign of life is at most `lastSeenAt` from now on, so its TTL ends sooner;
   * written, so a restart keeps the bound.
   */
  hold(deviceId: string, lastSeenAt: number): void {
    const device = this.map().get(deviceId);
    if (!device || device.transport !== "ws" || device.lastSeenAt <= lastSeenAt) return;
    const held = { ...device, lastSeenAt };
    this.map().set(deviceId, held);
    this.write(held);
  }

  /** Tests: moves the devices' (or one device's) signs of life through `shift`, in memory and on disk. */
  age(shift: (t: number) => number, deviceId?: string): void {
    for (const d of this.all()) {
      if (deviceId !== undefined && d.deviceId !== deviceId) continue;
      const aged = { ...d, lastSeenAt: shift(d.lastSeenAt), lastHeartbeatAt: d.lastHeartbeatAt === null ? null : shift(d.lastHeartbeatAt) };
      this.map().set(d.deviceId, aged);
      this.write(aged);
    }
  }
}
