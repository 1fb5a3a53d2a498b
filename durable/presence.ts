/**
 * OwnPresence: the user's devices and the presence they add up to (the state
 * machine of src/presence/aggregate.ts, fed by heartbeats and the TTL), and
 * when a change is published. Three views of the same user, never confused:
 *   - selfView:    what the user sees of themself (invisible shows as such);
 *   - outwardView: what friends would see right now (computed, no seq yet);
 *   - published:   what friends were last told (with its seq) — the only one
 *                  that ever leaves this object.
 *
 * What is written (issue #11): a device row when a device appears, disappears
 * or changes what friends see of it; the published presence when that is a
 * significant change (status, realm, text, devices). A heartbeat that changes
 * nothing, and a position-only publish, write no row: the device's state and
 * the published presence ride in the socket attachments (they survive
 * hibernation), and seqs of unwritten publishes stay below a reservation
 * (`seq_ceiling`), so seq only grows even across a restart. HTTP devices, which
 * have no socket, checkpoint their last sign of life when the row's is older
 * than half the TTL, so a restart never expires one that is still heartbeating.
 */
import { aggregate, classifyChange, isLive, type Aggregate } from "../src/presence/aggregate";
import { offlinePresence } from "../src/presence/protocol";
import { refuse, type Refusal } from "../src/presence/result";
import type { HeartbeatBody } from "../src/presence/schema";
import { deviceDeadline, positionPublishAt } from "../src/presence/timers";
import type { DeviceKind, Presence, Transport } from "../src/presence/types";
import type { ServerEvents } from "./events";
import type { Host } from "./host";
import type { Sockets } from "./sockets";
import type { Watchers } from "./watchers";

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

  constructor(
    private readonly host: Host,
    private readonly watchers: Watchers,
    private readonly sockets: Sockets,
  ) {}

  /** After a wake: the latest published presence from the sockets, or the reservation when none carries one. */
  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    const { store } = this.host;
    const onDisk = store.get("published");
    const saved = this.sockets.savedPublished();
    if (saved && (!onDisk || saved.seq > onDisk.seq)) store.remember("published", saved);
    if (!saved) this.seqFloor = store.get("seq_ceiling") ?? 0;
    this.sockets.latestPublished = store.get("published");
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
    // A socket's device rides in its attachment; an HTTP device checkpoints at half the TTL.
    const checkpointBefore = transport === "http" ? now - this.host.config.ttlMs / 2 : Number.NEGATIVE_INFINITY;
    this.host.store.heartbeatDevice(
      { deviceId, kind, transport, status: body.status, statusText: body.statusText ?? null, realm: body.realm, position: body.position },
      now,
      checkpointBefore,
    );
  }

  /** Tests: moves the devices' signs of life through `shift` (memory, disk and the sockets' attachments). */
  ageSignsOfLife(shift: (t: number) => number, deviceId?: string): void {
    const { store } = this.host;
    store.ageDevices(shift, deviceId);
    this.sockets.saveDevices((deviceId) => store.device(deviceId));
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
    const change = classifyChange(store.get("published") ?? offlinePresence(this.host.userId), view);
    // Call budget spent (issue #12): the publish waits for it (alarm at publish_at); the latest view goes then.
    const wait = change === "none" ? 0 : this.host.callWaitMs(now);
    if (wait > 0) store.remember("publish_at", now + wait);
    else if (change === "significant") await this.publish(view, now, true);
    else if (change === "position") {
      const at = positionPublishAt(store.get("published_at"), now, config.positionCoalesceMs);
      if (at <= now && !this.watchers.busy) await this.publish(view, now, false);
      else store.remember("publish_at", Math.max(at, this.watchers.busy ? now + config.positionCoalesceMs : at));
    } else store.remember("publish_at", null);
  }

  /**
   * Bumps seq, keeps what friends see, and pushes it: to every watcher, or
   * `only` to one (a privacy toggle). Written when `significant`; otherwise
   * kept in memory and the sockets' attachments, its seq within the reservation.
   */
  private async publish(view: Omit<Presence, "seq">, now: number, significant: boolean, only?: string): Promise<void> {
    const { store } = this.host;
    const before = this.published();
    const seq = this.seq() + 1;
    const presence: Presence = { ...view, seq };
    if (significant) store.set("published", presence);
    else {
      store.remember("published", presence);
      if (seq > (store.get("seq_ceiling") ?? 0)) store.set("seq_ceiling", seq + SEQ_RESERVATION);
    }
    store.remember("published_at", now);
    store.remember("publish_at", null);
    this.sockets.savePublished(presence);
    // The operator's event goes out beside the fan-out (a per-friend toggle is not one).
    await Promise.all([this.watchers.push(presence, now, only, !significant), only === undefined && this.events?.published(before, presence, now)]);
  }

  /**
   * Hides from one friend (the offline shape, frozen now) or shows again. A
   * new seq, pushed to that friend only: they replace what they hold; nobody
   * else is told anything.
   */
  async hideFrom(friend: string, hidden: boolean, now: number): Promise<void> {
    const { store } = this.host;
    const { view } = this.outwardView(now);
    const frozen = offlinePresence(this.host.userId, view.lastActiveAt ?? store.get("last_active_at"), this.seq() + 1);
    store.setHidden(friend, hidden ? frozen : null);
    await this.publish(view, now, true, friend);
  }

  /** Realm and position shared with every friend, or with none. */
  get shareLocation(): "all" | "none" {
    return this.host.store.get("share_location") === "none" ? "none" : "all";
  }

  set shareLocation(share: "all" | "none") {
    this.host.store.set("share_location", share === "none" ? "none" : null);
  }

  /** The earliest device TTL and the coalesced publish, for the alarm. */
  nextWakeUps(): Array<number | null> {
    const { store, config } = this.host;
    return [...store.devices().map((d) => deviceDeadline(d, config.ttlMs)), store.get("publish_at")];
  }
}
