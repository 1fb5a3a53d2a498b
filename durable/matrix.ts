/**
 * Matrix: the user's object as the backend of the Matrix client-server API
 * (src/matrix/, docs/MATRIX.md). It owns
 *   - the user's `matrix` device (one for all their Matrix clients): a /sync
 *     is its sign of life, a changed `set_presence` or a PUT its status;
 *   - the slot table of since tokens, and per shown user (self and each
 *     friend) the Matrix view last observed and the seq at which it changed
 *     (`content_seq`), so a token says exactly what a client has seen;
 *   - the status text kept for the offline shape (Synapse keeps it);
 *   - parked long polls: hibernatable WebSockets from the worker, tagged
 *     WAIT_TAG, woken (and closed) when anything Matrix can see changes.
 * Nothing here exists for a user who never used the Matrix API: the tables
 * are made on the first Matrix call.
 */
import { MATRIX_DEVICE_ID, type MatrixSyncRequest, type MatrixSyncResult, type RateLimited } from "../src/matrix/backend";
import { deviceStatusFor, matrixView, type MatrixPresenceState } from "../src/matrix/mapping";
import { computeSync, type FriendEntry } from "../src/matrix/sync";
import type { Result } from "../src/presence/result";
import type { Presence } from "../src/presence/types";
import { objectCounters } from "./counters";
import type { Host } from "./host";
import type { OwnPresence } from "./presence";
import type { Sockets } from "./sockets";
import type { Watching } from "./watching";

/** The worker parks a long poll by opening a WebSocket with this header (the mark of its last empty result). */
export const MATRIX_WAIT_HEADER = "x-presence-matrix-wait";
/** Tag of parked long polls (not a valid device id, so never confused with a device's sockets). */
const WAIT_TAG = "#matrix-wait";
/** The key of the user's own row in matrix_slots (slot 0); friends have slots from 1. */
const SELF = "";

interface ShownRow {
  slot: number;
  view: string | null;
  contentSeq: number;
}

