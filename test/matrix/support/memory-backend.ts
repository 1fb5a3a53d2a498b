/**
 * An in-memory MatrixBackend with the project's real presence rules: devices
 * aggregated by src/presence/aggregate.ts, a per-user `seq` bumped only on a
 * change friends can see (classifyChange), a TTL after each device's last
 * sign of life, and /sync computed by src/matrix/sync.ts. It stands in for
 * the UserPresence Durable Object (durable/matrix.ts) in the quick suites;
 * what it does not model: watch leases, the friend cache, the outbox,
 * hiding, location privacy.
 *
 * `MemoryState` is the durable part (what SQLite holds): a new
 * MemoryPresence over the same state is a server restart.
 */
import { aggregate, classifyChange } from "../../../src/presence/aggregate";
import { offlinePresence } from "../../../src/presence/protocol";
import { takeToken, type Bucket } from "../../../src/presence/timers";
import type { DeviceKind, DeviceState, DeviceStatus, Presence } from "../../../src/presence/types";
import { MATRIX_DEVICE_ID, type MatrixBackend, type MatrixSyncRequest, type MatrixSyncResult, type RateLimited } from "../../../src/matrix/backend";
import { deviceStatusFor, sameMatrixView, type MatrixPresenceState } from "../../../src/matrix/mapping";
import { computeSync, type FriendEntry } from "../../../src/matrix/sync";

interface UserRow {
  devices: Map<string, DeviceState>;
  seq: number;
  /** What friends see, as last published. */
  published: Presence;
  /** The seq at which the Matrix view of `published` last changed. */
  contentSeq: number;
  /** Last time a visible device was active; "last seen" once offline. */
  lastActiveAt: number | null;
  /** Status text kept for the offline view (Synapse keeps status_msg when a user times out). */
  lastStatusText: string | null;
  /** Friend → slot for since tokens; slots are never reused. */
  slots: Map<string, number>;
  nextSlot: number;
}

/** What survives a restart. */
export interface MemoryState {
  epoch: number;
  users: Map<string, UserRow>;
  friends: Map<string, Set<string>>;
}

export function newMemoryState(epoch = 0x5eed): MemoryState {
  return { epoch, users: new Map(), friends: new Map() };
}

export interface MemoryOptions {
  ttlMs: number;
  serverName: string;
  now?: () => number;
  /** Per-user token bucket (the object's user bucket: twice a socket's). */
  rateBurst?: number;
  ratePerSecond?: number;
}

export class MemoryPresence implements MatrixBackend {
  private readonly now: () => number;
  /** Per-user change counters and waiters: in memory only, like the object's (a restart resets them). */
  private readonly marks = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly buckets = new Map<string, Bucket>();
  private sweep: ReturnType<typeof setTimeout> | undefined;
  private sweepAt = Infinity;
  private closed = false;

  constructor(
    readonly state: MemoryState,
    readonly options: MemoryOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.sweep);
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  // ─── the project's side: friendships and non-Matrix devices ──────────────

  befriend(a: string, b: string): void {
    this.user(a);
    this.user(b);
    this.friendsOf(a).add(b);
    this.friendsOf(b).add(a);
    this.notify(a);
    this.notify(b);
  }

  unfriend(a: string, b: string): void {
    this.friendsOf(a).delete(b);
    this.friendsOf(b).delete(a);
  }

  /** A project device (WebSocket or HTTP heartbeat) states its status: what `PositionHeartbeat` does. */
  heartbeat(
    userId: string,
    deviceId: string,
    status: DeviceStatus,
    statusText: string | null = null,
    where: { realm?: string; position?: { x: number; y: number; z: number }; kind?: DeviceKind } = {},
  ): Presence {
    const now = this.now();
    this.user(userId).devices.set(deviceId, {
      deviceId,
      kind: where.kind ?? "desktop",
      transport: "ws",
      status,
      statusText,
      realm: where.realm ?? "lobby",
      position: where.position ?? { x: 0, y: 0, z: 0 },
      lastHeartbeatAt: now,
      lastSeenAt: now,
    });
    this.refresh(userId, now);
    return this.selfPresence(userId);
  }

  /** A project device closes cleanly. */
  disconnect(userId: string, deviceId: string): void {
    this.user(userId).devices.delete(deviceId);
    this.refresh(userId, this.now());
  }

  // ─── MatrixBackend ───────────────────────────────────────────────────────

  async presence(self: string, target: string): Promise<Presence | null> {
    const now = this.now();
    if (target === self) {
      this.refresh(self, now);
      return this.selfPresence(self);
    }
    if (!this.state.users.has(target) || !this.friendsOf(self).has(target)) return null;
    this.refresh(target, now);
    return this.user(target).published;
  }

  async setPresence(self: string, state: MatrixPresenceState, statusMsg: string | null): Promise<{ ok: true } | RateLimited> {
    const now = this.now();
    const refusal = this.rateLimit(self, now);
    if (refusal) return refusal;
    const row = this.user(self);
    const status = deviceStatusFor(state);
    const device = this.matrixDevice(self, now);
    device.status = status;
    device.statusText = statusMsg;
    if (status !== null) device.lastHeartbeatAt = now;
    device.lastSeenAt = now;
    // An explicit offline keeps the message given with it (or none), as in Synapse.
    if (state === "offline") row.lastStatusText = statusMsg;
    this.refresh(self, now);
    return { ok: true };
  }

