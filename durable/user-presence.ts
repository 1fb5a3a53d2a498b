/**
 * UserPresence: one Durable Object per user, the single authority over that
 * user's presence. It owns
 *   - the user's devices (hibernating WebSockets + HTTP heartbeats) and their TTL,
 *   - the user's side of every friendship edge,
 *   - the leases of the friends who watch this user (fan-out targets),
 *   - a cache of the presence of the friends this user watches while it has a
 *     live client, and
 *   - an outbox of calls to other users' objects that must be retried.
 * One alarm serves every timer: the earliest of device TTLs, the coalesced
 * position publish, watch renewal and outbox retries.
 *
 * Presence rules live in src/presence/ (no Cloudflare imports); this class
 * stores rows, moves messages and calls those rules.
 */
import { DurableObject } from "cloudflare:workers";
import { UserStore, type EdgeRow, type OutboxRow } from "./store";
import type { Env } from "../src/env";
import { aggregate, classifyChange, isLive, isShownOnline } from "../src/presence/aggregate";
import { readConfig, type PresenceConfig } from "../src/presence/config";
import { CloseCode, errorFrame, offlinePresence, PING_FRAME, PONG_FRAME, PROTOCOL_VERSION, type ServerMessage } from "../src/presence/protocol";
import { FRIENDSHIP_OPS, parseClientFrame, type ClientMessage, type HeartbeatBody } from "../src/presence/schema";
import { alarmTime, backoffMs, deviceDeadline, nextDeadline, positionPublishAt, takeToken, withTimeout, type Bucket } from "../src/presence/timers";
import type { DeviceKind, Presence } from "../src/presence/types";
import {
  applyRemote,
  deriveState,
  onReply,
  planLocal,
  transitionEvents,
  type Edge,
  type EdgeMessage,
  type EdgeReply,
  type EdgeState,
  type FriendList,
  type FriendshipErrorCode,
  type LocalOp,
} from "../src/presence/friendship";

interface SocketAttachment {
  deviceId: string;
  kind: DeviceKind;
  subscribed: boolean;
}

export type FriendshipResult =
  | { ok: true; userId: string; state: EdgeState; pending: boolean }
  | { ok: false; code: FriendshipErrorCode | "friend_limit" | "request_limit" | "user_not_found"; message: string };

interface EdgePayload extends EdgeMessage {
  /** The request's note, for `want` messages. */
  text: string | null;
  /** The sender became friends by this message: show the friend when the ack says so. */
  announce: boolean;
}

/** A refusal the worker turns into an HTTP error (RPC results, not exceptions, so the code survives). */
export type Refusal = { ok: false; code: "too_many_devices" | "friend_limit" | "rate_limited"; message: string };

/** Calls to other objects go out in parallel chunks of this size. */
const FANOUT_CHUNK = 50;

export class UserPresence extends DurableObject<Env> {
  private readonly store: UserStore;
  private readonly config: PresenceConfig;
  /** Per-socket abuse accounting; in memory only (reset by hibernation, which only happens when idle). */
  private readonly buckets = new WeakMap<WebSocket, Bucket>();
  private readonly errors = new WeakMap<WebSocket, number[]>();
  /** One bucket for the whole user (all sockets + HTTP), twice a socket's size: many tabs cannot multiply the rate. */
  private userBucket: Bucket | undefined;
  /** Last reply of each target's object to an edge message (for a synchronous answer to the caller). */
  private readonly lastReplies = new Map<string, EdgeReply>();
  /** Friends whose friend_added is being announced right now (two paths may race to it). */
  private readonly announcing = new Set<string>();
  /** This user's fan-outs still waiting for friends' objects to answer. */
  private fanOutsInFlight = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new UserStore(ctx.storage);
    this.config = readConfig(env as unknown as Record<string, unknown>);
    // Keep-alive pings are answered by the runtime without waking this object;
    // their timestamps are read back as a sign of life when the alarm runs.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ─── identity ──────────────────────────────────────────────────────────────

  /** Every entry point names the user; the first one records it (alarms have no caller). */
  private identify(userId: string): string {
    const known = this.store.get("user_id");
    if (known === null) this.store.set("user_id", userId);
    else if (known !== userId) throw new Error(`object of ${known} addressed as ${userId}`);
    return userId;
  }

  /** Called from worker-facing entry points: the user has used the service, so requests to them are accepted. */
  private register(userId: string): string {
    this.identify(userId);
    this.store.set("registered", true);
    return userId;
  }

  private get userId(): string {
    const id = this.store.get("user_id");
    if (id === null) throw new Error("object has no user yet");
    return id;
  }

  private stub(userId: string) {
    return this.env.USER.getByName(userId);
  }

