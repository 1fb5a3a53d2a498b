/**
 * Sockets: the user's hibernating WebSockets. Each is tagged with its device
 * id (so one device's sockets are found without waking the others) and
 * carries a typed attachment, so hibernation costs nothing. Abuse accounting
 * (token buckets, the error window) lives here too, in memory only: it resets
 * with hibernation, which only happens when the user is idle.
 */
import type { PresenceConfig } from "../src/presence/config";
import { CloseCode, type ServerMessage } from "../src/protocol";
import { takeToken, type Bucket } from "../src/presence/timers";
import type { EdgeState } from "../src/presence/friendship";
import type { DeviceKind, DeviceState, PositionInterest, Presence } from "../src/presence/types";
import { inSubset, type SocketSubset } from "../src/presence/subset";

/** What other kinds of socket (durable/dcl.ts) hear: every broadcast, and every change of an edge with its cause. */
export type SocketTap = { type: "broadcast"; message: ServerMessage } | { type: "edge"; userId: string; previous: EdgeState; next: EdgeState; cause: "local" | "remote" | "reply" };

/**
 * What a socket remembers across hibernation (at most 16 KB: ids, flags and two
 * small records). The device's latest state and the user's latest published
 * presence ride here so that a heartbeat or a position-only publish writes no
 * row and a woken object still knows them (issue #11).
 */
export interface SocketAttachment {
  deviceId: string;
  kind: DeviceKind;
  /** The client asked for friends' presence pushes. */
  subscribed: boolean;
  /** Which friends' position-only moves the client wants (connect's `?positions=` or its Subscribe); absent: all. */
  positions?: PositionInterest;
  /** Whose presence the client is pushed (connect's `?friends=` or its Subscribe; src/presence/subset.ts); absent: every friend's. */
  friends?: string[];
  /** This socket's device as of its last frame (newer than its row on disk). */
  device?: DeviceState;
  /** What friends were last told (its seq is the user's current seq). */
  published?: Presence;
  /** When that was (POSITION_INTERVAL_MS counts from it across a wake). */
  publishedAt?: number;
}

const KEPT = Symbol("attachment");
type Kept = WebSocket & { [KEPT]?: SocketAttachment };

