/**
 * OwnPresence: the user's devices and the presence they add up to (the state
 * machine of src/presence/aggregate.ts, fed by heartbeats and the TTL), and
 * when a change is published. Three views of the same user, never confused:
 *   - selfView:    what the user sees of themself (invisible shows as such);
 *   - outwardView: what friends would see right now (computed, no seq yet);
 *   - published:   what friends were last told (with its seq) — the only one
 *                  that ever leaves this object.
 *
 * What is written (issue #11): a device row when a device appears, disappears,
 * goes invisible or gets a "clear after" deadline, and the published presence
 * when the shown devices change; for a device no socket carries (HTTP,
 * Matrix, Decentraland) also its status changes. A heartbeat that changes
 * nothing, a position-only publish and a socket device's status change write
 * no row: the device's state and the published presence ride in the socket
 * attachments (they survive hibernation), and seqs of unwritten publishes stay
 * below a reservation (`seq_ceiling`), so seq only grows even across a restart
 * (docs/DESIGN-NOTES.md, "What is written, and what is not"). HTTP devices, which
 * have no socket, checkpoint their last sign of life when the row's is older
 * than half the TTL, so a restart never expires one that is still heartbeating.
 *
 * Each friend has its own numbering of `published` (issue #12): their seq is
 * the user's minus an offset that grows only while they are hidden from, so a
 * friend's seq moves only when what they see moves — unhiding shows them one
 * step, not the count of what happened meanwhile. Who sees "last seen"
 * (`lastActiveAt`) is applied per friend in the same place (issue #16).
 */
import { aggregate, classifyChange, isLive, type Aggregate } from "../src/presence/aggregate";
import { heartbeatExpiry, pendingExpiry } from "../src/presence/expiry";
import { offlinePresence, withoutLastSeen } from "../src/presence/protocol";
import { refuse, type Refusal } from "../src/presence/result";
import type { HeartbeatBody } from "../src/presence/schema";
import { deviceDeadline, positionPublishAt } from "../src/presence/timers";
import type { DeviceKind, LastSeenPrivacy, Presence, Transport } from "../src/presence/types";
import type { ServerEvents } from "./events";
import type { Host } from "./host";
import type { Sockets } from "./sockets";
import type { Watchers } from "./watchers";

/** Whether the devices friends are shown differ (one appeared or disappeared; offline and invisible show none). */
const devicesMoved = (before: Presence, after: Presence): boolean => before.devices.map((d) => d.deviceId).join("\n") !== after.devices.map((d) => d.deviceId).join("\n");

/** Seqs reserved ahead of the written one: position-only publishes between two writes of `seq_ceiling`. */
export const SEQ_RESERVATION = 1_000;

export class OwnPresence {
  /** Server-side events (durable/events.ts); null: the operator configured no queue. */
  events: ServerEvents | null = null;
  /** The status text of the offline shape (set by the Matrix part for its users; undefined: none, as before). */
  offlineText: () => string | null | undefined = () => undefined;
  /** What a wake lost was brought back (from the sockets' attachments or the seq reservation). */
  private loaded = false;
  /** The lowest seq the next publish may build on (the reservation, after a wake with no socket to ask). */
  private seqFloor = 0;
  /**
   * Friends may have been told more than the row on disk says: a WebSocket
   * device lost its socket without a close (a restart) and no socket carries
   * the published presence. The next publish goes even if nothing changed
   * against the row, with a seq above the reservation (see `load`).
   */
  private uncertain = false;

  constructor(
    private readonly host: Host,
    private readonly watchers: Watchers,
    private readonly sockets: Sockets,
  ) {
    watchers.viewFor = (friend, presence) => this.viewFor(friend, presence);
  }