  // ─── WebSocket lifecycle (Hibernation API) ─────────────────────────────────

  override async fetch(request: Request): Promise<Response> {
    const userId = this.register(request.headers.get("x-presence-user") ?? "");
    const deviceId = request.headers.get("x-presence-device") ?? crypto.randomUUID();
    const kind = (request.headers.get("x-presence-kind") ?? "web") as DeviceKind;
    const protocol = request.headers.get("x-presence-protocol");
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
    }
    const now = Date.now();
    const refusal = this.deviceLimitRefusal(deviceId, now);
    if (refusal) return Response.json({ error: { code: refusal.code, message: refusal.message } }, { status: 429 });
    for (const old of this.ctx.getWebSockets(deviceId)) this.closeSocket(old, CloseCode.replaced, "replaced by a newer connection of this device");

    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [deviceId]);
    server.serializeAttachment({ deviceId, kind, subscribed: false } satisfies SocketAttachment);
    // A reconnecting device keeps its last heartbeat (no flapping); a new one is "connected, not shown".
    this.store.connectDevice(deviceId, kind, now);
    this.send(server, {
      type: "welcome",
      userId,
      deviceId,
      protocol: PROTOCOL_VERSION,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      ttlMs: this.config.ttlMs,
      maxFrameBytes: this.config.maxFrameBytes,
      ping: PING_FRAME,
    });
    await this.refresh(now);
    const headers = new Headers();
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, frame: string | ArrayBuffer): Promise<void> {
    const now = Date.now();
    const attachment = ws.deserializeAttachment() as SocketAttachment;
    this.store.touchDevice(attachment.deviceId, now);

    // Parsed first (bounded by the frame limit) so that even a rate_limited error names its request.
    const parsed = parseClientFrame(frame, this.config.maxFrameBytes);
    const { allowed, bucket } = takeToken(this.buckets.get(ws), now, this.config.rateBurst, this.config.ratePerSecond);
    this.buckets.set(ws, bucket);
    if (!allowed || !this.takeUserToken(now)) {
      const id = parsed.ok ? parsed.message.id : "id" in parsed ? parsed.id : undefined;
      return this.reject(ws, now, errorFrame("rate_limited", `at most ${this.config.ratePerSecond} messages per second per socket`, id));
    }
    if (!parsed.ok) return this.reject(ws, now, errorFrame(parsed.code, parsed.message, "id" in parsed ? parsed.id : undefined));
    try {
      await this.handle(ws, attachment, parsed.message, now);
    } catch (error) {
      console.error("message failed", error);
      this.send(ws, errorFrame("internal", "the request failed; it is safe to retry", parsed.message.id));
    }
  }

  private async handle(ws: WebSocket, attachment: SocketAttachment, message: ClientMessage, now: number): Promise<void> {
    switch (message.type) {
      case "PositionHeartbeat": {
        const presence = await this.heartbeat(attachment.deviceId, attachment.kind, "ws", message, now);
        this.send(ws, { type: "heartbeat_ack", id: message.id, presence, nextHeartbeatMs: this.config.heartbeatIntervalMs });
        return;
      }
      case "GetOnlineFriends":
        this.send(ws, { type: "online_friends", id: message.id, friends: await this.onlineFriendsList() });
        return;
      case "SubscribeFriendshipPresenceUpdates":
        ws.serializeAttachment({ ...attachment, subscribed: true } satisfies SocketAttachment);
        this.send(ws, { type: "subscribed", id: message.id, friends: await this.onlineFriendsList() });
        return;
      case "UnsubscribeFriendshipPresenceUpdates":
        ws.serializeAttachment({ ...attachment, subscribed: false } satisfies SocketAttachment);
        this.send(ws, { type: "unsubscribed", id: message.id });
        return;
      case "GetPresence": {
        const presence = await this.lookup(this.userId, message.userId);
        if (presence) this.send(ws, { type: "presence_result", id: message.id, presence });
        else this.send(ws, errorFrame("not_found", "no such user among your friends", message.id));
        return;
      }
      case "SendFriendRequest":
      case "CancelFriendRequest":
      case "AcceptFriendRequest":
      case "RejectFriendRequest":
      case "RemoveFriend":
      case "BlockUser":
      case "UnblockUser": {
        const text = message.type === "SendFriendRequest" ? (message.message ?? null) : null;
        const result = await this.friendship(this.userId, message.userId, FRIENDSHIP_OPS[message.type], text);
        if (result.ok) this.send(ws, { type: "friendship", id: message.id, userId: result.userId, state: result.state, pending: result.pending });
        else this.send(ws, errorFrame(result.code, result.message, message.id));
        return;
      }
      case "ListFriends":
        this.send(ws, { type: "friends_list", id: message.id, ...(await this.friends(this.userId)) });
        return;
      case "SetPrivacy":
      case "HidePresence": {
        const list = await this.setPrivacy(
          this.userId,
          message.type === "SetPrivacy" ? { shareLocation: message.shareLocation } : { hide: { userId: message.userId, hidden: message.hidden } },
        );
        if (list) this.send(ws, { type: "friends_list", id: message.id, ...list });
        else this.send(ws, errorFrame("not_found", "no such user among your friends", message.id));
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Reciprocate, or the client sees 1006. 1005/1006 are not sendable codes.
    this.closeSocket(ws, code === 1005 || code === 1006 ? CloseCode.normal : code, reason);
    await this.dropSocket(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.dropSocket(ws);
  }

  /** A socket ended: its device goes away at once unless another socket carries it. */
  private async dropSocket(ws: WebSocket): Promise<void> {
    const { deviceId } = ws.deserializeAttachment() as SocketAttachment;
    const others = this.ctx.getWebSockets(deviceId).filter((s) => s !== ws && s.readyState === WebSocket.OPEN);
    if (others.length === 0) this.store.removeDevice(deviceId, "ws");
    await this.refresh(Date.now());
  }

  private reject(ws: WebSocket, now: number, frame: ServerMessage): void {
    this.send(ws, frame);
    const recent = (this.errors.get(ws) ?? []).filter((t) => t > now - this.config.abuseWindowMs);
    recent.push(now);
    this.errors.set(ws, recent);
    if (recent.length > this.config.maxErrorsPerWindow) {
      this.closeSocket(ws, CloseCode.policyViolation, "too many invalid or rate-limited frames");
    }
  }

  private send(ws: WebSocket, message: ServerMessage): void {
    try {
      ws.send(JSON.stringify(message));
    } catch {
      // The socket is closing; its device is handled by close/TTL.
    }
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  private subscribedSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => (ws.deserializeAttachment() as SocketAttachment | null)?.subscribed);
  }

  private broadcast(message: ServerMessage): void {
    for (const ws of this.subscribedSockets()) this.send(ws, message);
  }

  private takeUserToken(now: number): boolean {
    const { allowed, bucket } = takeToken(this.userBucket, now, this.config.rateBurst * 2, this.config.ratePerSecond * 2);
    this.userBucket = bucket;
    return allowed;
  }

  /** A new device beyond the per-user limit is refused; a known device may always come back. */
  private deviceLimitRefusal(deviceId: string, now: number): Refusal | null {
    const live = this.store.devices().filter((d) => isLive(d, now, this.config.ttlMs));
    if (live.some((d) => d.deviceId === deviceId) || live.length < this.config.maxDevicesPerUser) return null;
    return { ok: false, code: "too_many_devices", message: `at most ${this.config.maxDevicesPerUser} devices per user` };
  }

  // ─── heartbeats and the presence state machine ─────────────────────────────

  private async heartbeat(deviceId: string, kind: DeviceKind, transport: "ws" | "http", body: HeartbeatBody, now: number): Promise<Presence> {
    this.store.heartbeatDevice(
      { deviceId, kind, transport, status: body.status, statusText: body.statusText ?? null, realm: body.realm, position: body.position },
      now,
    );
    await this.refresh(now);
    return this.selfPresence(now);
  }

  /** The user's own view: like friends', except invisible shows as such to themself. */
  private selfPresence(now: number): Presence {
    const { view, invisible } = aggregate(this.userId, this.store.devices(), now, this.config.ttlMs, this.store.get("last_active_at"));
    const seq = this.store.get("seq") ?? 0;
    return invisible ? { ...view, seq, invisible: true } : { ...view, seq };
  }

  /**
   * The one place presence moves: refresh liveness from ping timestamps,
   * expire silent devices, start/stop watching friends, publish changes,
   * deliver due outbox rows, and set the alarm. Idempotent; safe to run from
   * any entry point and from a retried alarm.
   */
  private async refresh(now: number, forcePublish = false): Promise<void> {
    const userId = this.userId;
    this.absorbPingTimestamps();
    const devices = this.store.devices();
    for (const device of devices.filter((d) => !isLive(d, now, this.config.ttlMs))) {
      for (const ws of this.ctx.getWebSockets(device.deviceId)) this.closeSocket(ws, CloseCode.presenceExpired, "no sign of life within the TTL");
      this.store.removeDevice(device.deviceId);
    }
    const { view, hasLiveDevice } = this.friendsView(now);
    if (view.lastActiveAt !== null && view.status !== "offline") this.store.set("last_active_at", view.lastActiveAt);

    const wasLive = this.store.get("live");
    if (hasLiveDevice && !wasLive) {
      this.store.set("live", true);
      await this.watchFriends(this.store.friendIds(), now);
    }

    const change = classifyChange(this.store.get("published") ?? offlinePresence(userId), view);
    if (change === "significant" || forcePublish) await this.publish(view, now);
    else if (change === "position") {
      const at = positionPublishAt(this.store.get("published_at"), now, this.config.positionCoalesceMs);
      // Back-pressure: while this user's previous fan-out is still out (friends' objects are slow
      // to answer), a move waits for the next interval; that publish carries the latest position.
      if (at <= now && this.fanOutsInFlight === 0) await this.publish(view, now);
      else this.store.set("publish_at", Math.max(at, this.fanOutsInFlight > 0 ? now + this.config.positionCoalesceMs : at));
    } else this.store.set("publish_at", null);

    if (!hasLiveDevice && wasLive) {
      this.store.set("live", null);
      await this.stopWatching();
    }
    if (hasLiveDevice) {
      const renewAt = this.store.get("watch_renew_at");
      if (renewAt !== null && renewAt <= now) await this.watchFriends(this.store.friendIds(), now);
    }
    await this.deliverOutbox(now);
    await this.scheduleAlarm(now);
  }

  /** What friends see now (before per-friend hiding). Location sharing is applied here, before change detection, so hidden moves publish nothing. */
  private friendsView(now: number): { view: Omit<Presence, "seq">; hasLiveDevice: boolean } {
    const { view, hasLiveDevice } = aggregate(this.userId, this.store.devices(), now, this.config.ttlMs, this.store.get("last_active_at"));
    return { view: this.shareLocation() === "none" ? { ...view, realm: null, position: null } : view, hasLiveDevice };
  }

  /** Pings answered by the runtime leave a timestamp per socket: fold it into the device's last sign of life. */
  private absorbPingTimestamps(): void {
    for (const ws of this.ctx.getWebSockets()) {
      const stamp = this.ctx.getWebSocketAutoResponseTimestamp(ws);
      if (!stamp) continue;
      const { deviceId } = ws.deserializeAttachment() as SocketAttachment;
      this.store.touchDevice(deviceId, stamp.getTime());
    }
  }

  /** Bumps seq, stores what friends see, and pushes it: to every watcher, or `only` to one (a privacy toggle). */
  private async publish(view: Omit<Presence, "seq">, now: number, only?: string): Promise<void> {
    const seq = (this.store.get("seq") ?? 0) + 1;
    const presence: Presence = { ...view, seq };
    this.store.set("seq", seq);
    this.store.set("published", presence);
    this.store.set("published_at", now);
    this.store.set("publish_at", null);
    await this.fanOut(presence, now, only);
  }

  /**
   * Sends this user's presence to every watcher holding a valid lease, in
   * parallel chunks. Friends this user hides from get nothing (exactly as if
   * the user were offline), except the one push that hides or unhides.
   */
  private async fanOut(presence: Presence, now: number, only?: string): Promise<void> {
    this.fanOutsInFlight++;
    try {
      await this.pushPresence(this.store.fanOutTargets(now, only), presence, now);
    } finally {
      this.fanOutsInFlight--;
    }
  }

  private async pushPresence(watchers: string[], presence: Presence, now: number): Promise<void> {
    const userId = this.userId;
    for (let i = 0; i < watchers.length; i += FANOUT_CHUNK) {
      const chunk = watchers.slice(i, i + FANOUT_CHUNK);
      const results = await Promise.allSettled(
        chunk.map((w) => withTimeout(this.stub(w).receivePresence(w, userId, this.viewFor(w, presence)), this.config.rpcTimeoutMs)),
      );
      results.forEach((result, j) => {
        const watcher = chunk[j]!;
        if (result.status === "rejected") this.enqueue("presence", watcher, now);
        else if (!result.value) this.store.removeWatcher(watcher);
        else this.store.deliveredKeyed("presence", watcher);
      });
    }
  }

  // ─── watching friends (this user as a watcher) ─────────────────────────────

  /**
   * Takes (or renews) a lease on each friend and caches their presence: when
   * the user gets a live client, and again at half the lease while it stays.
   */
  private async watchFriends(friends: string[], now: number): Promise<void> {
    const userId = this.userId;
    this.store.set("watch_renew_at", now + Math.floor(this.config.watchLeaseMs / 2));
    for (let i = 0; i < friends.length; i += FANOUT_CHUNK) {
      const chunk = friends.slice(i, i + FANOUT_CHUNK);
      const results = await Promise.allSettled(chunk.map((f) => withTimeout(this.stub(f).watch(f, userId, this.config.watchLeaseMs), this.config.rpcTimeoutMs)));
      results.forEach((result, j) => {
        const friend = chunk[j]!;
        if (result.status === "fulfilled" && result.value) {
          // Renewal doubles as anti-entropy: a newer presence than the cache means a push was lost.
          if (this.cacheFriendPresence(result.value)) this.broadcast({ type: "presence", presence: result.value });
        }
        else if (result.status === "fulfilled") this.store.uncache(friend);
        else {
          // Matrix's "don't know": show unknown rather than a stale or wrong answer, and retry.
          const cached = this.store.cached(friend);
          this.cacheFriendPresence({ ...(cached ?? offlinePresence(friend)), status: "unknown" }, true);
          this.enqueue("watch", friend, now);
        }
      });
    }
  }

  /** Called when the user's last live client is gone: release every lease, drop the cache. */
  private async stopWatching(): Promise<void> {
    const userId = this.userId;
    const friends = this.store.friendIds();
    this.store.set("watch_renew_at", null);
    this.store.uncache();
    this.store.dropQueued(["watch"]);
    for (let i = 0; i < friends.length; i += FANOUT_CHUNK) {
      // Best effort: a lease that is not released expires, and the next push is refused anyway.
      await Promise.allSettled(friends.slice(i, i + FANOUT_CHUNK).map((f) => this.stub(f).unwatch(f, userId)));
    }
  }

  /** Stores a friend's presence if it is newer than what is cached (or `force`); returns whether it was stored. */
  private cacheFriendPresence(presence: Presence, force = false): boolean {
    return this.store.cacheIfNewer(presence, force);
  }

  private async onlineFriendsList(): Promise<Presence[]> {
    if (this.store.get("live")) {
      return this.store
        .cachedAll()
        .filter((p) => isShownOnline(p.status) || p.status === "unknown");
    }
    // No live client (an HTTP-only reader): ask each friend once, take no lease.
    const userId = this.userId;
    const friends = this.store.friendIds();
    const online: Presence[] = [];
    for (let i = 0; i < friends.length; i += FANOUT_CHUNK) {
      const chunk = friends.slice(i, i + FANOUT_CHUNK);
      const results = await Promise.allSettled(chunk.map((f) => withTimeout(this.stub(f).presenceFor(f, userId), this.config.rpcTimeoutMs)));
      results.forEach((r, j) => {
        if (r.status === "rejected") online.push({ ...offlinePresence(chunk[j]!), status: "unknown" });
        else if (r.value && isShownOnline(r.value.status)) online.push(r.value);
      });
    }
    return online;
  }

  // ─── RPC: called by friends' objects ───────────────────────────────────────

  /** A friend with a live client takes (or renews) a lease on this user; returns this user's presence, or null for non-friends. */
  async watch(self: string, watcher: string, leaseMs: number): Promise<Presence | null> {
    this.identify(self);
    if (!this.store.isFriend(watcher)) return null;
    this.store.putWatcher(watcher, Date.now() + Math.min(Math.max(leaseMs, 1_000), 3_600_000));
    // A friend this live user does not know the presence of yet: the friendship is new, watch back.
    if (this.store.get("live") && !this.store.cached(watcher)) void this.watchNewFriend(watcher, Date.now()).catch(() => undefined);
    return this.viewFor(watcher, await this.currentPresence());
  }

  async unwatch(self: string, watcher: string): Promise<void> {
    this.identify(self);
    this.store.removeWatcher(watcher);
  }

  /**
   * A friend's object pushes its presence here. Returns false when this user
   * has no live client or is not a friend: the sender then drops the lease
   * (no presence is sent to people who are not there to see it).
   */
  async receivePresence(self: string, from: string, presence: Presence): Promise<boolean> {
    this.identify(self);
    if (!this.store.isFriend(from) || presence.userId !== from) return false;
    if (!this.store.get("live")) return false;
    if (this.cacheFriendPresence(presence)) this.broadcast({ type: "presence", presence });
    return true;
  }

  /** Presence of `target` as `requester` may see it: self, a friend, or null (never leaks). */
  async presenceFor(self: string, requester: string): Promise<Presence | null> {
    this.identify(self);
    if (requester === self) return this.selfPresence(Date.now());
    if (!this.store.isFriend(requester)) return null;
    return this.viewFor(requester, await this.currentPresence());
  }

  /**
   * What one friend may see: if this user hides from them, the offline shape
   * frozen at the moment of hiding (last seen then, seq then), so nothing they
   * can read changes while the user is active.
   */
  private viewFor(friend: string, presence: Presence): Presence {
    return this.store.hiddenView(friend) ?? presence;
  }

  /** What friends see right now; re-checks TTLs first so a late alarm never shows a ghost. */
  private async currentPresence(): Promise<Presence> {
    const now = Date.now();
    const { view } = this.friendsView(now);
    const published = this.store.published(this.userId);
    if (classifyChange(published, view) === "significant") {
      await this.refresh(now);
      return this.store.published(this.userId);
    }
    return published;
  }

  // ─── RPC: called by the worker ─────────────────────────────────────────────

  /** `GET /v1/presence/:userId` and `GetPresence`: self, or a friend's presence from their object; null for anyone else. */
  async lookup(self: string, target: string): Promise<Presence | null> {
    this.register(self);
    if (target === self) return this.selfPresence(Date.now());
    if (!this.store.isFriend(target)) return null;
    return this.stub(target).presenceFor(target, self);
  }

  async httpHeartbeat(self: string, deviceId: string, kind: DeviceKind, body: HeartbeatBody): Promise<{ ok: true; presence: Presence } | Refusal> {
    this.register(self);
    const now = Date.now();
    if (!this.takeUserToken(now)) return { ok: false, code: "rate_limited", message: `at most ${this.config.ratePerSecond * 2} requests per second per user` };
    const refusal = this.deviceLimitRefusal(deviceId, now);
    if (refusal) return refusal;
    return { ok: true, presence: await this.heartbeat(deviceId, kind, "http", body, now) };
  }

  async onlineFriends(self: string): Promise<Presence[]> {
    this.register(self);
    return this.onlineFriendsList();
  }

  /**
   * One friendship operation by this user about `other` (request, accept, block…).
   * This side changes at once; the other side is told through the ordered
   * outbox (delivered now, retried by the alarm until acknowledged) and its
   * reply is folded back in. A request to a user who blocked this one, or who
   * never used the service, fails the same way: `user_not_found`.
   */
  async friendship(self: string, other: string, op: LocalOp, text?: string | null): Promise<FriendshipResult> {
    this.register(self);
    if (other === self) return { ok: false, code: "cannot_befriend_self", message: "that is you" };
    const now = Date.now();
    const edge = this.store.edge(other);
    const plan = planLocal(edge, op);
    if (!plan.ok) return plan;
    const limit = this.limitRefusal(deriveState(edge), deriveState(plan.edge));
    if (limit) return limit;
    await this.writeEdge(other, plan.edge, "local", text ?? null);
    if (plan.send) {
      const announce = deriveState(plan.edge) === "friends" && deriveState(edge) !== "friends";
      this.enqueueEdge(other, { ...plan.send, text: text ?? null, announce }, now);
      await this.deliverOutbox(now, other);
    }
    await this.scheduleAlarm(now);
    const final = deriveState(this.store.edge(other));
    const reply = this.lastReplies.get(other);
    this.lastReplies.delete(other);
    if (op === "request" && final === "none") {
      return reply === "limit"
        ? { ok: false, code: "request_limit", message: "that user cannot take more friend requests or friends" }
        : { ok: false, code: "user_not_found", message: "no such user" };
    }
    if (op === "accept" && final !== "friends") return { ok: false, code: "no_pending_request", message: "the request was withdrawn" };
    return { ok: true, userId: other, state: final, pending: this.store.hasPendingEdges(other) };
  }

  /** Admin: make each pair friends (or not) through the same path as users' own operations. */
  async setFriendships(self: string, others: string[], state: "friends" | "removed"): Promise<{ ok: true; pending: string[] } | Refusal> {
    this.register(self);
    const targets = [...new Set(others)].filter((o) => o !== self);
    if (state === "friends") {
      const current = new Set(this.store.friendIds());
      const added = targets.filter((t) => !current.has(t)).length;
      if (current.size + added > this.config.maxFriends) {
        return { ok: false, code: "friend_limit", message: `${self} would have more than ${this.config.maxFriends} friends` };
      }
    }
    const now = Date.now();
    for (const other of targets) {
      const edge = this.store.edge(other);
      const plan = planLocal(edge, state === "friends" ? "befriend" : "unfriend");
      if (!plan.ok) continue;
      await this.writeEdge(other, plan.edge, "local", null);
      const announce = deriveState(plan.edge) === "friends" && deriveState(edge) !== "friends";
      if (plan.send) this.enqueueEdge(other, { ...plan.send, text: null, announce }, now);
    }
    await this.deliverOutbox(now, targets);
    await this.scheduleAlarm(now);
    return { ok: true, pending: targets.filter((t) => this.store.hasPendingEdges(t)) };
  }

  /** A change of intent from `from`'s object. Idempotent (duplicates are ignored by version). */
  async receiveEdge(self: string, from: string, message: EdgeMessage, text: string | null = null): Promise<EdgeReply> {
    this.identify(self);
    if (message.force) this.store.set("registered", true);
    const counts = this.store.edgeCounts();
    const { edge, reply } = applyRemote(this.store.edge(from), message, {
      registered: this.store.get("registered") === true,
      pendingLimitReached: counts.incoming >= this.config.maxPendingRequests,
      friendLimitReached: counts.friends >= this.config.maxFriends,
    });
    await this.writeEdge(from, edge, "remote", text);
    return reply;
  }

  async friends(self: string): Promise<FriendList> {
    this.register(self);
    const rows = this.store.edges();
    const of = (state: EdgeState) => rows.filter((r) => r.state === state);
    const request = ({ userId, message, since }: EdgeRow) => ({ userId, message, since });
    return {
      friends: of("friends").map((r) => r.userId),
      incoming: of("incoming").map(request),
      outgoing: of("outgoing").map(request),
      blocked: of("blocked").map((r) => r.userId),
      hiddenFrom: of("friends").filter((r) => r.hidden).map((r) => r.userId),
      shareLocation: this.shareLocation(),
    };
  }

  /** Privacy: share realm/position with all friends or none; hide presence from single friends. */
  async setPrivacy(self: string, change: { shareLocation?: "all" | "none"; hide?: { userId: string; hidden: boolean } }): Promise<FriendList | null> {
    this.register(self);
    const now = Date.now();
    if (change.hide) {
      const friend = change.hide.userId;
      if (!this.store.isFriend(friend)) return null;
      const { view } = this.friendsView(now);
      const frozen = offlinePresence(self, view.lastActiveAt ?? this.store.get("last_active_at"), (this.store.get("seq") ?? 0) + 1);
      this.store.setHidden(friend, change.hide.hidden ? frozen : null);
      // A new seq, pushed to that friend only: they replace what they hold (with the frozen
      // offline shape, or with the truth again); nobody else is told anything.
      await this.publish(view, now, friend);
    }
    if (change.shareLocation) {
      this.store.set("share_location", change.shareLocation === "none" ? "none" : null);
      await this.refresh(now);
    }
    await this.scheduleAlarm(now);
    return this.friends(self);
  }

  private shareLocation(): "all" | "none" {
    return this.store.get("share_location") === "none" ? "none" : "all";
  }

  private limitRefusal(state: EdgeState, next: EdgeState): FriendshipResult | null {
    const counts = this.store.edgeCounts();
    if (next === "friends" && state !== "friends" && counts.friends >= this.config.maxFriends) {
      return { ok: false, code: "friend_limit", message: `at most ${this.config.maxFriends} friends` };
    }
    if (next === "outgoing" && state !== "outgoing" && counts.outgoing >= this.config.maxPendingRequests) {
      return { ok: false, code: "request_limit", message: `at most ${this.config.maxPendingRequests} pending requests` };
    }
    return null;
  }

  /**
   * Stores this side of the edge with `other` and updates live views at once:
   * events to this user's sockets, leases and cache dropped when a friendship
   * ends, the new friend's presence fetched when one begins by the other
   * side's message (the originator does that when the ack arrives: until then
   * the other object would refuse a non-friend's watch).
   */
  private async writeEdge(other: string, edge: Edge, cause: "local" | "remote" | "reply", text: string | null): Promise<void> {
    const previous = deriveState(this.store.edge(other));
    const next = deriveState(edge);
    const now = Date.now();
    this.store.writeEdge(other, edge, text, now);
    if (previous === next) return;
    if (previous === "friends") {
      this.store.removeWatcher(other);
      this.store.dropQueued(["presence", "watch"], other);
      this.store.uncache(other);
    }
    for (const event of transitionEvents(previous, next, cause)) {
      if (event.type === "friend_added") {
        if (cause === "remote") await this.watchNewFriend(other, now);
        continue;
      }
      const message = event.type === "friend_request" ? this.store.requestNote(other) : undefined;
      this.broadcast({ ...event, userId: other, ...(message !== undefined ? { message } : {}) } as ServerMessage);
    }
  }

  /**
   * A friendship just took effect: if this user has a live client, watch the
   * friend and announce them once (friend_added). Several paths lead here (the
   * other side's message, its ack, the other side's first watch); the cache row
   * and the `announcing` set make it happen once.
   */
  private async watchNewFriend(other: string, now: number): Promise<void> {
    if (!this.store.get("live") || !this.store.isFriend(other) || this.store.cached(other) || this.announcing.has(other)) return;
    this.announcing.add(other);
    try {
      let presence: Presence | null;
      try {
        presence = await withTimeout(this.stub(other).watch(other, this.userId, this.config.watchLeaseMs), this.config.rpcTimeoutMs);
      } catch {
        presence = { ...offlinePresence(other), status: "unknown" };
        this.enqueue("watch", other, now);
      }
      // null: the other side has not recorded the friendship yet; its first watch of this user brings us back here.
      if (!presence || !this.store.isFriend(other)) return;
      this.cacheFriendPresence(presence, true);
      this.broadcast({ type: "friend_added", userId: other, presence });
    } finally {
      this.announcing.delete(other);
    }
  }

  // ─── outbox and alarm ──────────────────────────────────────────────────────

  private enqueue(kind: "presence" | "watch", target: string, now: number): void {
    this.store.enqueueKeyed(kind, target, now + backoffMs(0));
  }

  private enqueueEdge(target: string, payload: EdgePayload, now: number): void {
    this.store.enqueueEdge(target, JSON.stringify(payload), now);
  }

  /**
   * Delivers due outbox rows; `force` delivers the given targets' rows now.
   * Edge messages go in order, one target's queue stopping at its first
   * failure; failures back off exponentially (1 s … 5 min), forever, until acknowledged.
   */
  private async deliverOutbox(now: number, force?: string | string[]): Promise<void> {
    const forced = new Set(typeof force === "string" ? [force] : (force ?? []));
    const rows = this.store.outbox();
    if (rows.length === 0) return;
    const due = (row: OutboxRow) => forced.has(row.target) || Number(row.next_attempt_at) <= now;
    const queues = new Map<string, OutboxRow[]>();
    const tasks: Array<() => Promise<unknown>> = [];
    for (const row of rows) {
      if (row.kind !== "edge") {
        if (due(row)) tasks.push(() => this.attempt(row, now));
      } else queues.set(row.target, [...(queues.get(row.target) ?? []), row]);
    }
    for (const queue of queues.values()) {
      if (!due(queue[0]!)) continue;
      tasks.push(async () => {
        for (const row of queue) if (!(await this.attempt(row, now))) return;
      });
    }
    for (let i = 0; i < tasks.length; i += FANOUT_CHUNK) await Promise.allSettled(tasks.slice(i, i + FANOUT_CHUNK).map((task) => task()));
  }

  /** One delivery attempt; returns whether it was acknowledged. */
  private async attempt(row: OutboxRow, now: number): Promise<boolean> {
    try {
      await withTimeout(this.deliver(this.userId, row), this.config.rpcTimeoutMs);
      this.store.delivered(row);
      return true;
    } catch (error) {
      const attempts = Number(row.attempts) + 1;
      console.warn(`outbox ${row.kind} to ${row.target} failed (attempt ${attempts})`, String(error));
      this.store.failed(row.id, attempts, now + backoffMs(attempts));
      return false;
    }
  }

  private async deliver(userId: string, row: OutboxRow): Promise<void> {
    const target = row.target;
    if (row.kind === "edge") {
      const { text, announce, ...message } = JSON.parse(row.payload) as EdgePayload;
      const reply = await this.stub(target).receiveEdge(target, userId, message, text);
      this.lastReplies.set(target, reply);
      await this.writeEdge(target, onReply(this.store.edge(target), message, reply), "reply", null);
      if (announce && reply === "ok") await this.watchNewFriend(target, Date.now());
    } else if (row.kind === "presence") {
      if (!this.store.isFriend(target)) return;
      const accepted = await this.stub(target).receivePresence(target, userId, this.viewFor(target, this.store.published(this.userId)));
      if (!accepted) this.store.removeWatcher(target);
    } else if (row.kind === "watch") {
      if (!this.store.get("live") || !this.store.isFriend(target)) return;
      const presence = await this.stub(target).watch(target, userId, this.config.watchLeaseMs);
      if (presence) {
        if (this.cacheFriendPresence(presence, true)) this.broadcast({ type: "presence", presence });
      } else this.store.uncache(target);
    }
  }

  private async scheduleAlarm(now: number): Promise<void> {
    const devices = this.store.devices();
    const deadline = nextDeadline([
      ...devices.map((d) => deviceDeadline(d, this.config.ttlMs)),
      this.store.get("publish_at"),
      this.store.get("live") ? this.store.get("watch_renew_at") : null,
      this.store.nextOutboxAttempt(),
    ]);
    if (deadline === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(alarmTime(deadline, now));
  }

  override async alarm(): Promise<void> {
    if (this.store.get("user_id") === null) return;
    await this.refresh(Date.now());
  }
}