export class Sockets {
  /** Per-socket abuse accounting. */
  private readonly buckets = new WeakMap<WebSocket, Bucket>();
  private readonly errors = new WeakMap<WebSocket, number[]>();
  /** One bucket for the whole user (all sockets + HTTP), twice a socket's size: many tabs cannot multiply the rate. */
  private userBucket: Bucket | undefined;
  private readonly taps: Array<(event: SocketTap) => void> = [];
  /** Set by the presence part: a new socket carries the current seq from the start (and when it was published). */
  latestPublished: Presence | null = null;
  latestPublishedAt: number | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly config: PresenceConfig,
  ) {}

  /** Accepts a new socket for `deviceId`, replacing any older one of the same device; returns the client end. */
  accept(deviceId: string, kind: DeviceKind, positions?: PositionInterest, friends?: string[]): { client: WebSocket; server: WebSocket } {
    this.closeDevice(deviceId, CloseCode.replaced, "replaced by a newer connection of this device");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [deviceId]);
    this.setAttachment(server, {
      deviceId,
      kind,
      subscribed: false,
      ...(positions ? { positions } : {}),
      ...(friends ? { friends } : {}),
      ...(this.latestPublished ? { published: this.latestPublished } : {}),
      ...(this.latestPublished && this.latestPublishedAt !== null ? { publishedAt: this.latestPublishedAt } : {}),
    });
    return { client, server };
  }

  /**
   * A socket's attachment as last written or read, kept on the socket object
   * itself: one frame reads its socket's attachment several times, and
   * deserializing is not free. Only Sockets writes a JSON socket's attachment,
   * so the copy cannot go stale; Decentraland sockets (`dcl` field, written by
   * durable/dcl.ts) are not kept. A property, not a WeakMap: the runtime may
   * hand out a new wrapper per event (`getWebSockets`), and a WeakMap entry per
   * wrapper cost more than it saved (bench/hot-path.mjs). The objects are
   * shared: never mutate one, write a new one (`setAttachment`).
   */
  private read(ws: WebSocket): SocketAttachment | null {
    const kept = (ws as Kept)[KEPT];
    if (kept) return kept;
    const attachment = ws.deserializeAttachment() as SocketAttachment | null;
    if (attachment && !("dcl" in attachment)) (ws as Kept)[KEPT] = attachment;
    return attachment;
  }

  /** Whether `ws` is known to be a JSON socket of this part (its attachment is kept on it): no other part owns it. */
  isJsonSocket(ws: WebSocket): boolean {
    return (ws as Kept)[KEPT] !== undefined;
  }

  attachment(ws: WebSocket): SocketAttachment {
    return this.read(ws) as SocketAttachment;
  }

  /** `friends`: a new subset, `"all"` to drop it, absent to keep the socket's. */
  setSubscribed(ws: WebSocket, subscribed: boolean, positions?: PositionInterest, friends?: string[] | "all"): void {
    const { positions: before, friends: subsetBefore, ...rest } = this.attachment(ws);
    const interest = positions ?? before;
    const subset = friends === "all" ? undefined : (friends ?? subsetBefore);
    this.setAttachment(ws, { ...rest, subscribed, ...(interest ? { positions: interest } : {}), ...(subset ? { friends: subset } : {}) });
  }

  /** Each open client socket's subset of friends (undefined: every friend); other kinds of socket (Decentraland) want every friend. */
  friendSubsets(): SocketSubset[] {
    const subsets: SocketSubset[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.read(ws);
      if (attachment?.deviceId && ws.readyState === WebSocket.OPEN) subsets.push(attachment.friends);
    }
    return subsets;
  }

  /** The position interests of the sockets that subscribed or named one at connect (absent: all). */
  positionInterests(): Array<PositionInterest | undefined> {
    const interests: Array<PositionInterest | undefined> = [];
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.read(ws);
      if (attachment && (attachment.subscribed || attachment.positions)) interests.push(attachment.positions);
    }
    return interests;
  }

  private setAttachment(ws: WebSocket, attachment: SocketAttachment): void {
    ws.serializeAttachment(attachment);
    if (!("dcl" in attachment)) (ws as Kept)[KEPT] = attachment;
  }

  /** Keeps the device's latest state with its socket (not a storage write). */
  saveDevice(ws: WebSocket, device: DeviceState | null): void {
    if (!device) return;
    try {
      this.setAttachment(ws, { ...this.attachment(ws), device });
    } catch {
      // The socket is closing; its device is handled by close/TTL.
    }
  }

  /** The device states the sockets carry (read once after a wake). */
  savedDevices(): DeviceState[] {
    const saved: DeviceState[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      const device = this.read(ws)?.device;
      if (device) saved.push(device);
    }
    return saved;
  }

  /** Tests: re-saves every socket's device from `lookup`. */
  saveDevices(lookup: (deviceId: string) => DeviceState | null): void {
    for (const ws of this.ctx.getWebSockets()) this.saveDevice(ws, lookup(this.attachment(ws).deviceId));
  }

  /** Keeps what friends were last told with every socket of the user. */
  savePublished(published: Presence, at: number): void {
    this.latestPublished = published;
    this.latestPublishedAt = at;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.read(ws);
      if (attachment) this.setAttachment(ws, { ...attachment, published, publishedAt: at });
    }
  }

  /** The latest published presence any socket carries (and when it was published, if known), or null when no socket does. */
  savedPublished(): { presence: Presence; at: number | null } | null {
    let latest: { presence: Presence; at: number | null } | null = null;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.read(ws);
      const published = attachment?.published;
      if (published && (!latest || published.seq > latest.presence.seq)) latest = { presence: published, at: attachment.publishedAt ?? null };
    }
    return latest;
  }

  /** Sockets whose end was handled (this instance). */
  private readonly ended = new WeakSet<WebSocket>();

  /**
   * True the first time a socket's end is reported: the runtime may report it
   * twice (an error and then a close, or the close frame that answers ours),
   * and a drop's reconnect grace must not be undone by the second report.
   */
  firstEnd(ws: WebSocket): boolean {
    if (this.ended.has(ws)) return false;
    this.ended.add(ws);
    return true;
  }

  /** Whether another open socket still carries this socket's device. */
  deviceStillConnected(ws: WebSocket): boolean {
    return this.ctx.getWebSockets(this.attachment(ws).deviceId).some((s) => s !== ws && s.readyState === WebSocket.OPEN);
  }

  /** Another kind of socket listens to what is broadcast (and to edge changes: `tap`). */
  listen(listener: (event: SocketTap) => void): void {
    this.taps.push(listener);
  }

  /** Tells the listeners about an event that is not a JSON broadcast. */
  tap(event: SocketTap): void {
    for (const listener of this.taps) listener(event);
  }

  /** A frame as is (binary protocols). */
  sendRaw(ws: WebSocket, frame: string | Uint8Array): void {
    try {
      ws.send(frame);
    } catch {
      // The socket is closing; its device is handled by close/TTL.
    }
  }

  send(ws: WebSocket, message: ServerMessage): void {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      // The socket is closing; its device is handled by close/TTL.
    }
  }

  close(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  closeDevice(deviceId: string, code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets(deviceId)) this.close(ws, code, reason);
  }

  /** Told of every broadcast (the Matrix part wakes its parked long polls). */
  onBroadcast: (message: ServerMessage) => void = () => undefined;

  /** To every socket that subscribed to friends' presence (a friend's presence: only to the sockets whose subset has them). */
  broadcast(message: ServerMessage): void {
    this.onBroadcast(message);
    const about = message.type === "presence" ? message.presence.userId : null;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.read(ws);
      if (attachment?.subscribed && (about === null || inSubset(attachment.friends, about))) this.send(ws, message);
    }
    this.tap({ type: "broadcast", message });
  }

  /**
   * Pings answered by the runtime leave a timestamp per socket: the last sign
   * of life of each device. Open sockets only: a socket that ended says
   * nothing more (a dropped one's device is held for the reconnect grace).
   */
  pings(): Array<{ deviceId: string; at: number }> {
    const pings: Array<{ deviceId: string; at: number }> = [];
    for (const ws of this.ctx.getWebSockets()) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const stamp = this.ctx.getWebSocketAutoResponseTimestamp(ws);
      if (stamp) pings.push({ deviceId: this.attachment(ws).deviceId, at: stamp.getTime() });
    }
    return pings;
  }

  /** Whether an open JSON socket's attachment carries `published` (it survives hibernation there: issue #11). */
  carriesPublished(published: Presence): boolean {
    return this.ctx.getWebSockets().some((ws) => {
      const attachment = ws.readyState === WebSocket.OPEN ? this.read(ws) : null;
      return attachment !== null && !("dcl" in attachment) && attachment.published?.seq === published.seq;
    });
  }

  // ─── abuse limits ──────────────────────────────────────────────────────────

  /** One frame's worth of the socket's bucket and then the user's; false: rate limited. */
  admit(ws: WebSocket, now: number): boolean {
    const { allowed, bucket } = takeToken(this.buckets.get(ws), now, this.config.rateBurst, this.config.ratePerSecond);
    this.buckets.set(ws, bucket);
    return allowed && this.admitUser(now);
  }

  /** One request's worth of the user's bucket (HTTP calls, and every frame). */
  admitUser(now: number): boolean {
    const { allowed, bucket } = takeToken(this.userBucket, now, this.config.rateBurst * 2, this.config.ratePerSecond * 2);
    this.userBucket = bucket;
    return allowed;
  }

  /** Answers an invalid or rate-limited frame; too many within the window close the socket (1008). */
  reject(ws: WebSocket, now: number, frame: ServerMessage): void {
    this.send(ws, frame);
    const recent = (this.errors.get(ws) ?? []).filter((t) => t > now - this.config.abuseWindowMs);
    recent.push(now);
    this.errors.set(ws, recent);
    if (recent.length > this.config.maxErrorsPerWindow) {
      this.close(ws, CloseCode.policyViolation, "too many invalid or rate-limited frames");
    }
  }
}