  /** After a wake: the latest published presence from the sockets, or the reservation when none carries one. */
  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    const { store } = this.host;
    const onDisk = store.get("published");
    const saved = this.sockets.savedPublished();
    if (saved && (!onDisk || saved.presence.seq > onDisk.seq)) store.remember("published", saved.presence);
    // When friends were last told: kept in the attachments, so POSITION_INTERVAL_MS spans a wake (every heartbeat may be one).
    if (saved?.at != null && store.get("published_at") === null) store.remember("published_at", saved.at);
    if (!saved) this.seqFloor = store.get("seq_ceiling") ?? 0;
    this.sockets.latestPublished = store.get("published");
    this.sockets.latestPublishedAt = store.get("published_at");
    // Status changes of socket devices are not written (their attachments carry them): when such a device's
    // socket is gone without a word (a restart), what friends were told since the row is lost. Told again once.
    this.uncertain = !saved && store.lostSockets;
  }

  /** The seq of the last publish (or more: never less). */
  private seq(): number {
    this.load();
    const { store } = this.host;
    return Math.max(store.get("published")?.seq ?? 0, store.get("seq") ?? 0, this.seqFloor);
  }

  /** A new device beyond the per-user limit is refused; a known device may always come back. */
  deviceLimit(deviceId: string, now: number): Refusal<"too_many_devices"> | null {
    const { store, config } = this.host;
    const live = store.devices().filter((d) => isLive(d, now, config.ttlMs));
    if (live.some((d) => d.deviceId === deviceId) || live.length < config.maxDevicesPerUser) return null;
    return refuse("too_many_devices", `at most ${config.maxDevicesPerUser} devices per user`);
  }

  recordHeartbeat(deviceId: string, kind: DeviceKind, transport: Transport, body: HeartbeatBody, now: number): void {
    const { store, config } = this.host;
    // A socket's device rides in its attachment (its status, text and realm too); an HTTP device checkpoints at half the TTL.
    const carried = transport === "ws";
    const checkpointBefore = transport === "http" ? now - config.ttlMs / 2 : Number.NEGATIVE_INFINITY;
    // The deadline is part of the row (written when it is set or cleared, for every transport): it survives a restart.
    const expiresAt = heartbeatExpiry(store.device(deviceId), body, now);
    const statusText = body.statusText ?? null;
    store.heartbeatDevice({ deviceId, kind, transport, status: body.status, statusText, realm: body.realm, position: body.position, expiresAt }, now, checkpointBefore, carried);
  }

  /** When the device's status/text clears on its own ("clear after"), if that is still ahead. */
  expiryOf(deviceId: string, now: number): number | null {
    const device = this.host.store.device(deviceId);
    return device ? pendingExpiry(device, now) : null;
  }

  /** Tests: moves the devices' signs of life through `shift` (memory, disk and the sockets' attachments). */
  ageSignsOfLife(shift: (t: number) => number, deviceId?: string): void {
    const { store } = this.host;
    store.ageDevices(shift, deviceId);
    this.sockets.saveDevices((deviceId) => store.device(deviceId));
  }

  /**
   * The last socket of a device ended. A clean close (a close frame) removes
   * the device at once. One that dropped without a close frame (1006, a
   * network switch) keeps it shown for RECONNECT_GRACE_MS: its last sign of
   * life moves back so that its TTL ends when the grace does (never later than
   * it would have), written so a restart keeps the bound; the device's TTL
   * wake-up is the grace's. A reconnect of the same device id within it is a
   * sign of life like any other: friends see nothing at all.
   */
  socketGone(deviceId: string, unclean: boolean, now: number): void {
    const { store, config } = this.host;
    if (unclean && config.reconnectGraceMs > 0) store.holdDevice(deviceId, now + config.reconnectGraceMs - config.ttlMs);
    else store.removeDevice(deviceId, "ws");
  }

  /** Removes the devices silent for longer than the TTL; returns their ids (their sockets are to be closed). */
  expireSilentDevices(now: number): string[] {
    const { store, config } = this.host;
    const expired = store.devices().filter((d) => !isLive(d, now, config.ttlMs));
    for (const device of expired) store.removeDevice(device.deviceId);
    return expired.map((d) => d.deviceId);
  }

  /** The user's own view: like friends', except invisible shows as such to themself. */
  selfView(now: number): Presence {
    const { view, invisible } = this.aggregate(now);
    const seq = this.seq();
    return invisible ? { ...view, seq, invisible: true } : { ...view, seq };
  }

  /**
   * What friends would see now (before per-friend hiding), and whether the
   * user has a live device. Location sharing is applied here, before change
   * detection, so hidden moves publish nothing.
   */
  outwardView(now: number): { view: Omit<Presence, "seq">; hasLiveDevice: boolean } {
    const { view, hasLiveDevice } = this.aggregate(now);
    return { view: this.shareLocation === "none" ? { ...view, realm: null, position: null } : view, hasLiveDevice };
  }

  /** Keeps the last time the user was seen active, for "last seen" once offline. */
  rememberLastActive(view: Omit<Presence, "seq">): void {
    if (view.lastActiveAt !== null && view.status !== "offline") this.host.store.remember("last_active_at", view.lastActiveAt);
  }

  /** What friends were last told, or offline before the first publish. */
  published(): Presence {
    this.load();
    return this.host.store.published(this.host.userId);
  }

  private aggregate(now: number): Aggregate {
    const { store, config } = this.host;
    const lastActive = Math.max(store.get("last_active_at") ?? 0, this.published().lastActiveAt ?? 0);
    const result = aggregate(this.host.userId, store.devices(), now, config.ttlMs, lastActive || null);
    const kept = result.view.status === "offline" ? this.offlineText() : undefined;
    return kept === undefined ? result : { ...result, view: { ...result.view, statusText: kept } };
  }

  /**
   * Publishes `view` if friends would notice: status, realm, text or devices
   * at once; a position-only move at most once per coalescing interval, and
   * not while the previous fan-out is still out (back-pressure: that publish
   * carries the latest position when it goes).
   */
  async publishChanges(view: Omit<Presence, "seq">, now: number): Promise<void> {
    const { store, config } = this.host;
    this.load();
    const compared = classifyChange(store.get("published") ?? offlinePresence(this.host.userId), view);
    const change = this.uncertain ? "significant" : compared;
    // Call budget spent (issue #12): the publish waits for it (alarm at publish_at); the latest view goes then.
    const wait = change === "none" ? 0 : this.host.callWaitMs(now);
    if (wait > 0) store.remember("publish_at", now + wait);
    else if (change === "significant") await this.publish(view, now, true);
    else if (change === "position") {
      // POSITION_INTERVAL_MS (a cost lever, off by default): within the interval a move is held, and goes with the
      // first refresh after it (the client's next frame, the TTL alarm): no alarm, no row of its own.
      const lastPublished = store.get("published_at");
      if (config.positionIntervalMs > 0 && lastPublished !== null && now < lastPublished + config.positionIntervalMs) {
        store.remember("publish_at", null);
        return;
      }
      const at = positionPublishAt(lastPublished, now, config.positionCoalesceMs);
      if (at <= now && !this.watchers.busy) await this.publish(view, now, false);
      else store.remember("publish_at", Math.max(at, this.watchers.busy ? now + config.positionCoalesceMs : at));
    } else store.remember("publish_at", null);
  }

  /**
   * Bumps seq, keeps what friends see, and pushes it to every watcher. Kept in
   * memory and the sockets' attachments, its seq within the reservation;
   * written when `significant` and either a device appeared or disappeared
   * (so the row on disk always lists the devices friends were last told of: a
   * restart's expiry is then a change, never a ghost) or no open socket
   * carries it (HTTP, Matrix users): docs/DESIGN-NOTES.md, "What is written,
   * and what is not".
   */
  private async publish(view: Omit<Presence, "seq">, now: number, significant: boolean): Promise<void> {
    const { store } = this.host;
    const before = this.published();
    const seq = this.seq() + 1;
    const presence: Presence = { ...view, seq };
    this.uncertain = false;
    this.sockets.savePublished(presence, now);
    const written = significant && (devicesMoved(before, presence) || !this.sockets.carriesPublished(presence));
    if (written) store.set("published", presence);
    else store.remember("published", presence);
    // Seqs ahead are reserved with the first written publish (a device appearing), so the unwritten ones after it write nothing.
    if (seq >= (store.get("seq_ceiling") ?? 0)) store.set("seq_ceiling", seq + SEQ_RESERVATION);
    store.remember("published_at", now);
    store.remember("publish_at", null);
    // The operator's event goes out beside the fan-out (a per-friend toggle is not a publish: hideFrom).
    // "Last seen" set to anything but all friends is not told to the operator's stream either.
    const told = (p: Presence) => (this.lastSeen === "all" || p.lastActiveAt === null ? p : { ...p, lastActiveAt: null });
    await Promise.all([this.watchers.push(presence, now, undefined, !significant), this.events?.published(told(before), told(presence), now)]);
  }

  /**
   * What one friend may see of a published presence: the frozen offline shape
   * if hidden from, else the presence in their numbering; "last seen" only if
   * the setting lets them.
   */
  viewFor(friend: string, presence: Presence): Presence {
    const audience = this.host.store.audience(friend);
    const seen = audience.hidden ?? (audience.seqOffset === 0 ? presence : { ...presence, seq: presence.seq - audience.seqOffset });
    const lastSeen = this.lastSeen;
    const showsLastSeen = lastSeen === "all" || (lastSeen === "chosen" && audience.lastSeen);
    return showsLastSeen ? seen : withoutLastSeen(seen);
  }

  /**
   * Hides from one friend (the offline shape, frozen now) or shows again.
   * Only that friend is told, and only if what they see changes (one step in
   * their seq); nobody else's seq moves. While hidden, the friend's numbering
   * stands still: on showing again it resumes one past the frozen seq, so the
   * publishes they did not see cannot be counted (issue #12).
   */
  async hideFrom(friend: string, hidden: boolean, now: number): Promise<void> {
    const { store } = this.host;
    const before = store.audience(friend);
    if ((before.hidden !== null) === hidden) return;
    const shared = this.published();
    if (hidden) {
      const seen = { ...shared, seq: shared.seq - before.seqOffset };
      const { view } = this.outwardView(now);
      const shape = offlinePresence(this.host.userId, view.lastActiveAt ?? store.get("last_active_at"));
      const changes = classifyChange(seen, shape) !== "none";
      store.setAudience(friend, { ...shape, seq: seen.seq + (changes ? 1 : 0) }, before.seqOffset);
      if (changes) await this.watchers.push(shared, now, friend);
    } else {
      const frozen = before.hidden!;
      const changes = classifyChange(frozen, shared) !== "none";
      store.setAudience(friend, null, shared.seq - (frozen.seq + (changes ? 1 : 0)));
      if (changes) await this.watchers.push(shared, now, friend);
    }
  }

  /** Who sees "last seen": every friend, the chosen ones, or nobody (applied per friend in `viewFor`). */
  get lastSeen(): LastSeenPrivacy {
    return this.host.store.get("last_seen") ?? "all";
  }

  set lastSeen(lastSeen: LastSeenPrivacy) {
    this.host.store.set("last_seen", lastSeen === "all" ? null : lastSeen);
  }

  /** Chooses one friend to see "last seen" when the setting is `chosen`. */
  showLastSeenTo(friend: string, shown: boolean): void {
    this.host.store.setLastSeenShown(friend, shown);
  }

  /** Realm and position shared with every friend, or with none. */
  get shareLocation(): "all" | "none" {
    return this.host.store.get("share_location") === "none" ? "none" : "all";
  }

  set shareLocation(share: "all" | "none") {
    this.host.store.set("share_location", share === "none" ? "none" : null);
  }

  /** Each device's TTL and pending "clear after" deadline, and the coalesced publish, for the alarm. */
  nextWakeUps(now = Date.now()): Array<number | null> {
    const { store, config } = this.host;
    const devices = store.devices();
    return [...devices.map((d) => deviceDeadline(d, config.ttlMs)), ...devices.map((d) => pendingExpiry(d, now)), store.get("publish_at")];
  }
}