  async sync(self: string, request: MatrixSyncRequest): Promise<MatrixSyncResult | RateLimited> {
    const now = this.now();
    const row = this.user(self);
    if (request.signOfLife) {
      const refusal = this.rateLimit(self, now);
      if (refusal) return refusal;
      const device = this.matrixDevice(self, now);
      const status = deviceStatusFor(request.setPresence);
      // A poll is a ping; only a change of set_presence is a new status statement (keeps its text, as Synapse does).
      if (device.status !== status) {
        device.status = status;
        if (status !== null) device.lastHeartbeatAt = now;
      }
      device.lastSeenAt = now;
    }
    this.refresh(self, now);
    const friends: FriendEntry[] = [...this.friendsOf(self)].map((friend) => {
      this.refresh(friend, now);
      const other = this.user(friend);
      return { presence: other.published, contentSeq: other.contentSeq, slot: this.slotOf(row, friend) };
    });
    const result = computeSync({
      self: { presence: this.selfPresence(self), contentSeq: row.contentSeq },
      friends,
      since: request.since,
      fullState: request.fullState,
      epoch: this.state.epoch,
      now,
      serverName: this.options.serverName,
      filter: request.filter,
    });
    return { ok: true, events: result.events, nextBatch: result.nextBatch, mark: String(this.marks.get(self) ?? 0) };
  }

  waitForChange(self: string, mark: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || String(this.marks.get(self) ?? 0) !== mark || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const set = this.waiters.get(self) ?? new Set();
      this.waiters.set(self, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener("abort", done);
      set.add(done);
    });
  }

  /** How many /sync long polls are parked right now (for the cost tests). */
  parked(userId?: string): number {
    if (userId !== undefined) return this.waiters.get(userId)?.size ?? 0;
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  // ─── rules ───────────────────────────────────────────────────────────────

  private user(userId: string): UserRow {
    let row = this.state.users.get(userId);
    if (!row) {
      row = {
        devices: new Map(),
        seq: 0,
        published: offlinePresence(userId),
        contentSeq: 0,
        lastActiveAt: null,
        lastStatusText: null,
        slots: new Map(),
        nextSlot: 1,
      };
      this.state.users.set(userId, row);
    }
    return row;
  }

  private friendsOf(userId: string): Set<string> {
    let set = this.state.friends.get(userId);
    if (!set) {
      set = new Set();
      this.state.friends.set(userId, set);
    }
    return set;
  }

  private slotOf(row: UserRow, friend: string): number {
    let slot = row.slots.get(friend);
    if (slot === undefined) {
      slot = row.nextSlot++;
      row.slots.set(friend, slot);
    }
    return slot;
  }

  private matrixDevice(userId: string, now: number): DeviceState {
    const devices = this.user(userId).devices;
    let device = devices.get(MATRIX_DEVICE_ID);
    if (!device) {
      device = {
        deviceId: MATRIX_DEVICE_ID,
        kind: "web",
        transport: "http",
        status: null,
        statusText: null,
        realm: null,
        position: null,
        lastHeartbeatAt: null,
        lastSeenAt: now,
      };
      devices.set(MATRIX_DEVICE_ID, device);
    }
    return device;
  }

  private rateLimit(userId: string, now: number): RateLimited | null {
    const burst = this.options.rateBurst ?? 40;
    const perSecond = this.options.ratePerSecond ?? 10;
    const { allowed, bucket } = takeToken(this.buckets.get(userId), now, burst, perSecond);
    this.buckets.set(userId, bucket);
    if (allowed) return null;
    return { ok: false, code: "rate_limited", retryAfterMs: Math.ceil(((1 - bucket.tokens) / perSecond) * 1000) };
  }

  /** The user's own view: what friends see, plus `invisible` when they chose it. */
  private selfPresence(userId: string): Presence {
    const row = this.user(userId);
    const { invisible } = aggregate(userId, [...row.devices.values()], this.now(), this.options.ttlMs, row.lastActiveAt);
    return invisible ? { ...row.published, invisible: true } : row.published;
  }

  /** Expire silent devices, aggregate, publish a change friends can see. Idempotent. */
  private refresh(userId: string, now: number): void {
    const row = this.user(userId);
    for (const device of [...row.devices.values()]) {
      if (device.lastSeenAt + this.options.ttlMs <= now) row.devices.delete(device.deviceId);
    }
    const { view } = aggregate(userId, [...row.devices.values()], now, this.options.ttlMs, row.lastActiveAt);
    if (view.status !== "offline") {
      row.lastActiveAt = view.lastActiveAt;
      row.lastStatusText = view.statusText;
    }
    const shown: Omit<Presence, "seq"> = view.status === "offline" ? { ...view, statusText: row.lastStatusText } : view;
    if (classifyChange(row.published, shown) !== "none") {
      const previous = row.published;
      row.seq += 1;
      row.published = { ...shown, seq: row.seq };
      if (!sameMatrixView(previous, row.published)) {
        row.contentSeq = row.seq;
        this.notify(userId);
        for (const friend of this.friendsOf(userId)) this.notify(friend);
      }
    }
    this.schedule();
  }

  private notify(userId: string): void {
    this.marks.set(userId, (this.marks.get(userId) ?? 0) + 1);
    for (const wake of [...(this.waiters.get(userId) ?? [])]) wake();
  }

  /** The alarm: one timer at the earliest device deadline of any user. */
  private schedule(): void {
    if (this.closed) return;
    let earliest = Infinity;
    for (const row of this.state.users.values()) {
      for (const device of row.devices.values()) earliest = Math.min(earliest, device.lastSeenAt + this.options.ttlMs);
    }
    if (earliest === this.sweepAt) return;
    clearTimeout(this.sweep);
    this.sweepAt = earliest;
    if (earliest === Infinity) return;
    this.sweep = setTimeout(
      () => {
        this.sweepAt = Infinity;
        const now = this.now();
        for (const userId of [...this.state.users.keys()]) this.refresh(userId, now);
        this.schedule();
      },
      Math.max(1, earliest - this.now() + 1),
    );
    this.sweep.unref?.();
  }
}