export class MatrixPart {
  /** Per-instance: marks of an older instance never match (an object that slept wakes parked polls at once). */
  private readonly instance = crypto.randomUUID().slice(0, 8);
  private changes = 0;
  private enabled: boolean | null = null;
  private rows: Map<string, ShownRow> | null = null;
  private meta: Map<string, string> | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly host: Host,
    private readonly serverName: () => string,
    private readonly sockets: Sockets,
    private readonly presence: OwnPresence,
    private readonly watching: Watching,
    private readonly refresh: (now: number) => Promise<void>,
  ) {
    presence.offlineText = () => (this.inUse ? this.keptText() : undefined);
    sockets.onBroadcast = (message) => {
      if (message.type === "presence" || message.type === "friend_added") this.friendSeen(message.presence);
    };
  }

  // ─── storage (made on first use) ────────────────────────────────────────

  private get sql(): SqlStorage {
    return this.ctx.storage.sql;
  }

  /** Whether this user ever used the Matrix API (its tables exist). */
  get inUse(): boolean {
    this.enabled ??= this.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'matrix_meta'`).toArray().length > 0;
    return this.enabled;
  }

  private enable(): void {
    if (this.inUse) return;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS matrix_slots (friend_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE, view TEXT, content_seq INTEGER NOT NULL DEFAULT 0)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS matrix_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    this.sql.exec(`INSERT OR IGNORE INTO matrix_meta (key, value) VALUES ('epoch', ?)`, String(crypto.getRandomValues(new Uint32Array(1))[0]!));
    this.sql.exec(`INSERT OR IGNORE INTO matrix_slots (friend_id, slot) VALUES (?, 0)`, SELF);
    this.enabled = true;
  }

  private metaMap(): Map<string, string> {
    this.meta ??= new Map(
      this.sql
        .exec(`SELECT key, value FROM matrix_meta`)
        .toArray()
        .map((r) => [String(r.key), String(r.value)]),
    );
    return this.meta;
  }

  private setMeta(key: string, value: string): void {
    const meta = this.metaMap();
    if (meta.get(key) === value) return;
    meta.set(key, value);
    this.sql.exec(`INSERT INTO matrix_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value);
  }

  private shownRows(): Map<string, ShownRow> {
    this.rows ??= new Map(
      this.sql
        .exec(`SELECT friend_id, slot, view, content_seq FROM matrix_slots`)
        .toArray()
        .map((r) => [String(r.friend_id), { slot: Number(r.slot), view: (r.view as string | null) ?? null, contentSeq: Number(r.content_seq) }]),
    );
    return this.rows;
  }

  /** The row of a shown user; a friend gets a slot once, never reused (rows outlive friendships). */
  private row(userId: string): ShownRow {
    const rows = this.shownRows();
    let row = rows.get(userId);
    if (!row) {
      const slot = Math.max(0, ...[...rows.values()].map((r) => r.slot)) + 1;
      row = { slot, view: null, contentSeq: 0 };
      rows.set(userId, row);
      this.sql.exec(`INSERT INTO matrix_slots (friend_id, slot) VALUES (?, ?)`, userId, slot);
    }
    return row;
  }

  /** Records what Matrix can see of a presence; true when that changed (its content_seq moves to this seq). */
  private observe(key: string, presence: Presence): boolean {
    if (presence.status === "unknown") return false;
    const row = this.row(key);
    const view = matrixView(presence);
    if (row.view === view) return false;
    row.view = view;
    row.contentSeq = presence.seq;
    this.sql.exec(`UPDATE matrix_slots SET view = ?, content_seq = ? WHERE friend_id = ?`, view, presence.seq, key);
    return true;
  }

  // ─── the kept status text ────────────────────────────────────────────────

  /** The text shown while offline: the last one of a visible device, or the one given with an explicit offline. */
  keptText(): string | null {
    const raw = this.metaMap().get("kept_text");
    return raw === undefined ? null : (JSON.parse(raw) as string | null);
  }

  private keepText(text: string | null): void {
    this.setMeta("kept_text", JSON.stringify(text));
  }

  // ─── hooks from the rest of the object ───────────────────────────────────

  /** After every refresh: keep the visible text, and wake parked polls if the user's own Matrix view changed. */
  afterRefresh(view: Omit<Presence, "seq">, now: number): void {
    if (!this.inUse) return;
    if (view.status !== "offline") this.keepText(view.statusText);
    if (this.observe(SELF, this.presence.selfView(now))) this.wake();
  }

  /** A friend's presence reached this user's cache (push or watch answer). */
  private friendSeen(presence: Presence): void {
    if (this.inUse && this.observe(presence.userId, presence)) this.wake();
  }

  // ─── the Matrix calls ────────────────────────────────────────────────────

  private rateLimited(): RateLimited {
    return { ok: false, code: "rate_limited", retryAfterMs: Math.ceil(1000 / (this.host.config.ratePerSecond * 2)) };
  }

  private matrixDevice() {
    return this.host.store.devices().find((d) => d.deviceId === MATRIX_DEVICE_ID) ?? null;
  }

  /** A status statement of the matrix device (a PUT, or a /sync whose set_presence changed it). */
  private state(status: ReturnType<typeof deviceStatusFor>, statusText: string | null, now: number): void {
    this.host.store.heartbeatDevice({ deviceId: MATRIX_DEVICE_ID, kind: "matrix", transport: "matrix", status, statusText, realm: null, position: null }, now);
  }

  /** GET /presence/{target}/status from the object's lookup: the presence, null for anyone not shown, or the rate limit (issue #12). */
  presenceAnswer(found: Result<Presence, "not_found" | "rate_limited">): Presence | null | RateLimited {
    if (found.ok) return found.value;
    return found.code === "rate_limited" ? { ok: false, code: "rate_limited", retryAfterMs: found.retryAfterMs ?? 1_000 } : null;
  }

  async setPresence(state: MatrixPresenceState, statusMsg: string | null, now: number): Promise<{ ok: true } | RateLimited> {
    this.enable();
    if (!this.sockets.admitUser(now)) return this.rateLimited();
    this.state(deviceStatusFor(state), statusMsg, now);
    // An explicit offline keeps the message given with it, or none (as Synapse).
    if (state === "offline") this.keepText(statusMsg);
    await this.refresh(now);
    return { ok: true };
  }

  async sync(request: MatrixSyncRequest, now: number): Promise<MatrixSyncResult | RateLimited> {
    objectCounters.matrixSyncs++;
    this.enable();
    if (request.signOfLife) {
      if (!this.sockets.admitUser(now)) return this.rateLimited();
      const device = this.matrixDevice();
      const status = deviceStatusFor(request.setPresence);
      // A poll is a ping; only a change of set_presence is a status statement (the text stays).
      if (device === null || device.status !== status) this.state(status, device?.statusText ?? null, now);
      else this.host.store.touchDeviceDurably(MATRIX_DEVICE_ID, now, now - this.host.config.ttlMs / 2);
      await this.refresh(now);
    }
    const mark = this.mark();
    const self = this.presence.selfView(now);
    this.observe(SELF, self);
    const friends: FriendEntry[] = [];
    for (const presence of await this.watching.allFriends()) {
      this.observe(presence.userId, presence);
      const row = this.row(presence.userId);
      friends.push({ presence, contentSeq: row.contentSeq, slot: row.slot });
    }
    const result = computeSync({
      self: { presence: self, contentSeq: this.row(SELF).contentSeq },
      friends,
      since: request.since,
      fullState: request.fullState,
      epoch: Number(this.metaMap().get("epoch")),
      now,
      serverName: this.serverName(),
      filter: request.filter,
    });
    return { ok: true, events: result.events, nextBatch: result.nextBatch, mark };
  }

  // ─── parked long polls ───────────────────────────────────────────────────

  private mark(): string {
    return `${this.instance}:${this.changes}`;
  }

  /** The worker parks a poll: answered at once (204) if something changed since `mark`, else a hibernatable socket woken on the next change. */
  park(mark: string): Response {
    objectCounters.matrixParks++;
    if (mark !== this.mark()) return new Response(null, { status: 204 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [WAIT_TAG]);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Whether `ws` is a parked poll (counted: every event on one is a billed wake of this object). */
  owns(ws: WebSocket): boolean {
    const owned = this.ctx.getTags(ws).includes(WAIT_TAG);
    if (owned) objectCounters.matrixWaitEvents++;
    return owned;
  }

  /** The worker let go of a parked poll (its timeout, or the client left). */
  released(ws: WebSocket): void {
    this.sockets.close(ws, 1000, "released");
  }

  /** Something Matrix can see changed: every parked poll evaluates again. */
  private wake(): void {
    this.changes++;
    for (const ws of this.ctx.getWebSockets(WAIT_TAG)) {
      try {
        ws.send("wake");
      } catch {
        // Closing already.
      }
      this.sockets.close(ws, 1000, "wake");
    }
  }

  /** Parked polls right now (for tests and the benchmark). */
  parked(): number {
    return this.ctx.getWebSockets(WAIT_TAG).length;
  }
}
