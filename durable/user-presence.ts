/**
 * UserPresence: one Durable Object per user, the single authority over that
 * user's presence. It owns
 *   - the user's devices (hibernating WebSockets + HTTP heartbeats) and their TTL,
 *   - the user's side of every friendship edge,
 *   - the leases of the friends who watch this user (fan-out targets),
 *   - a cache of the presence of the friends this user watches while it has a
 *     live client, and
 *   - an outbox of calls to other users' objects that must be retried.
 * One alarm serves every timer: each part reports its next wake-up (device
 * TTLs and the coalesced publish, lease renewal, outbox retries) and the
 * alarm is set to the earliest.
 *
 * This class is the table of contents: the runtime's entry points, the RPC
 * surface, and `refresh`, the one place presence moves. Each concern lives in
 * its own part (sockets, presence, watchers, watching, friendships, outbox);
 * the presence rules live in src/presence/ (no Cloudflare imports).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { classifyChange } from "../src/presence/aggregate";
import { announcedHeartbeatMs, readConfig, type PresenceConfig } from "../src/presence/config";
import type { EdgeMessage, EdgeReply, FriendList, LocalOp } from "../src/presence/friendship";
import { errorFrame } from "../src/presence/protocol";
import { CloseCode, PING_FRAME, PONG_FRAME, PROTOCOL_VERSION } from "../src/protocol";
import { ok, refuse, type Result } from "../src/presence/result";
import { deviceKindSchema, FRIENDSHIP_OPS, positionInterestSchema, parseClientFrame, type ClientMessage, type HeartbeatBody } from "../src/presence/schema";
import { alarmTime, nextDeadline } from "../src/presence/timers";
import type { DeviceKind, PositionInterest, Presence, Transport } from "../src/presence/types";
import { Friendships, type FriendshipChange, type FriendshipRefusalCode } from "./friendships";
import { createHost, type Host } from "./host";
import { Outbox } from "./outbox";
import { OwnPresence } from "./presence";
import { Sockets } from "./sockets";
import { objectCounters } from "./counters";
import { meterEntryPoints, ObjectMeter } from "./meter";
import { UserStore } from "./store";
import { Watchers } from "./watchers";
import { Watching } from "./watching";

const NOT_FOUND = "no such user among your friends";

export class UserPresence extends DurableObject<Env> {
  private readonly store: UserStore;
  private readonly config: PresenceConfig;
  private readonly host: Host;
  private readonly sockets: Sockets;
  private readonly outbox: Outbox;
  private readonly watchers: Watchers;
  private readonly watching: Watching;
  private readonly presence: OwnPresence;
  private readonly friendships: Friendships;
  /** What the bill counts (durable/meter.ts); the entry points are wrapped at the end of this file. */
  readonly meter = new ObjectMeter();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    objectCounters.instancesCreated++;
    this.store = new UserStore(ctx.storage, this.meter);
    this.config = readConfig(env);
    this.host = createHost(ctx.id, this.store, this.config, env.USER);
    this.sockets = new Sockets(ctx, this.config);
    this.outbox = new Outbox(this.host);
    this.watchers = new Watchers(this.host, this.outbox);
    this.watching = new Watching(this.host, this.sockets, this.outbox);
    this.presence = new OwnPresence(this.host, this.watchers, this.sockets);
    // A socket's device state rides in its attachment (a heartbeat writes no row): read back after a wake.
    this.store.savedDevices = () => this.sockets.savedDevices();
    this.friendships = new Friendships(this.host, this.sockets, this.outbox, this.watching);
    // Keep-alive pings are answered by the runtime without waking this object;
    // their timestamps are read back as a sign of life when the alarm runs.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ─── identity ──────────────────────────────────────────────────────────────

  // Whose object this is comes from the runtime (`ctx.id.name`, see host.ts), in
  // every entry point, alarms included: no caller passes it.

  /** Called from worker-facing entry points: the user has used the service, so requests to them are accepted. */
  private register(): void {
    if (!this.store.get("registered")) this.store.set("registered", true);
  }

  // ─── WebSocket lifecycle (Hibernation API) ─────────────────────────────────

  override async fetch(request: Request): Promise<Response> {
    const userId = this.host.userId;
    this.register();
    const deviceId = request.headers.get("x-presence-device") ?? crypto.randomUUID();
    const protocol = request.headers.get("x-presence-protocol");
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
    }
    // The worker validated the kind; checked again rather than trusted, since the header is only a string.
    const kind = deviceKindSchema.safeParse(request.headers.get("x-presence-kind") ?? "web");
    if (!kind.success) return Response.json({ error: { code: "invalid_request", message: "kind is desktop, mobile or web" } }, { status: 400 });
    const now = Date.now();
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return Response.json({ error: { code: refusal.code, message: refusal.message } }, { status: 429 });

    const positions = positionInterestSchema.safeParse(new URL(request.url).searchParams.get("positions") ?? undefined);
    const { client, server } = this.sockets.accept(deviceId, kind.data, positions.success ? positions.data : undefined);
    // A reconnecting device keeps its last heartbeat (no flapping); a new one is "connected, not shown".
    this.store.connectDevice(deviceId, kind.data, now);
    this.sockets.saveDevice(server, this.store.device(deviceId));
    this.sockets.send(server, {
      type: "welcome",
      userId,
      deviceId,
      protocol: PROTOCOL_VERSION,
      heartbeatIntervalMs: announcedHeartbeatMs(this.config),
      ttlMs: this.config.ttlMs,
      maxFrameBytes: this.config.maxFrameBytes,
      ping: PING_FRAME,
    });
    // Accept first (issue #11): the 101 goes back now; watching the friends (the fan-in) runs after it,
    // and a Subscribe/GetOnlineFriends that arrives meanwhile waits for it (Watching.onlineFriends).
    this.ctx.waitUntil(this.refresh(now).catch((error) => console.error("connect refresh failed", error)));
    const headers = new Headers();
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, frame: string | ArrayBuffer): Promise<void> {
    const now = Date.now();
    const { deviceId } = this.sockets.attachment(ws);
    this.store.touchDevice(deviceId, now);
    try {
      await this.message(ws, frame, now);
    } finally {
      // The device's latest state (sign of life, heartbeat) stays with its socket: no row written.
      this.sockets.saveDevice(ws, this.store.device(deviceId));
    }
  }

  private async message(ws: WebSocket, frame: string | ArrayBuffer, now: number): Promise<void> {
    // Parsed first (bounded by the frame limit) so that even a rate_limited error names its request.
    const parsed = parseClientFrame(frame, this.config.maxFrameBytes);
    if (!this.sockets.admit(ws, now)) {
      const id = parsed.ok ? parsed.message.id : parsed.id;
      return this.sockets.reject(ws, now, errorFrame("rate_limited", `at most ${this.config.ratePerSecond} messages per second per socket`, id));
    }
    if (!parsed.ok) return this.sockets.reject(ws, now, errorFrame(parsed.code, parsed.message, parsed.id));
    try {
      await this.handle(ws, parsed.message, now);
    } catch (error) {
      console.error("message failed", error);
      this.sockets.send(ws, errorFrame("internal", "the request failed; it is safe to retry", parsed.message.id));
    }
  }

  /** One valid client message: the same operations as the HTTP API, answered on the socket. */
  private async handle(ws: WebSocket, message: ClientMessage, now: number): Promise<void> {
    const reply = this.sockets.send.bind(this.sockets, ws);
    switch (message.type) {
      case "PositionHeartbeat": {
        const { deviceId, kind } = this.sockets.attachment(ws);
        const presence = await this.heartbeat(deviceId, kind, "ws", message, now);
        return reply({ type: "heartbeat_ack", id: message.id, presence, nextHeartbeatMs: announcedHeartbeatMs(this.config) });
      }
      case "GetOnlineFriends":
        return reply({ type: "online_friends", id: message.id, friends: await this.watching.onlineFriends() });
      case "SubscribeFriendshipPresenceUpdates":
        this.sockets.setSubscribed(ws, true, message.positions);
        await this.watching.interestChanged(now);
        return reply({ type: "subscribed", id: message.id, friends: await this.watching.onlineFriends() });
      case "UnsubscribeFriendshipPresenceUpdates":
        this.sockets.setSubscribed(ws, false);
        await this.watching.interestChanged(now);
        return reply({ type: "unsubscribed", id: message.id });
      case "GetPresence": {
        const found = await this.lookup(message.userId);
        return reply(found.ok ? { type: "presence_result", id: message.id, presence: found.value } : errorFrame(found.code, found.message, message.id));
      }
      case "SendFriendRequest":
      case "CancelFriendRequest":
      case "AcceptFriendRequest":
      case "RejectFriendRequest":
      case "RemoveFriend":
      case "BlockUser":
      case "UnblockUser": {
        const text = message.type === "SendFriendRequest" ? (message.message ?? null) : null;
        const result = await this.friendship(message.userId, FRIENDSHIP_OPS[message.type], text);
        return reply(result.ok ? { type: "friendship", id: message.id, ...result.value } : errorFrame(result.code, result.message, message.id));
      }
      case "ListFriends":
        return reply({ type: "friends_list", id: message.id, ...(await this.friends()) });
      case "SetPrivacy":
      case "HidePresence": {
        const change = message.type === "SetPrivacy" ? { shareLocation: message.shareLocation } : { hide: { userId: message.userId, hidden: message.hidden } };
        const list = await this.setPrivacy(change);
        return reply(list.ok ? { type: "friends_list", id: message.id, ...list.value } : errorFrame(list.code, list.message, message.id));
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Reciprocate, or the client sees 1006. 1005/1006 are not sendable codes.
    this.sockets.close(ws, code === 1005 || code === 1006 ? CloseCode.normal : code, reason);
    await this.dropSocket(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.dropSocket(ws);
  }

  /** A socket ended: its device goes away at once unless another socket carries it. */
  private async dropSocket(ws: WebSocket): Promise<void> {
    if (!this.sockets.deviceStillConnected(ws)) this.store.removeDevice(this.sockets.attachment(ws).deviceId, "ws");
    await this.refresh(Date.now());
  }

  // ─── the state machine and the alarm ───────────────────────────────────────

  private async heartbeat(deviceId: string, kind: DeviceKind, transport: Transport, body: HeartbeatBody, now: number): Promise<Presence> {
    this.presence.recordHeartbeat(deviceId, kind, transport, body, now);
    await this.refresh(now);
    return this.presence.selfView(now);
  }

  /**
   * The one place presence moves: refresh liveness from ping timestamps,
   * expire silent devices, start/stop watching friends, publish changes,
   * deliver due outbox rows, and set the alarm. Idempotent; safe to run from
   * any entry point and from a retried alarm.
   */
  private async refresh(now: number): Promise<void> {
    for (const { deviceId, at } of this.sockets.pings()) this.store.touchDevice(deviceId, at);
    for (const deviceId of this.presence.expireSilentDevices(now)) {
      this.sockets.closeDevice(deviceId, CloseCode.presenceExpired, "no sign of life within the TTL");
    }
    const wasLive = this.watching.live;
    if (!wasLive && this.presence.outwardView(now).hasLiveDevice) await this.watching.start(now);
    // Computed after the fan-in: a connect's refresh runs after its 101, so other events may have moved presence meanwhile.
    const { view, hasLiveDevice } = this.presence.outwardView(now);
    this.presence.rememberLastActive(view);
    await this.presence.publishChanges(view, now);
    if (!hasLiveDevice && wasLive) await this.watching.stop();
    if (hasLiveDevice) await this.watching.renewIfDue(now);
    await this.outbox.deliver(now);
    await this.scheduleAlarm(now);
  }

  /**
   * One physical alarm: the earliest wake-up any part asks for. Set only when
   * that is earlier than the alarm already set (or none is): a setAlarm is a
   * row written, and a heartbeat moves the TTL later every time. An alarm that
   * fires early finds nothing due and is set again to the real deadline, about
   * once per TTL while the user is online.
   */
  private async scheduleAlarm(now: number): Promise<void> {
    const deadline = nextDeadline([...this.presence.nextWakeUps(), this.watching.nextWakeUp(), this.outbox.nextWakeUp()]);
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (deadline === null) {
      if (this.alarmAt === null) return;
      this.alarmAt = null;
      this.meter.alarmDeleted();
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const at = alarmTime(deadline, now);
    if (this.alarmAt !== null && this.alarmAt <= at && this.alarmAt > now) return;
    this.alarmAt = at;
    this.meter.alarmSet();
    await this.ctx.storage.setAlarm(at);
  }

  /** The alarm as this instance set it or read it (undefined: not read yet since the wake). */
  private alarmAt: number | null | undefined;

  override async alarm(): Promise<void> {
    // The alarm that fired is gone; refresh sets the next one.
    this.alarmAt = null;
    await this.refresh(Date.now());
  }

  /** What friends were told, re-published first if it is stale (TTLs re-checked: a late alarm never shows a ghost). */
  private async publishedNow(): Promise<Presence> {
    const now = Date.now();
    const { view } = this.presence.outwardView(now);
    if (classifyChange(this.presence.published(), view) === "significant") await this.refresh(now);
    return this.presence.published();
  }

  // ─── RPC: called by friends' objects ───────────────────────────────────────

  /** A friend with a live client takes (or renews) a lease on this user, and gets this user's presence. */
  async watch(watcher: string, leaseMs: number, positions?: PositionInterest, realm?: string | null): Promise<Result<Presence, "not_friends">> {
    const granted = this.watchers.grant(watcher, leaseMs, Date.now(), positions, realm ?? null);
    if (!granted.ok) return granted;
    // A friend this live user does not know the presence of yet: the friendship is new, watch back.
    if (this.watching.live && !this.watching.knows(watcher)) void this.watching.watchNewFriend(watcher, Date.now()).catch(() => undefined);
    return ok(this.watchers.viewFor(watcher, await this.publishedNow()));
  }

  async unwatch(watcher: string): Promise<void> {
    this.watchers.release(watcher);
  }

  /** A friend's object pushes its presence; refused: the sender drops this user's lease. */
  async receivePresence(from: string, presence: Presence): Promise<Result<boolean, "not_friends" | "not_watching">> {
    return this.watching.receive(from, presence);
  }

  /** This user's presence as `requester` may see it: themself, or a friend (never leaks to anyone else). */
  async presenceFor(requester: string): Promise<Result<Presence, "not_friends">> {
    if (requester === this.host.userId) return ok(this.presence.selfView(Date.now()));
    if (!this.store.isFriend(requester)) return refuse("not_friends", NOT_FOUND);
    return ok(this.watchers.viewFor(requester, await this.publishedNow()));
  }

  /** A change of intent from `from`'s object. Idempotent (duplicates are ignored by version). */
  async receiveEdge(from: string, message: EdgeMessage, text: string | null = null): Promise<EdgeReply> {
    return this.friendships.receive(from, message, text);
  }

  // ─── RPC: called by the worker ─────────────────────────────────────────────

  /** `GET /v1/presence/:userId` and `GetPresence`: self, or a friend's presence from their object; anyone else is not found. */
  async lookup(target: string): Promise<Result<Presence, "not_found">> {
    this.register();
    if (target === this.host.userId) return ok(this.presence.selfView(Date.now()));
    if (!this.store.isFriend(target)) return refuse("not_found", NOT_FOUND);
    const seen = await this.host.stub(target).presenceFor(this.host.userId);
    return seen.ok ? ok(seen.value) : refuse("not_found", NOT_FOUND);
  }

  async httpHeartbeat(deviceId: string, kind: DeviceKind, body: HeartbeatBody): Promise<Result<Presence, "rate_limited" | "too_many_devices">> {
    this.register();
    const now = Date.now();
    if (!this.sockets.admitUser(now)) return refuse("rate_limited", `at most ${this.config.ratePerSecond * 2} requests per second per user`);
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return refusal;
    return ok(await this.heartbeat(deviceId, kind, "http", body, now));
  }

  async onlineFriends(): Promise<Presence[]> {
    this.register();
    return this.watching.onlineFriends();
  }

  /**
   * One friendship operation by this user about `other` (request, accept, block…).
   * This side changes at once; the other side is told through the ordered
   * outbox (delivered now, retried by the alarm until acknowledged) and its
   * reply is folded back in.
   */
  async friendship(other: string, op: LocalOp, text?: string | null): Promise<Result<FriendshipChange, FriendshipRefusalCode>> {
    this.register();
    const planned = this.friendships.plan(other, op);
    if (!planned.ok) return planned;
    const now = Date.now();
    await this.friendships.apply(planned.value, text ?? null, now);
    await this.scheduleAlarm(now);
    return this.friendships.outcome(other, op);
  }

  /** Admin: make each pair friends (or not) through the same path as users' own operations. */
  async setFriendships(others: string[], state: "friends" | "removed"): Promise<Result<{ pending: string[] }, "friend_limit">> {
    this.register();
    const now = Date.now();
    const result = await this.friendships.setAll(others, state, now);
    if (result.ok) await this.scheduleAlarm(now);
    return result;
  }

  async friends(): Promise<FriendList> {
    this.register();
    return { ...this.friendships.list(), shareLocation: this.presence.shareLocation };
  }

  /** Privacy: share realm/position with all friends or none; hide presence from single friends. */
  async setPrivacy(change: { shareLocation?: "all" | "none"; hide?: { userId: string; hidden: boolean } }): Promise<Result<FriendList, "not_found">> {
    this.register();
    const now = Date.now();
    if (change.hide) {
      if (!this.store.isFriend(change.hide.userId)) return refuse("not_found", NOT_FOUND);
      await this.presence.hideFrom(change.hide.userId, change.hide.hidden, now);
    }
    if (change.shareLocation) {
      this.presence.shareLocation = change.shareLocation;
      await this.refresh(now);
    }
    await this.scheduleAlarm(now);
    return ok(await this.friends());
  }
}

// Every entry point is a metered event: a billed request (RPC, fetch, alarm) or an incoming WebSocket message.
const rpc = (kind: string) => ({ kind: `rpc:${kind}`, billed: "request" as const });
meterEntryPoints(
  UserPresence.prototype,
  {
    fetch: { kind: "fetch", billed: "request" },
    webSocketMessage: {
      kind: (_ws: WebSocket, frame: unknown) => (typeof frame === "string" && frame.includes('"PositionHeartbeat"') ? "ws:heartbeat" : "ws:other"),
      billed: "ws",
    },
    webSocketClose: { kind: "ws:close", billed: "none" },
    webSocketError: { kind: "ws:error", billed: "none" },
    alarm: { kind: "alarm", billed: "request" },
    watch: rpc("watch"),
    unwatch: rpc("unwatch"),
    receivePresence: rpc("receivePresence"),
    presenceFor: rpc("presenceFor"),
    receiveEdge: rpc("receiveEdge"),
    lookup: rpc("lookup"),
    httpHeartbeat: rpc("httpHeartbeat"),
    onlineFriends: rpc("onlineFriends"),
    friendship: rpc("friendship"),
    setFriendships: rpc("setFriendships"),
    friends: rpc("friends"),
    setPrivacy: rpc("setPrivacy"),
  },
  (instance: UserPresence) => instance.meter,
);
